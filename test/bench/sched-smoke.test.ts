// bench/sched at a small size: every pod is bound by the real scheduler, lands on a node that meets
// its constraints, and is reported Running by its simulated agent. Speed is the benchmark's to
// print, not this test's to assert.

import t from 'tap'
import { runSchedBench } from '../../bench/sched.js'

t.test('20 simulated nodes take 200 pods: all bound where they fit, all reported Running', async (t) => {
  const r = await runSchedBench({ nodes: 20, pods: 200, timeoutMs: 240_000 })
  t.equal(r.bound, 200, 'every pod bound')
  t.equal(r.running, 200, 'every pod reported Running')
  t.equal(r.boundWhileHeld, 0, 'nothing bound while the scheduler was held for the agents to reconnect')
  t.equal(r.misplaced, 0, 'no pod on a node that breaks its selector, architecture or taints')
  t.ok(r.boundPerSecond > 0 && r.runningPerSecond > 0, 'figures computed')
  t.ok(Number.isFinite(r.hubCpuMicrosPerBinding) && r.hubCpuMicrosPerBinding > 0, "the hub's CPU per binding measured")
})
