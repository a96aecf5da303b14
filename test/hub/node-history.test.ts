// The dashboard's per-node history: a bounded ring of heartbeat figures over the last hour, fed
// through Heartbeats, one sample per step, forgotten with the node.

import t from 'tap'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { NodeHistory } from '../../src/hub/node-history.js'

const beat = (seq: number, cpu: number, memory: number, temperature?: number) => ({ seq, uptimeMs: seq * 1000, cpu, memory, ...(temperature === undefined ? {} : { temperature }) })

t.test('a node that never sent a heartbeat has no samples', async (t) => {
  const history = new NodeHistory()
  t.same(history.samples('pi-1', 10_000), [])
  t.same(history.nodeNames(), [])
})

t.test('heartbeats one step apart become one sample each, oldest first', async (t) => {
  const history = new NodeHistory({ windowMs: 60_000, capacity: 12 }) // a 5 s step
  history.record('pi-1', { cpu: 0.1, memory: 100, temperature: 40 }, 0)
  history.record('pi-1', { cpu: 0.2, memory: 200 }, 5_000)
  history.record('pi-1', { cpu: 0.3, memory: 300, temperature: 42 }, 10_000)
  t.same(history.samples('pi-1', 10_000), [
    { atMs: 0, cpu: 0.1, memory: 100, temperature: 40 },
    { atMs: 5_000, cpu: 0.2, memory: 200 },
    { atMs: 10_000, cpu: 0.3, memory: 300, temperature: 42 },
  ])
})

t.test('heartbeats within one step are averaged into one sample', async (t) => {
  const history = new NodeHistory({ windowMs: 60_000, capacity: 12 })
  history.record('pi-1', { cpu: 0.2, memory: 100, temperature: 40 }, 0)
  history.record('pi-1', { cpu: 0.4, memory: 300 }, 1_000)
  history.record('pi-1', { cpu: 0.6, memory: 500, temperature: 50 }, 4_999)
  const [only, ...rest] = history.samples('pi-1', 5_000)
  t.same(rest, [], 'one sample for one step')
  t.equal(only.atMs, 0)
  t.ok(Math.abs(only.cpu - 0.4) < 1e-9, `cpu is the mean of the three (${only.cpu})`)
  t.ok(Math.abs(only.memory - 300) < 1e-9, `memory is the mean of the three (${only.memory})`)
  t.ok(Math.abs(only.temperature! - 45) < 1e-9, `temperature is the mean of the two that had one (${only.temperature})`)
})

t.test('the ring holds at most `capacity` samples, dropping the oldest', async (t) => {
  const history = new NodeHistory({ windowMs: 10_000, capacity: 4 }) // a 2.5 s step
  for (let i = 0; i < 10; i++) history.record('pi-1', { cpu: i / 10, memory: i }, i * 2_500)
  const samples = history.samples('pi-1', 9 * 2_500)
  t.equal(samples.length, 4)
  t.same(samples.map((s) => s.memory), [6, 7, 8, 9], 'the newest four remain, in order')
})

t.test('a ring grows as it fills, keeping order across its growth and wrap, up to its capacity', async (t) => {
  const history = new NodeHistory({ windowMs: 50_000, capacity: 50 }) // a 1 s step; the ring starts smaller
  for (let i = 0; i < 40; i++) history.record('pi-1', { cpu: i / 100, memory: i, ...(i % 2 ? { temperature: i } : {}) }, i * 1_000)
  const grown = history.samples('pi-1', 39_000)
  t.same(grown.map((s) => s.memory), Array.from({ length: 40 }, (_, i) => i), 'all forty, oldest first')
  t.same(grown.slice(0, 3), [{ atMs: 0, cpu: 0, memory: 0 }, { atMs: 1_000, cpu: 0.01, memory: 1, temperature: 1 }, { atMs: 2_000, cpu: 0.02, memory: 2 }], 'each sample whole')
  for (let i = 40; i < 130; i++) history.record('pi-1', { cpu: i / 100, memory: i }, i * 1_000)
  t.same(history.samples('pi-1', 129_000).map((s) => s.memory), Array.from({ length: 50 }, (_, i) => 80 + i), 'the newest fifty once full, in order')

  // Samples dropped from the front by the window, then the ring grows from where its oldest sample sits.
  const sparse = new NodeHistory({ windowMs: 100_000, capacity: 100 })
  for (let i = 0; i < 16; i++) sparse.record('pi-2', { cpu: 0, memory: i }, i * 1_000)
  t.same(sparse.samples('pi-2', 105_000).map((s) => s.memory), [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15], 'the window dropped the first five')
  for (let i = 106; i < 130; i++) sparse.record('pi-2', { cpu: 0, memory: i }, i * 1_000)
  const after = sparse.samples('pi-2', 129_000).map((s) => s.memory)
  t.same(after, [...[...Array(16).keys()].filter((i) => i * 1_000 >= 29_000), ...Array.from({ length: 24 }, (_, i) => 106 + i)], 'in order after growing from the middle')
})

t.test('samples older than the window are dropped, also when the node falls silent', async (t) => {
  const history = new NodeHistory({ windowMs: 60_000, capacity: 60 })
  history.record('pi-1', { cpu: 0.1, memory: 1 }, 0)
  history.record('pi-1', { cpu: 0.2, memory: 2 }, 30_000)
  t.equal(history.samples('pi-1', 59_000).length, 2)
  t.same(history.samples('pi-1', 61_000).map((s) => s.memory), [2], 'the first is more than a window old')
  t.same(history.samples('pi-1', 100_000), [], 'a node silent for a whole window has an empty chart')
})

t.test('samples are copies: a caller cannot change the history', async (t) => {
  const history = new NodeHistory()
  history.record('pi-1', { cpu: 0.5, memory: 10 }, 0)
  history.samples('pi-1', 0)[0].cpu = 99
  t.equal(history.samples('pi-1', 0)[0].cpu, 0.5)
})

t.test('nodes are kept apart and forgotten one by one', async (t) => {
  const history = new NodeHistory()
  history.record('pi-1', { cpu: 0.1, memory: 1 }, 0)
  history.record('pi-2', { cpu: 0.9, memory: 9 }, 0)
  t.same(history.nodeNames().sort(), ['pi-1', 'pi-2'])
  history.forget('pi-1')
  t.same(history.samples('pi-1', 0), [])
  t.equal(history.samples('pi-2', 0)[0].cpu, 0.9)
})

t.test('a capacity or window that cannot hold a sample is refused, naming it', async (t) => {
  t.throws(() => new NodeHistory({ capacity: 0 }), /capacity/)
  t.throws(() => new NodeHistory({ capacity: 2.5 }), /capacity/)
  t.throws(() => new NodeHistory({ windowMs: 0 }), /windowMs/)
})

t.test('Heartbeats feeds the history it was given and forgets a node in both', async (t) => {
  const history = new NodeHistory({ windowMs: 60_000, capacity: 12 })
  const heartbeats = new Heartbeats(history)
  heartbeats.record('pi-1', beat(1, 0.25, 512, 48.5), 1_000)
  heartbeats.record('pi-1', beat(2, 0.5, 1024), 6_000)
  heartbeats.seen('pi-1', 7_000)
  t.same(history.samples('pi-1', 7_000), [
    { atMs: 1_000, cpu: 0.25, memory: 512, temperature: 48.5 },
    { atMs: 6_000, cpu: 0.5, memory: 1024 },
  ], 'each heartbeat, and nothing for a message that is not one')
  heartbeats.forget('pi-1')
  t.same(history.samples('pi-1', 7_000), [])
  t.equal(heartbeats.get('pi-1'), undefined)
})

t.test('Heartbeats without a history keeps none', async (t) => {
  const heartbeats = new Heartbeats()
  heartbeats.record('pi-1', beat(1, 0.1, 1), 0)
  t.equal(heartbeats.get('pi-1')?.heartbeat?.cpu, 0.1)
})
