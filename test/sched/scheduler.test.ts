// The pure scheduler: every filter and score, a do-nothing case, and Kubernetes' reason message.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { feasibleNodesToFind, schedule, unschedulableMessage } from '../../src/sched/scheduler.js'
import type { NodeSnapshot, Snapshot } from '../../src/sched/snapshot.js'

function node(name: string, opts: { cpu?: string; memory?: string; pods?: string; labels?: Record<string, string>; ready?: boolean; unschedulable?: boolean; taints?: any[]; throttled?: boolean } = {}): KubeObject {
  const conditions: any[] = [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }]
  if (opts.throttled) conditions.push({ type: 'ThermalThrottling', status: 'True' })
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux', ...opts.labels } },
    spec: { unschedulable: opts.unschedulable, taints: opts.taints },
    status: { allocatable: { cpu: opts.cpu ?? '4', memory: opts.memory ?? '4Gi', pods: opts.pods ?? '110' }, conditions },
  }
}

function pod(name: string, spec: Record<string, unknown> = {}, meta: Record<string, unknown> = {}): KubeObject {
  const { cpu, memory, ...rest } = spec as any
  const requests: Record<string, string> = {}
  if (cpu) requests.cpu = cpu
  if (memory) requests.memory = memory
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', ...meta },
    spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests } }], ...rest },
  }
}

const snap = (...nodes: (KubeObject | NodeSnapshot)[]): Snapshot => ({ nodes: nodes.map((n) => ('pods' in n && 'node' in n ? (n as NodeSnapshot) : { node: n as KubeObject, pods: [] })) })
const bound = (n: KubeObject, pods: KubeObject[]): NodeSnapshot => ({ node: n, pods })

t.test('binds a pod that fits to a node (the do-nothing case: nothing to filter, one node)', async (t) => {
  t.match(schedule(pod('p'), snap(node('a'))), { kind: 'bind', node: 'a' })
})

t.test('with no nodes at all, says so', async (t) => {
  const d = schedule(pod('p'), snap())
  t.equal(d.kind, 'unschedulable')
  t.equal((d as any).message, '0/0 nodes are available.')
})

t.test('skips nodes that are not Ready and cordoned nodes', async (t) => {
  const d = schedule(pod('p'), snap(node('a', { ready: false }), node('b', { unschedulable: true }), node('c')))
  t.match(d, { kind: 'bind', node: 'c' })
  const none = schedule(pod('p'), snap(node('a', { ready: false }), node('b', { unschedulable: true })))
  t.equal((none as any).message, '0/2 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable.')
})

t.test('checks CPU and memory against allocatable minus bound pods', async (t) => {
  const busy = bound(node('a', { cpu: '1', memory: '1Gi' }), [pod('x', { cpu: '800m', memory: '900Mi' })])
  t.match(schedule(pod('p', { cpu: '300m' }), snap(busy)), { kind: 'unschedulable', reasons: { 'Insufficient cpu': 1 } })
  t.match(schedule(pod('p', { memory: '200Mi' }), snap(busy)), { kind: 'unschedulable', reasons: { 'Insufficient memory': 1 } })
  t.match(schedule(pod('p', { cpu: '200m', memory: '100Mi' }), snap(busy)), { kind: 'bind', node: 'a' }, 'exactly fits')
  t.match(schedule(pod('p'), snap(bound(node('a', { pods: '1' }), [pod('x')]))), { reasons: { 'Too many pods': 1 } })
})

t.test('matches nodeSelector and required node affinity with every operator', async (t) => {
  const nodes = snap(node('a', { labels: { disk: 'ssd', gen: '4' } }), node('b', { labels: { disk: 'sd', gen: '3' } }))
  t.match(schedule(pod('p', { nodeSelector: { disk: 'ssd' } }), nodes), { node: 'a' })
  const affinity = (expr: any) => ({ affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expr] }] } } } })
  t.match(schedule(pod('p', affinity({ key: 'disk', operator: 'In', values: ['sd'] })), nodes), { node: 'b' })
  t.match(schedule(pod('p', affinity({ key: 'disk', operator: 'NotIn', values: ['sd'] })), nodes), { node: 'a' })
  t.match(schedule(pod('p', affinity({ key: 'gen', operator: 'Gt', values: ['3'] })), nodes), { node: 'a' })
  t.match(schedule(pod('p', affinity({ key: 'gen', operator: 'Lt', values: ['4'] })), nodes), { node: 'b' })
  t.match(schedule(pod('p', affinity({ key: 'gpu', operator: 'Exists' })), nodes), { kind: 'unschedulable' })
  t.match(schedule(pod('p', affinity({ key: 'gpu', operator: 'DoesNotExist' })), nodes), { kind: 'bind' })
})

t.test('reports reasons counted the way Kubernetes does', async (t) => {
  const nodes = snap(
    node('a', { memory: '100Mi' }),
    node('b', { memory: '100Mi' }),
    node('c', { memory: '100Mi' }),
    node('d', { labels: { zone: 'x' } }),
    node('e', { labels: { zone: 'x' } }),
  )
  const d = schedule(pod('p', { memory: '1Gi', nodeSelector: { zone: 'y' } }), nodes)
  t.equal((d as any).message, "0/5 nodes are available: 5 node(s) didn't match node selector.")
  const d2 = schedule(pod('p', { memory: '1Gi', affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'DoesNotExist' }] }] } } } }), nodes)
  t.equal((d2 as any).message, "0/5 nodes are available: 3 Insufficient memory, 2 node(s) didn't match node selector.")
  t.equal(unschedulableMessage(2, { b: 1, a: 1 }), '0/2 nodes are available: 1 a, 1 b.')
})

t.test('honours taints and tolerations', async (t) => {
  const tainted = node('a', { taints: [{ key: 'dedicated', value: 'camera', effect: 'NoSchedule' }] })
  t.match(schedule(pod('p'), snap(tainted)), { kind: 'unschedulable', message: '0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: camera}.' })
  t.match(schedule(pod('p', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'camera', effect: 'NoSchedule' }] }), snap(tainted)), { node: 'a' })
  t.match(schedule(pod('p', { tolerations: [{ operator: 'Exists' }] }), snap(tainted)), { node: 'a' })
  t.match(schedule(pod('p', { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'other' }] }), snap(tainted)), { kind: 'unschedulable' })
  const noExec = node('b', { taints: [{ key: 'node.kubernetes.io/not-ready', effect: 'NoExecute' }] })
  t.match(schedule(pod('p'), snap(noExec)), { kind: 'unschedulable' })
  const prefer = node('a', { taints: [{ key: 'old', effect: 'PreferNoSchedule' }] })
  t.match(schedule(pod('p'), snap(prefer, node('b'))), { node: 'b' }, 'PreferNoSchedule steers away')
  t.match(schedule(pod('p'), snap(prefer)), { node: 'a' }, 'but does not forbid')
})

t.test('keeps pods to the architectures their images exist for', async (t) => {
  const nodes = snap(node('pi', { labels: { 'kubernetes.io/arch': 'arm' } }), node('x86', { labels: { 'kubernetes.io/arch': 'amd64' } }))
  t.match(schedule(pod('p', {}, { annotations: { 'bramble.io/architectures': 'amd64' } }), nodes), { node: 'x86' })
  t.match(schedule(pod('p', { nodeSelector: { 'kubernetes.io/arch': 'arm' } }), nodes), { node: 'pi' })
  t.match(schedule(pod('p', {}, { annotations: { 'bramble.io/architectures': 'riscv64' } }), nodes), { message: "0/2 nodes are available: 2 node(s) didn't match Pod's architecture." })
})

t.test('refuses a host port already taken on the node', async (t) => {
  const withPort = (name: string, port: number) => pod(name, { containers: [{ name: 'c', image: 'i', ports: [{ containerPort: 80, hostPort: port }] }] })
  const a = bound(node('a'), [withPort('x', 8080)])
  t.match(schedule(withPort('p', 8080), snap(a, node('b'))), { node: 'b' })
  t.match(schedule(withPort('p', 8080), snap(a)), { reasons: { "node(s) didn't have free ports for the requested pod ports": 1 } })
  t.match(schedule(withPort('p', 9090), snap(a)), { node: 'a' })
})

t.test('honours required pod anti-affinity on the hostname, both ways', async (t) => {
  const anti = { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'kubernetes.io/hostname' }] } } }
  const a = bound(node('a'), [pod('db-0', {}, { labels: { app: 'db' } })])
  t.match(schedule(pod('db-1', anti, { labels: { app: 'db' } }), snap(a, node('b'))), { node: 'b' })
  t.match(schedule(pod('db-1', anti, { labels: { app: 'db' } }), snap(a)), { reasons: { "node(s) didn't match pod anti-affinity rules": 1 } })
  const a2 = bound(node('a'), [pod('db-0', anti, { labels: { app: 'db' } })])
  t.match(schedule(pod('db-1', {}, { labels: { app: 'db' } }), snap(a2, node('b'))), { node: 'b' }, "an existing pod's rule keeps the newcomer away")
  t.match(schedule(pod('web', anti), snap(bound(node('a'), [pod('web-0', {}, { labels: { app: 'web' } })]))), { node: 'a' }, 'unrelated pods do not count')
})

t.test('spreads by least allocation by default and packs with binpack', async (t) => {
  const full = bound(node('a'), [pod('x', { cpu: '2', memory: '2Gi' })])
  const empty = node('b')
  t.match(schedule(pod('p', { cpu: '100m' }), snap(full, empty)), { node: 'b' })
  t.match(schedule(pod('p', { cpu: '100m' }), snap(full, empty), { strategy: 'binpack' }), { node: 'a' })
})

t.test('prefers nodes whose CPU and memory stay balanced', async (t) => {
  const cpuHeavy = bound(node('a'), [pod('x', { cpu: '3', memory: '100Mi' })])
  const balanced = bound(node('b'), [pod('y', { cpu: '1500m', memory: '1536Mi' })])
  t.match(schedule(pod('p', { cpu: '100m', memory: '100Mi' }), snap(cpuHeavy, balanced)), { node: 'b' })
})

t.test("spreads one owner's replicas over nodes", async (t) => {
  const owner = { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-1', uid: 'rs-1', controller: true }] }
  const a = bound(node('a'), [pod('web-a', {}, owner), pod('other', { cpu: '10m' })])
  const b = bound(node('b'), [pod('big', { cpu: '1', memory: '1Gi' })])
  t.match(schedule(pod('web-b', {}, owner), snap(a, b)), { node: 'b' }, 'goes where its siblings are not, even onto the busier node')
})

t.test('follows preferred node affinity', async (t) => {
  const pref = { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } }] } } }
  t.match(schedule(pod('p', pref), snap(node('a'), node('b', { labels: { disk: 'ssd' } }))), { node: 'b' })
  // Scores are remembered per Node object: a node relabeled (a new object) is scored by its new labels.
  const a = node('a')
  t.match(schedule(pod('q', pref), snap(a, node('b', { labels: { disk: 'ssd' } }))), { node: 'b' }, 'asked again with the same terms: the same answer')
  t.match(schedule(pod('r', pref), snap(node('a', { labels: { disk: 'ssd' } }), node('b'))), { node: 'a' }, 'the other node labeled ssd now: it wins')
})

t.test('avoids nodes that report thermal throttling', async (t) => {
  t.match(schedule(pod('p'), snap(node('a', { throttled: true }), node('b'))), { node: 'b' })
  t.match(schedule(pod('p'), snap(node('a', { throttled: true }))), { node: 'a' }, 'a hot node still takes work when it is the only one')
})

t.test('on big clusters the search stops once enough feasible nodes are found, as Kubernetes does', async (t) => {
  t.equal(feasibleNodesToFind(50), 50, 'below 100 nodes every node is considered')
  t.equal(feasibleNodesToFind(1_000), 420)
  t.equal(feasibleNodesToFind(5_000), 500)
  const many = Array.from({ length: 200 }, (_, i) => node(`n${String(i).padStart(3, '0')}`))
  const d = schedule(pod('p'), snap(...many))
  t.equal(d.visited, feasibleNodesToFind(200))
  const later = schedule(pod('p'), snap(...many), { strategy: 'spread', startIndex: 150 })
  t.match(later, { kind: 'bind', node: 'n000' }, 'the search wraps around from where it starts')
  const unschedulable = schedule(pod('p', { cpu: '64' }), snap(...many))
  t.equal(unschedulable.visited, 200, 'with nothing feasible every node is looked at, and counted in the message')
  t.equal((unschedulable as any).message, '0/200 nodes are available: 200 Insufficient cpu.')
})
