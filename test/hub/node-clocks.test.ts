// A node's clock against the hub's: the offset learned from heartbeats, kept steady through
// latency, and the times a node reports moved by it.

import t from 'tap'
import { describeSkew, NodeClocks, shiftNodeTimes, SKEW_TOLERANCE_MS } from '../../src/hub/node-clocks.js'

const HUB_NOW = Date.parse('2026-11-29T12:00:00Z')

t.test('a node 7 minutes ahead gets an offset of -7 minutes, in whole seconds', async (t) => {
  const clocks = new NodeClocks()
  t.equal(clocks.offsetMs('pi'), 0, 'unknown: no correction')
  t.equal(clocks.observe('pi', HUB_NOW + 7 * 60_000 + 340, HUB_NOW), -420_000)
  t.equal(clocks.offsetMs('pi'), -420_000)
  t.equal(describeSkew(-420_000), '7m ahead of')
  t.equal(describeSkew(125_000), '2m5s behind')
})

t.test('readings within the tolerance of the kept offset change nothing (latency must not make statuses differ)', async (t) => {
  const clocks = new NodeClocks()
  clocks.observe('pi', HUB_NOW - 300_000, HUB_NOW)
  for (const jitter of [-1500, -200, 0, 300, 1999]) t.equal(clocks.observe('pi', HUB_NOW - 300_000 + jitter, HUB_NOW), undefined, `jitter ${jitter} ms`)
  t.equal(clocks.offsetMs('pi'), 300_000)
  t.equal(clocks.observe('pi', HUB_NOW, HUB_NOW), 0, 'the clock set right: the offset goes back to 0')
})

t.test('a node within the tolerance is never corrected', async (t) => {
  const clocks = new NodeClocks()
  t.equal(clocks.observe('pi', HUB_NOW - SKEW_TOLERANCE_MS, HUB_NOW), undefined)
  t.equal(clocks.offsetMs('pi'), 0)
})

t.test("a pod status's and an event's times are moved by the offset; other fields and the engine's zero time stay", async (t) => {
  const status = {
    phase: 'Running',
    startTime: '2026-11-29T12:07:00Z',
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-29T12:07:05Z' }],
    containerStatuses: [{ name: 'app', restartCount: 2, state: { running: { startedAt: '2026-11-29T12:07:04.123Z' } }, lastState: { terminated: { finishedAt: '0001-01-01T00:00:00Z', exitCode: 1 } } }],
  }
  const shifted = shiftNodeTimes(status, -420_000)
  t.same(shifted, {
    phase: 'Running',
    startTime: '2026-11-29T12:00:00Z',
    conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-11-29T12:00:05Z' }],
    containerStatuses: [{ name: 'app', restartCount: 2, state: { running: { startedAt: '2026-11-29T12:00:04Z' } }, lastState: { terminated: { finishedAt: '0001-01-01T00:00:00Z', exitCode: 1 } } }],
  })
  t.equal(status.startTime, '2026-11-29T12:07:00Z', 'the input is not changed')
  t.same(shiftNodeTimes({ reason: 'Started', firstTimestamp: '2026-11-29T11:55:00Z', lastTimestamp: 'soon' }, 300_000), { reason: 'Started', firstTimestamp: '2026-11-29T12:00:00Z', lastTimestamp: 'soon' })
  t.equal(shiftNodeTimes(status, 0), status, 'no offset: the same object')
})
