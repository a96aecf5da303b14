// The scheduler's volume filter: a pod whose claim is bound to a node's local volume goes to that
// node only; an unbound WaitForFirstConsumer claim fits anywhere; an unbound Immediate claim or a
// missing claim keeps the pod Pending, saying why.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { schedule } from '../../src/sched/scheduler.js'
import { volumePlacement, type VolumeView } from '../../src/sched/volume-binding.js'

function node(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    spec: {},
    status: { allocatable: { cpu: '4', memory: '4Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  }
}

const nodes = { nodes: ['a', 'b', 'c'].map((n) => ({ node: node(n), pods: [] })) }

function podUsing(...claims: string[]): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'db-0', namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'busybox' }], volumes: claims.map((c, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName: c } })) },
  }
}

const localPath = { metadata: { name: 'local-path', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'rancher.io/local-path', volumeBindingMode: 'WaitForFirstConsumer' }
const immediate = { metadata: { name: 'nfs' }, provisioner: 'example.com/nfs', volumeBindingMode: 'Immediate' }

function view(claims: Record<string, any>, volumes: Record<string, any> = {}): VolumeView {
  return {
    claim: (ns, name) => (ns === 'default' && claims[name] ? ({ metadata: { name, namespace: ns }, ...claims[name] } as KubeObject) : undefined),
    volume: (name) => (volumes[name] ? ({ metadata: { name }, ...volumes[name] } as KubeObject) : undefined),
    storageClasses: () => [localPath, immediate] as unknown as KubeObject[],
  }
}

const pinnedTo = (n: string) => ({ spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [n] }] }] } } } })

t.test('a pod without claims goes anywhere (the do-nothing case)', async (t) => {
  const pod = podUsing()
  t.same(volumePlacement(pod, view({})), { kind: 'anywhere' })
  t.match(schedule(pod, nodes, { strategy: 'spread', volumes: volumePlacement(pod, view({})) }), { kind: 'bind' })
})

t.test('an unbound claim of the WaitForFirstConsumer default class fits anywhere', async (t) => {
  const pod = podUsing('data-db-0')
  const placement = volumePlacement(pod, view({ 'data-db-0': { spec: {} } }))
  t.same(placement, { kind: 'anywhere' })
  t.match(schedule(pod, nodes, { strategy: 'spread', volumes: placement }), { kind: 'bind' })
})

t.test('a claim bound to a volume on node b sends the pod to b and nowhere else', async (t) => {
  const pod = podUsing('data-db-0')
  const placement = volumePlacement(pod, view({ 'data-db-0': { spec: { volumeName: 'pvc-1' } } }, { 'pvc-1': pinnedTo('b') }))
  for (let start = 0; start < 3; start++) t.match(schedule(pod, nodes, { strategy: 'spread', startIndex: start, volumes: placement }), { kind: 'bind', node: 'b' })
})

t.test("with b gone, the pod waits naming Kubernetes' reason", async (t) => {
  const pod = podUsing('data-db-0')
  const placement = volumePlacement(pod, view({ 'data-db-0': { spec: { volumeName: 'pvc-1' } } }, { 'pvc-1': pinnedTo('b') }))
  const without = { nodes: nodes.nodes.filter((n) => n.node.metadata.name !== 'b') }
  t.match(schedule(pod, without, { strategy: 'spread', volumes: placement }), { kind: 'unschedulable', message: '0/2 nodes are available: 2 node(s) had volume node affinity conflict.' })
})

t.test('two claims on different nodes fit nowhere', async (t) => {
  const pod = podUsing('x', 'y')
  const placement = volumePlacement(pod, view({ x: { spec: { volumeName: 'pv-x' } }, y: { spec: { volumeName: 'pv-y' } } }, { 'pv-x': pinnedTo('a'), 'pv-y': pinnedTo('b') }))
  t.match(schedule(pod, nodes, { strategy: 'spread', volumes: placement }), { kind: 'unschedulable', reasons: { 'node(s) had volume node affinity conflict': 3 } })
})

t.test('a missing claim, or an unbound Immediate one, keeps the pod Pending', async (t) => {
  const missing = volumePlacement(podUsing('nope'), view({}))
  t.same(missing, { kind: 'unschedulable', message: 'persistentvolumeclaim "nope" not found' })
  t.match(schedule(podUsing('nope'), nodes, { strategy: 'spread', volumes: missing }), { kind: 'unschedulable', message: '0/3 nodes are available: persistentvolumeclaim "nope" not found.' })
  const unbound = volumePlacement(podUsing('shared'), view({ shared: { spec: { storageClassName: 'nfs' } } }))
  t.same(unbound, { kind: 'unschedulable', message: 'pod has unbound immediate PersistentVolumeClaims' })
})

t.test('a claim being deleted (held by pvc-protection while another pod uses it) keeps a new pod Pending', async (t) => {
  const terminating = { metadata: { deletionTimestamp: '2026-11-30T09:00:00Z', finalizers: ['kubernetes.io/pvc-protection'] }, spec: { volumeName: 'pv-b' } }
  const placement = volumePlacement(podUsing('going'), view({ going: terminating }, { 'pv-b': { spec: {} } }))
  t.same(placement, { kind: 'unschedulable', message: 'persistentvolumeclaim "going" is being deleted' })
})

t.test('a volume without node affinity lets the pod go anywhere', async (t) => {
  const placement = volumePlacement(podUsing('c'), view({ c: { spec: { volumeName: 'pv-c' } } }, { 'pv-c': { spec: {} } }))
  t.same(placement, { kind: 'anywhere' })
})

t.test("a volume pinned by the node's name goes to that node even when its hostname label differs", async (t) => {
  const byName = { spec: { nodeAffinity: { required: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['c'] }] }] } } } }
  const renamed = { nodes: nodes.nodes.map((n) => ({ node: { ...n.node, metadata: { ...n.node.metadata, labels: { 'kubernetes.io/hostname': 'raspberrypi' } } }, pods: [] })) }
  const placement = volumePlacement(podUsing('d'), view({ d: { spec: { volumeName: 'pv-d' } } }, { 'pv-d': byName }))
  t.match(schedule(podUsing('d'), renamed, { strategy: 'spread', volumes: placement }), { kind: 'bind', node: 'c' })
})
