// bench/sched-core at a small size: the leader's controllers bind every stored pod, and both CPU
// figures are measured. Speed is the benchmark's to print, not this test's to assert.

import t from 'tap'
import { runSchedCoreBench } from '../../bench/sched-core.js'

t.test('50 nodes take 500 pods through the controllers alone: all bound, CPU per binding and per create measured', async (t) => {
  const r = await runSchedCoreBench({ nodes: 50, pods: 500, timeoutMs: 120_000 })
  t.equal(r.bound, 500, 'every pod bound')
  t.ok(Number.isFinite(r.bindCpuMicros) && r.bindCpuMicros > 0, 'CPU per binding measured')
  t.ok(Number.isFinite(r.createCpuMicros) && r.createCpuMicros > 0, 'CPU per create measured')
  t.ok(r.boundPerSecond > 0, 'a rate computed')
})
