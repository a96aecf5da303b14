// The heartbeat lag the hub measures (bramble_heartbeat_lag_seconds on /metrics): for each heartbeat
// that carries its send time, the time from the node sending it to the hub having recorded it, on a
// real LMDB store with the real intake and informers. A heartbeat without a send time adds nothing,
// and a node whose clock runs ahead counts as no lag rather than a negative one. A heartbeat is
// recorded as it arrives, never queued behind the node's status writes, and never written. A
// burst of status writes from many nodes goes to the store a bounded number at a time, so the
// event loop polls its sockets (and their heartbeats) between them.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import { encodeMessage, upTopic, type HeartbeatMessage } from '../../src/api/protocol.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { HubMetrics } from '../../src/hub/hub-metrics.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NodeStatusIntake } from '../../src/hub/node-status-intake.js'
import { Registry } from '../../src/hub/registry.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'
import { sampleValue } from '../helpers/prometheus-text.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

const dir = mkdtempSync(join(tmpdir(), 'hb-lag-'))
const clock = new FakeClock()
const store = await openLmdbStore({ path: join(dir, 'store') })
const registry = new Registry(store, clock, silentLogger())
const pods = new Informer(registry, kind('Pod'))
const nodes = new Informer(registry, kind('Node'))
const heartbeats = new Heartbeats()
const metrics = new HubMetrics()
const lags: number[] = []
const nop = () => {}
const intake = new NodeStatusIntake({
  registry,
  pods,
  nodes,
  heartbeats,
  clock,
  logger: silentLogger(),
  onSync: nop,
  onAck: nop,
  onRpcReply: nop,
  onAlive: nop,
  onOffline: nop,
  onHeartbeatLag: (seconds) => {
    lags.push(seconds)
    metrics.heartbeatLag(seconds)
  },
})
await registry.create(kind('Node'), '', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1' } }, WRITE)
await pods.start()
await nodes.start()
t.teardown(async () => {
  pods.stop()
  nodes.stop()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

let seq = 0
const beat = (at?: number) => {
  const message: HeartbeatMessage = { seq: ++seq, uptimeMs: 1000 * seq, cpu: 0.1, memory: 1 << 20, ...(at === undefined ? {} : { at }) }
  intake.handle(upTopic('pi-1', 'heartbeat'), encodeMessage(message))
}
const scrape = async () => (await metrics.scrape()).body

t.test('a heartbeat sent 300 ms before the hub records it counts as 0.3 s of lag', async (t) => {
  beat(clock.now() - 300)
  t.same(lags, [0.3], 'one lag, in seconds')
  t.equal(heartbeats.get('pi-1')?.heartbeat?.seq, seq, 'and the heartbeat itself is recorded')
  const text = await scrape()
  t.equal(sampleValue(text, 'bramble_heartbeat_lag_seconds_count'), 1, 'the /metrics histogram counted it')
  t.equal(sampleValue(text, 'bramble_heartbeat_lag_seconds_bucket', { le: '0.25' }), 0, 'not in the 250 ms bucket')
  t.equal(sampleValue(text, 'bramble_heartbeat_lag_seconds_bucket', { le: '0.5' }), 1, 'in the 500 ms bucket')
})

t.test('a heartbeat without its send time (an older agent) adds no lag', async (t) => {
  const before = lags.length
  beat()
  t.equal(lags.length, before, 'nothing observed')
  t.equal(heartbeats.get('pi-1')?.heartbeat?.seq, seq, 'the heartbeat is still recorded')
  t.equal(sampleValue(await scrape(), 'bramble_heartbeat_lag_seconds_count'), 1, 'the histogram is unchanged')
})

t.test("a node whose clock is ahead of the hub's counts as no lag, never a negative one", async (t) => {
  beat(clock.now() + 5_000)
  t.equal(lags.at(-1), 0)
  t.equal(sampleValue(await scrape(), 'bramble_heartbeat_lag_seconds_bucket', { le: '0.001' }), 1, 'in the lowest bucket')
})

t.test('other messages with a send time are not heartbeats and add no lag', async (t) => {
  const before = lags.length
  intake.handle(upTopic('pi-1', 'events'), encodeMessage({ events: [], at: clock.now() - 100 }))
  await intake.idle()
  t.equal(lags.length, before)
})

t.test('a heartbeat is recorded at once, never queued behind node status writes, and written nowhere', async (t) => {
  const revisionBefore = await store.revision()
  // Status reports that each change the Node's meaning: every one is a write, queued on the node's chain.
  for (let i = 0; i < 20; i++) {
    const status = { capacity: { cpu: '4', memory: `${1000 + i}Mi`, pods: '110' }, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] }
    intake.handle(upTopic('pi-1', 'node-status'), encodeMessage({ status }))
  }
  let statusWritesDone = false
  const writes = intake.idle().then(() => (statusWritesDone = true))
  const lagsBefore = lags.length
  beat(clock.now() - 50)
  t.equal(statusWritesDone, false, 'the status writes are still pending')
  t.equal(heartbeats.get('pi-1')?.heartbeat?.seq, seq, 'the heartbeat is recorded already')
  t.equal(lags.length, lagsBefore + 1, 'and its lag observed')
  await writes
  const revisionAfterStatus = await store.revision()
  t.ok(revisionAfterStatus > revisionBefore, 'the status reports were written')
  for (let i = 0; i < 50; i++) beat(clock.now())
  await intake.idle()
  t.equal(await store.revision(), revisionAfterStatus, 'heartbeats write nothing')
})

t.test('a burst of status writes from many nodes reaches the store a bounded number at a time, over many turns', async (t) => {
  const NODES = 300
  const REPORTS = 2
  for (let n = 0; n < NODES; n++) await registry.create(kind('Node'), '', { apiVersion: 'v1', kind: 'Node', metadata: { name: `burst-${n}` } }, WRITE)
  await new Promise((r) => setTimeout(r, 50)) // the Node informer has them all
  // Writes seen per turn of the event loop, as the store hands them to a watch.
  let turn = 0
  let ticking = true
  const tick = () => {
    if (!ticking) return
    turn++
    setImmediate(tick)
  }
  setImmediate(tick)
  const perTurn = new Map<number, number>()
  const watch = registry.watch(kind('Node'), '', await store.revision(), () => perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1))
  // Every report changes the Node's meaning: each one is a write. All of them arrive in one go.
  for (let i = 0; i < REPORTS; i++) {
    for (let n = 0; n < NODES; n++) {
      const status = { capacity: { cpu: '4', memory: `${2000 + i}Mi`, pods: '110' }, conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] }
      intake.handle(upTopic(`burst-${n}`, 'node-status'), encodeMessage({ status }))
    }
  }
  const lagsBefore = lags.length
  intake.handle(upTopic('pi-1', 'heartbeat'), encodeMessage({ seq: ++seq, uptimeMs: 1, cpu: 0.1, memory: 1 << 20, at: clock.now() }))
  t.equal(lags.length, lagsBefore + 1, 'a heartbeat behind the burst is recorded at once')
  await intake.idle()
  await new Promise((r) => setTimeout(r, 20))
  ticking = false
  watch.stop()
  const counts = [...perTurn.values()]
  t.equal(counts.reduce((a, b) => a + b, 0), NODES * REPORTS, 'every report was written')
  // 64 writes are under way at once; two commits may land in one turn.
  t.ok(Math.max(...counts) <= 128, `no turn wrote more than 128 (most: ${Math.max(...counts)})`)
  t.ok(counts.length >= 4, `spread over ${counts.length} turns`)
})
