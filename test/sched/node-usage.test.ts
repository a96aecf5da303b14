// The nodes' hot numbers side by side (node-usage.ts): a table kept up to date as pods land makes
// the same decisions as the snapshot it mirrors, and holds what the snapshot says.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { nodeUsage, writeUsage } from '../../src/sched/node-usage.js'
import { schedule } from '../../src/sched/scheduler.js'
import type { NodeSnapshot } from '../../src/sched/snapshot.js'

const GiB = 1024 ** 3

function node(i: number): KubeObject {
  const cores = [2, 4, 8][i % 3]!
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: `n-${String(i).padStart(3, '0')}`, labels: { zone: `z${i % 4}`, 'kubernetes.io/arch': i % 2 ? 'amd64' : 'arm64' } },
    spec: i % 5 === 0 ? { taints: [{ key: 'maintenance', value: 'soon', effect: 'PreferNoSchedule' }] } : {},
    status: { allocatable: { cpu: String(cores), memory: String(cores * GiB), pods: '20' }, conditions: [{ type: 'Ready', status: 'True' }] },
  } as KubeObject
}

function pod(i: number): KubeObject {
  const spec: Record<string, any> = { containers: [{ name: 'app', image: 'app:1', ...(i % 6 === 5 ? {} : { resources: { requests: { cpu: `${100 + (i % 4) * 150}m`, memory: `${64 * (1 + (i % 3))}Mi` } } }) }] }
  if (i % 7 === 3) spec.nodeSelector = { zone: `z${i % 4}` }
  if (i % 9 === 4) spec.tolerations = [{ key: 'maintenance', operator: 'Exists', effect: 'PreferNoSchedule' }]
  if (i % 11 === 6) spec.affinity = { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 10, preference: { matchExpressions: [{ key: 'zone', operator: 'In', values: ['z1'] }] } }] } }
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, namespace: 'default', uid: `uid-${i}` }, spec } as KubeObject
}

t.test('a table kept as pods land decides exactly as the snapshot it mirrors, until the cluster is full', async (t) => {
  // Two clusters of the same nodes: one decided from its snapshot alone, one from a kept table.
  const plain: NodeSnapshot[] = Array.from({ length: 120 }, (_, i) => ({ node: node(i), pods: [] }))
  const kept: NodeSnapshot[] = plain.map((n) => ({ node: n.node, pods: [] }))
  const usage = nodeUsage(kept)
  let startPlain = 0
  let startKept = 0
  let bound = 0
  let unschedulable = 0
  for (let i = 0; i < 2400; i++) {
    const p = pod(i)
    const a = schedule(p, { nodes: plain }, { strategy: i % 5 === 0 ? 'binpack' : 'spread', startIndex: startPlain })
    const b = schedule(p, { nodes: kept, usage }, { strategy: i % 5 === 0 ? 'binpack' : 'spread', startIndex: startKept })
    if (JSON.stringify(a) !== JSON.stringify(b)) {
      t.same(b, a, `pod ${i}: the same decision`)
      return
    }
    startPlain = (startPlain + a.visited) % plain.length
    startKept = (startKept + b.visited) % kept.length
    if (a.kind !== 'bind') {
      unschedulable++
      continue
    }
    bound++
    const placed = { ...p, spec: { ...p.spec, nodeName: a.node } }
    const at = plain.findIndex((n) => n.node.metadata.name === a.node)
    plain[at] = { ...plain[at]!, pods: [...plain[at]!.pods, placed] }
    kept[at]!.pods = [...kept[at]!.pods, placed]
    writeUsage(usage, at, kept[at]!)
  }
  t.ok(bound > 1000, `most pods bound (${bound})`)
  t.ok(unschedulable > 0, `and the cluster filled up (${unschedulable} did not fit)`)
  t.strictSame(usage, nodeUsage(kept), 'the kept table holds what the snapshot says')
})

t.test('a node without pods counts nothing; kept sums are taken as given', async (t) => {
  t.strictSame(nodeUsage([]).pods, new Float64Array(0), 'no nodes, an empty table')
  const empty = nodeUsage([{ node: node(1), pods: [] }])
  for (const column of Object.values(empty)) t.strictSame(column, new Float64Array([0]))
  const withPods: NodeSnapshot = { node: node(1), pods: [pod(0), pod(5)] }
  const counted = nodeUsage([withPods])
  t.equal(counted.pods[0], 2)
  t.equal(counted.cpuMilli[0], 100, 'requests summed (the second pod asks for nothing)')
  t.equal(counted.nonZeroCpuMilli[0], 200, 'a pod asking for nothing counts 100m for the scorers')
  const given = nodeUsage([{ ...withPods, requested: { cpuMilli: 7, memoryBytes: 8 }, nonZeroRequested: { cpuMilli: 9, memoryBytes: 10 }, antiAffinityPods: 1 }])
  t.same([given.cpuMilli[0], given.memoryBytes[0], given.nonZeroCpuMilli[0], given.nonZeroMemoryBytes[0], given.antiAffinityPods[0]], [7, 8, 9, 10, 1])
})
