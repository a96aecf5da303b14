// metrics.k8s.io from the nodes' heartbeats, on a real LMDB store, Registry and Informers: usage
// as metrics-server writes it, a node's claims counted only for pods bound to it, stale reports
// not served, label selectors, and the 404s kubectl top reads.

import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { ApiError } from '../../src/hub/api-errors.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { cpuQuantity, memoryQuantity, MetricsApi } from '../../src/hub/metrics-api.js'
import { Registry } from '../../src/hub/registry.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

const kind = (name: string) => KINDS.find((k) => k.kind === name)!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

const dir = mkdtempSync(join(tmpdir(), 'mt-metrics-api-'))
const store = await openLmdbStore({ path: join(dir, 'store') })
const clock = new FakeClock()
const registry = new Registry(store, clock, silentLogger())
const nodes = new Informer(registry, kind('Node'))
const pods = new Informer(registry, kind('Pod'))
t.teardown(async () => {
  nodes.stop()
  pods.stop()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' }, status: { phase: 'Active' } } as KubeObject)
for (const name of ['pi-1', 'pi-2']) {
  await registry.create(kind('Node'), '', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { board: name === 'pi-1' ? 'pi4' : 'pi5' } }, status: { capacity: { cpu: '4', memory: '4Gi' } } } as KubeObject, WRITE)
}
for (const [name, node] of [['web', 'pi-1'], ['db', 'pi-2']]) {
  await registry.create(kind('Pod'), 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: name } }, spec: { nodeName: node, containers: [{ name: 'app', image: 'busybox' }] } } as KubeObject, WRITE)
}
await nodes.start()
await pods.start()

const heartbeats = new Heartbeats()
const api = new MetricsApi({ heartbeats, nodes, pods, clock, heartbeatIntervalMs: 5_000, staleAfterMs: 20_000 })
const get = (path: string, query = '') => api.get(path, new URLSearchParams(query)) as any
/** The ApiError a request answers with. */
function failure(path: string, query = ''): ApiError {
  try {
    get(path, query)
  } catch (err) {
    if (err instanceof ApiError) return err
    throw err
  }
  throw new Error(`${path} did not fail`)
}
const usage = (name: string, cpuCores: number, memoryBytes: number) => ({ namespace: 'default', name, containers: [{ name: 'app', cpuCores, memoryBytes }] })

t.test('quantities are written as metrics-server writes them', async (t) => {
  t.equal(cpuQuantity(0.0125), '12500000n')
  t.equal(memoryQuantity(10 * 1024 * 1024), '10240Ki')
  t.equal(cpuQuantity(-1), '0n')
})

t.test('discovery: the group and its two resources', async (t) => {
  t.ok(api.owns('/apis/metrics.k8s.io/v1beta1/nodes'))
  t.notOk(api.owns('/apis/metrics.k8s.io.evil/v1beta1'))
  t.match(get('/apis/metrics.k8s.io'), { kind: 'APIGroup', name: 'metrics.k8s.io', preferredVersion: { groupVersion: 'metrics.k8s.io/v1beta1' } })
  t.same(get('/apis/metrics.k8s.io/v1beta1').resources.map((r: any) => [r.name, r.kind, r.namespaced]), [['nodes', 'NodeMetrics', false], ['pods', 'PodMetrics', true]])
})

t.test('before any heartbeat nothing is served, and a named node is a 404 kubectl understands', async (t) => {
  t.same(get('/apis/metrics.k8s.io/v1beta1/nodes').items, [])
  t.match(failure('/apis/metrics.k8s.io/v1beta1/nodes/pi-1'), { httpStatus: 404, reason: 'NotFound', message: 'nodes.metrics.k8s.io "pi-1" not found' })
})

t.test("a node's usage: its CPU fraction times its cores, memory in Ki, its temperature, the report's time", async (t) => {
  heartbeats.record('pi-1', { seq: 1, uptimeMs: 1, cpu: 0.25, memory: 2 * 1024 ** 3, temperature: 48.25, pods: [usage('web', 0.1, 50 * 1024 * 1024), usage('db', 0.5, 1024)] }, clock.monotonic())
  const m = get('/apis/metrics.k8s.io/v1beta1/nodes/pi-1')
  t.match(m, { kind: 'NodeMetrics', metadata: { name: 'pi-1', labels: { board: 'pi4' }, annotations: { 'bramble.io/temperature-celsius': '48.3' } }, usage: { cpu: '1000000000n', memory: '2097152Ki' }, window: '5s' })
  t.equal(m.timestamp, new Date(clock.now()).toISOString().replace(/\.\d{3}Z$/, 'Z'))
})

t.test("a node's report counts only for the pods bound to it", async (t) => {
  const list = get('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods')
  t.same(list.items.map((p: any) => p.metadata.name), ['web'], 'pi-1 claims db, which runs on pi-2: not served')
  t.match(list.items[0], { kind: 'PodMetrics', metadata: { namespace: 'default', labels: { app: 'web' } }, containers: [{ name: 'app', usage: { cpu: '100000000n', memory: '51200Ki' } }] })
  heartbeats.record('pi-2', { seq: 1, uptimeMs: 1, cpu: 0.5, memory: 1, pods: [usage('db', 0.02, 1024 * 1024)] }, clock.monotonic())
  t.same(get('/apis/metrics.k8s.io/v1beta1/pods').items.map((p: any) => p.metadata.name), ['db', 'web'])
  t.equal(get('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/db').containers[0].usage.cpu, '20000000n')
  t.same(get('/apis/metrics.k8s.io/v1beta1/namespaces/other/pods').items, [])
})

t.test('label selectors narrow the lists; a bad one is a 400', async (t) => {
  t.same(get('/apis/metrics.k8s.io/v1beta1/pods', 'labelSelector=app%3Dweb').items.map((p: any) => p.metadata.name), ['web'])
  t.same(get('/apis/metrics.k8s.io/v1beta1/nodes', 'labelSelector=board%3Dpi5').items.map((n: any) => n.metadata.name), ['pi-2'])
  t.match(failure('/apis/metrics.k8s.io/v1beta1/pods', 'labelSelector=app%3D%3D%3D'), { httpStatus: 400, message: /unable to parse requirement/ })
})

t.test('a report older than the grace period is not served', async (t) => {
  clock.advance(15_000)
  heartbeats.record('pi-2', { seq: 2, uptimeMs: 2, cpu: 0.5, memory: 1, pods: [usage('db', 0.02, 1024 * 1024)] }, clock.monotonic())
  clock.advance(10_000)
  t.same(get('/apis/metrics.k8s.io/v1beta1/nodes').items.map((n: any) => n.metadata.name), ['pi-2'], 'pi-1 fell silent 25 s ago')
  t.same(get('/apis/metrics.k8s.io/v1beta1/pods').items.map((p: any) => p.metadata.name), ['db'])
  t.match(failure('/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web'), { httpStatus: 404, message: 'pods.metrics.k8s.io "web" not found' })
})

t.test('other paths under the group are 404', async (t) => {
  t.match(failure('/apis/metrics.k8s.io/v1beta1/deployments'), { httpStatus: 404 })
})
