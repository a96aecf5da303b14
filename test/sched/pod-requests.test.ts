// A pod's requests are worked out once for all its versions: the copies the hub makes of one pod
// (assumed bound, bound, reported Running) share its containers array, and what was worked out is
// kept with that array. A copy with other containers or init containers is worked out again.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { nonZeroRequests, podExtendedRequests, podRequests } from '../../src/sched/snapshot.js'

const pod = (cpu: string, memory?: string): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'p', namespace: 'default' },
  spec: { containers: [{ name: 'c', image: 'busybox', resources: { requests: { cpu, ...(memory ? { memory } : {}) } } }] },
})

t.test('copies sharing the containers array share the worked-out requests', async (t) => {
  const p = pod('250m', '64Mi')
  const first = podRequests(p)
  t.same(first, { cpuMilli: 250, memoryBytes: 64 * 1024 * 1024 })
  const bound = { ...p, spec: { ...p.spec, nodeName: 'n1' }, status: { phase: 'Running' } }
  t.equal(podRequests(bound), first, 'the bound copy reads the same result, not a new one')
  t.equal(nonZeroRequests(bound), nonZeroRequests(p), 'so do the scored requests')
  t.equal(podExtendedRequests(bound), podExtendedRequests(p), 'and the extended ones')
})

t.test('other containers or init containers are worked out again (the do-nothing case is above)', async (t) => {
  const p = pod('250m')
  t.same(podRequests(p), { cpuMilli: 250, memoryBytes: 0 })
  t.same(nonZeroRequests(p), { cpuMilli: 250, memoryBytes: 200 * 1024 * 1024 }, 'no memory asked: the scorers count the default')
  const other = pod('1')
  t.same(podRequests(other), { cpuMilli: 1000, memoryBytes: 0 }, 'a pod of its own containers')
  const withInit = { ...p, spec: { ...p.spec, initContainers: [{ name: 'i', image: 'busybox', resources: { requests: { cpu: '2' } } }] } }
  t.same(podRequests(withInit), { cpuMilli: 2000, memoryBytes: 0 }, 'same containers array, an init container asking for more: worked out again')
  t.same(podRequests(p), { cpuMilli: 250, memoryBytes: 0 }, 'and the first version still reads its own')
  t.same(podRequests({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bare' }, spec: {} }), { cpuMilli: 0, memoryBytes: 0 }, 'a pod without containers asks for nothing')
})
