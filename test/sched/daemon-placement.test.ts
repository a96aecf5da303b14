// Where a DaemonSet's pods belong (pure), and that the scheduler binds a pod pinned by the
// node-name affinity the DaemonSet controller writes (matchFields on metadata.name) to that node only.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { daemonPlacement, daemonPodNode, pinToNode } from '../../src/sched/daemon-placement.js'
import { ARCH_ANNOTATION } from '../../src/sched/filters.js'
import { schedule } from '../../src/sched/scheduler.js'

function node(name: string, opts: { labels?: Record<string, string>; taints?: any[]; ready?: boolean; unschedulable?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux', ...opts.labels } },
    spec: { taints: opts.taints, unschedulable: opts.unschedulable },
    status: { allocatable: { cpu: '4', memory: '4Gi', pods: '110' }, conditions: [{ type: 'Ready', status: opts.ready === false ? 'False' : 'True' }] },
  }
}

function pod(spec: Record<string, unknown> = {}, annotations?: Record<string, string>): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', ...(annotations ? { annotations } : {}) }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec } }
}

t.test('a plain pod runs on every node, Ready or not, cordoned or not (the do-nothing case)', async (t) => {
  t.same(daemonPlacement(pod(), node('a')), { shouldRun: true, shouldContinueRunning: true })
  t.same(daemonPlacement(pod({ tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }] }), node('b', { ready: false, unschedulable: true })), {
    shouldRun: true,
    shouldContinueRunning: true,
  })
})

t.test('nodeSelector, required node affinity and architecture must match', async (t) => {
  const edge = node('a', { labels: { role: 'edge' } })
  t.equal(daemonPlacement(pod({ nodeSelector: { role: 'edge' } }), edge).shouldRun, true)
  t.same(daemonPlacement(pod({ nodeSelector: { role: 'core' } }), edge), { shouldRun: false, shouldContinueRunning: false })
  const affinity = (op: string, values: string[]) => ({
    nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/arch', operator: op, values }] }] } },
  })
  t.equal(daemonPlacement(pod({ affinity: affinity('In', ['arm64']) }), edge).shouldRun, true)
  t.equal(daemonPlacement(pod({ affinity: affinity('NotIn', ['arm64']) }), edge).shouldRun, false)
  t.equal(daemonPlacement(pod({}, { [ARCH_ANNOTATION]: 'amd64' }), edge).shouldRun, false)
  t.equal(daemonPlacement(pod({}, { [ARCH_ANNOTATION]: 'amd64,arm64' }), edge).shouldRun, true)
})

t.test('a NoSchedule taint keeps new pods off but lets a running one stay; NoExecute removes it', async (t) => {
  const noSchedule = node('a', { taints: [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }] })
  t.same(daemonPlacement(pod(), noSchedule), { shouldRun: false, shouldContinueRunning: true })
  t.same(daemonPlacement(pod({ tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'db', effect: 'NoSchedule' }] }), noSchedule), { shouldRun: true, shouldContinueRunning: true })
  const noExecute = node('b', { taints: [{ key: 'dedicated', value: 'db', effect: 'NoExecute' }] })
  t.same(daemonPlacement(pod(), noExecute), { shouldRun: false, shouldContinueRunning: false })
  t.same(daemonPlacement(pod({ tolerations: [{ key: 'dedicated', operator: 'Exists' }] }), noExecute), { shouldRun: true, shouldContinueRunning: true })
})

t.test('the scheduler honours matchFields on metadata.name: a pinned pod goes to its node or nowhere', async (t) => {
  const pinned = pod(pinToNode({ containers: [{ name: 'c', image: 'busybox' }] }, 'b'))
  t.equal(daemonPodNode(pinned), 'b')
  t.match(schedule(pinned, { nodes: [node('a'), node('b'), node('c')].map((n) => ({ node: n, pods: [] })) }), { kind: 'bind', node: 'b' })
  t.match(schedule(pinned, { nodes: [node('a'), node('c')].map((n) => ({ node: n, pods: [] })) }), { kind: 'unschedulable', reasons: { "node(s) didn't match node selector": 2 } })
})

t.test('pinning replaces the required terms (the node already matched them) and keeps the preferred ones', async (t) => {
  const preferred = [{ weight: 1, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['x'] }] } }]
  const spec = pinToNode(
    { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'role', operator: 'Exists' }] }] }, preferredDuringSchedulingIgnoredDuringExecution: preferred } } },
    'a',
  )
  t.same(spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution, { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: ['a'] }] }] })
  t.same(spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution, preferred)
  t.equal(daemonPodNode(pod({ nodeName: 'z', ...spec })), 'z', 'a bound pod is where it is bound')
  t.equal(daemonPodNode(pod()), undefined)
})
