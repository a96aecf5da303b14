// Cluster IPs and node ports of Services, leased through the real Registry on a real LMDB store:
// allocation, requests, collisions, exhaustion, concurrency, release, and a restart.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { ApiError } from '../../src/hub/api-errors.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { SERVICE_IP_RESOURCE } from '../../src/hub/service-allocations.js'
import type { Store } from '../../src/hub/store.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const SERVICE = KINDS.find((k) => k.kind === 'Service')!
const NAMESPACE = KINDS.find((k) => k.kind === 'Namespace')!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

async function setup(t: any, serviceCidr?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-svcip-'))
  const path = join(dir, 'store')
  let store: Store = await openLmdbStore({ path })
  const open = async (s: Store) => {
    const registry = new Registry(s, systemClock, silentLogger(), serviceCidr ? { serviceCidr } : {})
    await registry.serviceAllocations.repair()
    return registry
  }
  for (const ns of ['default', 'team']) await store.create({ resource: 'namespaces', namespace: '', name: ns }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } })
  const ctx = {
    store,
    registry: await open(store),
    /** Closes the store and opens it again with a new Registry, as a hub restart does. */
    async restart() {
      await ctx.store.close()
      ctx.store = store = await openLmdbStore({ path })
      ctx.registry = await open(store)
    },
  }
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return ctx
}

function service(name: string, spec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { selector: { app: name }, ports: [{ port: 80 }], ...spec } }
}

async function invalidCause(t: any, p: Promise<unknown>): Promise<{ field?: string; message: string }> {
  const err = await p.then(
    () => undefined,
    (e) => e,
  )
  t.ok(err instanceof ApiError, 'refused with an API error')
  t.equal(err.httpStatus, 422)
  return err.details.causes[0]
}

t.test('a ClusterIP Service gets the lowest free address of the range, in clusterIP and clusterIPs', async (t) => {
  const { registry } = await setup(t)
  const a = (await registry.create(SERVICE, 'default', service('a'), WRITE)).object
  const b = (await registry.create(SERVICE, 'default', service('b'), WRITE)).object
  t.equal(a.spec.clusterIP, '10.43.0.1')
  t.same(a.spec.clusterIPs, ['10.43.0.1'])
  t.equal(b.spec.clusterIP, '10.43.0.2')
  t.equal((await registry.get(SERVICE, 'default', 'a')).spec.clusterIP, '10.43.0.1', 'stored as answered')
})

t.test('a requested address is honoured, refused outside the range and refused when taken, naming spec.clusterIP', async (t) => {
  const { registry } = await setup(t)
  const a = (await registry.create(SERVICE, 'default', service('a', { clusterIP: '10.43.7.7' }), WRITE)).object
  t.equal(a.spec.clusterIP, '10.43.7.7')
  let cause = await invalidCause(t, registry.create(SERVICE, 'team', service('b', { clusterIP: '10.43.7.7' }), WRITE))
  t.equal(cause.field, 'spec.clusterIP')
  t.match(cause.message, /already allocated/)
  cause = await invalidCause(t, registry.create(SERVICE, 'default', service('c', { clusterIP: '10.44.0.1' }), WRITE))
  t.equal(cause.field, 'spec.clusterIP')
  t.match(cause.message, /not in the valid range.*10\.43\.0\.0\/16/)
  cause = await invalidCause(t, registry.create(SERVICE, 'default', service('d', { clusterIP: '10.43.255.255' }), WRITE))
  t.equal(cause.field, 'spec.clusterIP', 'the broadcast address is not assignable')
  t.equal((await registry.create(SERVICE, 'default', service('e'), WRITE)).object.spec.clusterIP, '10.43.0.1', 'refused requests leased nothing')
})

t.test('a headless Service holds no address and an ExternalName one none either', async (t) => {
  const { registry, store } = await setup(t)
  const h = (await registry.create(SERVICE, 'default', service('h', { clusterIP: 'None' }), WRITE)).object
  t.equal(h.spec.clusterIP, 'None')
  t.same(h.spec.clusterIPs, ['None'])
  const x = (await registry.create(SERVICE, 'default', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' }, spec: { type: 'ExternalName', externalName: 'example.org' } }, WRITE)).object
  t.equal(x.spec.clusterIP, undefined)
  t.equal((await store.list({ resource: SERVICE_IP_RESOURCE })).items.length, 0)
})

t.test('the address is immutable; an update that leaves it out keeps it', async (t) => {
  const { registry } = await setup(t)
  const a = (await registry.create(SERVICE, 'default', service('a'), WRITE)).object
  const cause = await invalidCause(t, registry.update(SERVICE, 'default', 'a', { ...a, spec: { ...a.spec, clusterIP: '10.43.0.9', clusterIPs: ['10.43.0.9'] } }, WRITE))
  t.equal(cause.field, 'spec.clusterIP')
  const { clusterIP: _ip, clusterIPs: _ips, ...rest } = a.spec
  const updated = (await registry.update(SERVICE, 'default', 'a', { ...a, spec: { ...rest, ports: [{ port: 81 }] } }, WRITE)).object
  t.equal(updated.spec.clusterIP, '10.43.0.1')
  t.same(updated.spec.clusterIPs, ['10.43.0.1'])
})

t.test('deleting a Service, or its namespace, frees its address', async (t) => {
  const { registry } = await setup(t)
  await registry.create(SERVICE, 'default', service('a'), WRITE)
  await registry.create(SERVICE, 'team', service('b'), WRITE)
  await registry.delete(SERVICE, 'default', 'a', { dryRun: false })
  t.equal((await registry.create(SERVICE, 'default', service('c'), WRITE)).object.spec.clusterIP, '10.43.0.1')
  await registry.delete(NAMESPACE, '', 'team', { dryRun: false })
  t.equal((await registry.create(SERVICE, 'default', service('d'), WRITE)).object.spec.clusterIP, '10.43.0.2')
})

t.test('a full range refuses the next Service with a 422 naming spec.clusterIP', async (t) => {
  const { registry } = await setup(t, '10.99.0.0/29')
  const ips: string[] = []
  for (let i = 0; i < 6; i++) ips.push((await registry.create(SERVICE, 'default', service(`s${i}`), WRITE)).object.spec.clusterIP)
  t.same(ips, ['10.99.0.1', '10.99.0.2', '10.99.0.3', '10.99.0.4', '10.99.0.5', '10.99.0.6'])
  const cause = await invalidCause(t, registry.create(SERVICE, 'default', service('s6'), WRITE))
  t.equal(cause.field, 'spec.clusterIP')
  t.match(cause.message, /10\.99\.0\.0\/29 is full/)
  await t.rejects(registry.get(SERVICE, 'default', 's6'), 'nothing stored')
})

t.test('concurrent creates never share an address', async (t) => {
  const { registry } = await setup(t)
  const made = await Promise.all(Array.from({ length: 20 }, (_, i) => registry.create(SERVICE, 'default', service(`c${i}`), WRITE)))
  const ips = made.map((m) => m.object.spec.clusterIP)
  t.equal(new Set(ips).size, 20, `20 distinct addresses: ${ips.join(' ')}`)
})

t.test('a dry run leases nothing', async (t) => {
  const { registry } = await setup(t)
  const dry = (await registry.create(SERVICE, 'default', service('a'), { ...WRITE, dryRun: true })).object
  t.equal(dry.spec.clusterIP, '10.43.0.1')
  t.equal((await registry.create(SERVICE, 'default', service('a'), WRITE)).object.spec.clusterIP, '10.43.0.1')
})

t.test('leases survive a restart; a lease left by a crash is dropped, a missing one restored', async (t) => {
  const ctx = await setup(t)
  await ctx.registry.create(SERVICE, 'default', service('a'), WRITE)
  await ctx.registry.create(SERVICE, 'default', service('b'), WRITE)
  // A crash between leasing 10.43.0.3 and storing its Service, and a lease lost for b.
  await ctx.store.create({ resource: SERVICE_IP_RESOURCE, namespace: '', name: '10.43.0.3' }, { apiVersion: 'bramble.io/v1', kind: 'ServiceAddressLease', metadata: { name: '10.43.0.3' }, spec: { namespace: 'default', name: 'ghost', uid: 'gone' } })
  await ctx.store.delete({ resource: SERVICE_IP_RESOURCE, namespace: '', name: '10.43.0.2' })
  await ctx.restart()
  const leases = (await ctx.store.list({ resource: SERVICE_IP_RESOURCE })).items.map((l) => l.metadata.name).sort()
  t.same(leases, ['10.43.0.1', '10.43.0.2'])
  t.equal((await ctx.registry.create(SERVICE, 'default', service('c'), WRITE)).object.spec.clusterIP, '10.43.0.3')
  const cause = await invalidCause(t, ctx.registry.create(SERVICE, 'team', service('d', { clusterIP: '10.43.0.2' }), WRITE))
  t.match(cause.message, /already allocated/)
})

t.test('NodePort Services get node ports from 30000-32767; requested ones are checked; a type change frees them', async (t) => {
  const { registry } = await setup(t)
  const a = (await registry.create(SERVICE, 'default', service('a', { type: 'NodePort', ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] }), WRITE)).object
  t.same(a.spec.ports.map((p: any) => p.nodePort), [30000, 30001])
  const b = (await registry.create(SERVICE, 'default', service('b', { type: 'NodePort', ports: [{ port: 80, nodePort: 31000 }] }), WRITE)).object
  t.equal(b.spec.ports[0].nodePort, 31000)
  const cause = await invalidCause(t, registry.create(SERVICE, 'default', service('c', { type: 'NodePort', ports: [{ port: 80, nodePort: 31000 }] }), WRITE))
  t.equal(cause.field, 'spec.ports[0].nodePort')
  t.match(cause.message, /already allocated/)
  // An update that leaves the node ports out keeps them.
  const kept = (await registry.update(SERVICE, 'default', 'a', { ...a, spec: { ...a.spec, ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP' }] } }, WRITE)).object
  t.same(kept.spec.ports.map((p: any) => p.nodePort), [30000, 30001])
  const { ports: _p, ...rest } = kept.spec
  const cip = (await registry.update(SERVICE, 'default', 'a', { ...kept, spec: { ...rest, type: 'ClusterIP', ports: [{ name: 'http', port: 80 }] } }, WRITE)).object
  t.equal(cip.spec.ports[0].nodePort, undefined)
  const d = (await registry.create(SERVICE, 'default', service('d', { type: 'NodePort', ports: [{ port: 80 }] }), WRITE)).object
  t.equal(d.spec.ports[0].nodePort, 30000, 'freed by the change to ClusterIP')
})

t.test('repair with the time keeps a lease younger than a minute (another hub may be writing its Service) and drops an older one', async (t) => {
  const ctx = await setup(t)
  const lease = (ip: string, createdAt: string): KubeObject => ({ apiVersion: 'bramble.io/v1', kind: 'ServiceAddressLease', metadata: { name: ip, creationTimestamp: createdAt }, spec: { namespace: 'default', name: 'in-flight', uid: 'not-written-yet' } }) as KubeObject
  const now = Date.parse('2026-01-01T12:00:00Z')
  await ctx.store.create({ resource: SERVICE_IP_RESOURCE, namespace: '', name: '10.43.0.7' }, lease('10.43.0.7', '2026-01-01T11:59:40Z'))
  await ctx.store.create({ resource: SERVICE_IP_RESOURCE, namespace: '', name: '10.43.0.8' }, lease('10.43.0.8', '2026-01-01T11:58:00Z'))
  await ctx.registry.serviceAllocations.repair(now)
  const leases = (await ctx.store.list({ resource: SERVICE_IP_RESOURCE })).items.map((l) => l.metadata.name).sort()
  t.same(leases, ['10.43.0.7'], 'the 20-second-old lease stays, the 2-minute-old one is dropped')
})
