// The Endpoints controller against a real LMDB store, Registry and Informers; the test plays the
// kubelet, writing pod IPs and readiness through the status subresource.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EndpointsController } from '../../src/hub/endpoints-controller.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-ep-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const pods = new Informer(registry, kind('Pod'))
  const services = new Informer(registry, kind('Service'))
  const endpoints = new Informer(registry, kind('Endpoints'))
  const controller = new EndpointsController({ registry, pods, services, endpoints, clock: systemClock, logger: silentLogger() })
  for (const i of [pods, services, endpoints]) await i.start()
  controller.start()
  t.teardown(async () => {
    await controller.stop()
    for (const i of [pods, services, endpoints]) i.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return { registry }
}

/** Polls `read` until `ok` holds (deadline 5 s), returning the last value read. */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean): Promise<T> {
  const deadline = Date.now() + 5000
  for (;;) {
    const v = await read()
    if (ok(v) || Date.now() > deadline) return v
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function endpointsOf(registry: Registry, name: string): Promise<any> {
  return registry.get(kind('Endpoints'), 'default', name).catch(() => undefined)
}

const ips = (ep: KubeObject | undefined, list: 'addresses' | 'notReadyAddresses') => ((ep?.subsets ?? []) as any[]).flatMap((s: any) => (s[list] ?? []).map((a: any) => a.ip))

async function makePod(registry: Registry, name: string, labels: Record<string, string>, ports: any[] = [{ name: 'web', containerPort: 8080 }]) {
  await registry.create(kind('Pod'), 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox', ports }] } }, WRITE)
}

/** As the kubelet reports it: an IP and the Ready condition. */
async function report(registry: Registry, name: string, ip: string, ready: boolean) {
  const pod = await registry.get(kind('Pod'), 'default', name)
  const status = { ...pod.status, phase: 'Running', podIP: ip, podIPs: [{ ip }], conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }] }
  await registry.update(kind('Pod'), 'default', name, { ...pod, status }, WRITE, 'status')
}

function service(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, labels: { tier: 'web' } }, spec }
}

t.test('lists ready pods under addresses and the others under notReadyAddresses, following readiness', async (t) => {
  const { registry } = await setup(t)
  await makePod(registry, 'a', { app: 'web' })
  await makePod(registry, 'b', { app: 'web' })
  await makePod(registry, 'other', { app: 'db' })
  await report(registry, 'a', '10.42.0.5', true)
  await report(registry, 'b', '10.42.0.6', false)
  await report(registry, 'other', '10.42.0.7', true)
  await registry.create(kind('Service'), 'default', service('web', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }), WRITE)
  let ep = await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses').length === 1 && ips(e, 'notReadyAddresses').length === 1)
  t.same(ips(ep, 'addresses'), ['10.42.0.5'])
  t.same(ips(ep, 'notReadyAddresses'), ['10.42.0.6'])
  t.same(ep!.subsets[0].ports, [{ port: 8080, protocol: 'TCP' }])
  t.same(ep!.subsets[0].addresses[0].targetRef, { kind: 'Pod', namespace: 'default', name: 'a', uid: (await registry.get(kind('Pod'), 'default', 'a')).metadata.uid })
  t.same(ep!.metadata.labels, { tier: 'web' }, "the Service's labels")

  await report(registry, 'b', '10.42.0.6', true)
  await report(registry, 'a', '10.42.0.5', false)
  ep = await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses')[0] === '10.42.0.6')
  t.same(ips(ep, 'addresses'), ['10.42.0.6'], 'b became ready')
  t.same(ips(ep, 'notReadyAddresses'), ['10.42.0.5'], 'a went out of rotation')

  await registry.delete(kind('Pod'), 'default', 'b', { dryRun: false })
  ep = await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses').length === 0)
  t.same(ips(ep, 'addresses'), [], 'a deleted pod is gone')
})

t.test("an address carries its pod's hostname when the pod's subdomain is the Service (a StatefulSet's pods), and only then", async (t) => {
  const { registry } = await setup(t)
  const pod = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'db' } }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }], ...spec } })
  await registry.create(kind('Pod'), 'default', pod('db-0', { hostname: 'db-0', subdomain: 'db' }), WRITE)
  await registry.create(kind('Pod'), 'default', pod('stray', { hostname: 'stray', subdomain: 'elsewhere' }), WRITE)
  await report(registry, 'db-0', '10.42.0.8', true)
  await report(registry, 'stray', '10.42.0.9', true)
  await registry.create(kind('Service'), 'default', service('db', { clusterIP: 'None', selector: { app: 'db' } }), WRITE)
  const ep = await until(() => endpointsOf(registry, 'db'), (e) => ips(e, 'addresses').length === 2)
  const byIp = Object.fromEntries(ep!.subsets[0].addresses.map((a: any) => [a.ip, a.hostname]))
  t.same(byIp, { '10.42.0.8': 'db-0', '10.42.0.9': undefined }, 'db-0 by name; the pod of another subdomain without one')
})

t.test('resolves a named targetPort per pod; a pod without that port is left out', async (t) => {
  const { registry } = await setup(t)
  await makePod(registry, 'named', { app: 'api' }, [{ name: 'http', containerPort: 9000 }])
  await makePod(registry, 'other-port', { app: 'api' }, [{ name: 'http', containerPort: 9100 }])
  await makePod(registry, 'no-port', { app: 'api' }, [])
  await report(registry, 'named', '10.42.1.2', true)
  await report(registry, 'other-port', '10.42.1.3', true)
  await report(registry, 'no-port', '10.42.1.4', true)
  await registry.create(kind('Service'), 'default', service('api', { selector: { app: 'api' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }] }), WRITE)
  const ep = await until(() => endpointsOf(registry, 'api'), (e) => (e?.subsets ?? []).length === 2)
  const byPort = Object.fromEntries(ep!.subsets.map((s: any) => [s.ports[0].port, s.addresses.map((a: any) => a.ip)]))
  t.same(byPort, { 9000: ['10.42.1.2'], 9100: ['10.42.1.3'] })
  t.equal(ep!.subsets[0].ports[0].name, 'http')
})

t.test('a pod whose labels stop matching leaves; deleting the Service deletes its Endpoints', async (t) => {
  const { registry } = await setup(t)
  await makePod(registry, 'a', { app: 'web' })
  await report(registry, 'a', '10.42.0.5', true)
  await registry.create(kind('Service'), 'default', service('web', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }), WRITE)
  await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses').length === 1)
  const pod = await registry.get(kind('Pod'), 'default', 'a')
  await registry.update(kind('Pod'), 'default', 'a', { ...pod, metadata: { ...pod.metadata, labels: { app: 'moved' } } }, WRITE)
  let ep = await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses').length === 0)
  t.same(ep!.subsets, [], 'relabelled pod left')
  await registry.delete(kind('Service'), 'default', 'web', { dryRun: false })
  ep = await until(() => endpointsOf(registry, 'web'), (e) => e === undefined)
  t.equal(ep, undefined, 'Endpoints removed with the Service')
})

t.test('leaves alone the Endpoints of a Service without a selector, and repairs a managed one edited by hand', async (t) => {
  const { registry } = await setup(t)
  await registry.create(kind('Service'), 'default', service('external', { ports: [{ port: 5432 }] }), WRITE)
  await registry.create(kind('Endpoints'), 'default', { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'external' }, subsets: [{ addresses: [{ ip: '192.168.1.50' }], ports: [{ port: 5432 }] }] }, WRITE)
  await makePod(registry, 'a', { app: 'web' })
  await report(registry, 'a', '10.42.0.5', true)
  await registry.create(kind('Service'), 'default', service('web', { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }), WRITE)
  const ep = await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses').length === 1)
  await registry.update(kind('Endpoints'), 'default', 'web', { ...ep, subsets: [] }, WRITE)
  const repaired = await until(() => endpointsOf(registry, 'web'), (e) => ips(e, 'addresses').length === 1)
  t.same(ips(repaired, 'addresses'), ['10.42.0.5'], 'hand edit undone')
  t.same(ips(await endpointsOf(registry, 'external'), 'addresses'), ['192.168.1.50'], 'selectorless Service keeps its hand-written Endpoints')
})
