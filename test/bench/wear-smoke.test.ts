// bench/wear at its smallest: a real hub and one real agent in a network namespace with its own
// dockerd, two quiet pods, a window of 12 s. The report names every figure; the hub's store takes
// no write while the cluster idles (heartbeats stay in memory, an unchanged node status is not
// written). The bytes per hour are the benchmark's to print, not this test's to assert.

import t from 'tap'
import { formatWear, parseWearArgs, runWearBench } from '../../bench/wear.js'
import { netnsUnavailable } from '../helpers/netns-host.js'

t.test('flags: defaults, and a bad value is refused naming its flag', async (t) => {
  t.same(parseWearArgs([]), { minutes: 10, agents: 3, podsPerAgent: 10, settleSeconds: 70 })
  t.same(parseWearArgs(['--minutes', '0.5', '--agents=1', '--pods', '2', '--settle-seconds', '0']), { minutes: 0.5, agents: 1, podsPerAgent: 2, settleSeconds: 0 })
  t.throws(() => parseWearArgs(['--minutes', '0']), /--minutes must be a number of minutes to measure from 0.05 to 1440, got "0"/)
  t.throws(() => parseWearArgs(['--minutes']), /--minutes must be/)
  t.throws(() => parseWearArgs(['--agents', '4']), /--agents must be a whole number/)
  t.throws(() => parseWearArgs(['--pods', '2.5']), /--pods must be a whole number/)
  t.throws(() => parseWearArgs(['--hours', '1']), /unknown flag "--hours"/)
})

t.test('an idle cluster of one agent and two pods: every figure printed, no store write in the window', async (t) => {
  const unavailable = await netnsUnavailable()
  if (unavailable) return t.plan(0, unavailable)
  const r = await runWearBench({ minutes: 0.2, agents: 1, podsPerAgent: 2, settleSeconds: 5 })
  const report = formatWear(r)
  t.comment(report)
  t.equal(r.podsRunning, 2, 'both pods still Running and Ready at the end')
  for (const w of [r.hub, r.agent, r.agentDockerd, r.idleDockerd]) {
    t.ok(w.processes >= 1, `${w.label}: processes found`)
    t.ok(Number.isFinite(w.writeBytes) && w.writeBytes >= 0, `${w.label}: write_bytes read`)
    t.ok(w.wchar > 0 || w.label.startsWith('idle'), `${w.label}: wchar read`)
  }
  t.ok(r.agentDockerd.processes >= 3, "the agent's dockerd counted with its containerd and shims")
  for (const label of ['hub ', 'agent wr-node-0 ', 'dockerd of wr-node-0 ', 'idle dockerd (baseline', "dockerd on the agent's behalf", 'ratio to aim 1 MB/h', 'ratio to aim 100 KB/h', 'ratio to idle dockerd', 'write_bytes of /proc/PID/io']) {
    t.match(report, label, `the report has "${label}"`)
  }
  t.match(report, /hub\s+\d+\.\d+ [KM]B\/h to disk/, 'the hub figure is bytes per hour')
  t.equal(r.storeRevisions, 0, 'the hub store took no write while the cluster was idle')
})
