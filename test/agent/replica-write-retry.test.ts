// While the replica cannot be written: one log line per streak of failures, a request for the
// desired state again every retry period, and quiet once a write succeeds.

import { Writable } from 'node:stream'
import t from 'tap'
import { ReplicaWriteRetry } from '../../src/agent/replica-write-retry.js'
import { createLogger } from '../../src/lib/logger.js'
import { FakeClock } from './fake-clock.js'

function setup() {
  const lines: Array<{ level: number; msg: string }> = []
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l))
      done()
    },
  })
  const clock = new FakeClock()
  let resyncs = 0
  const retry = new ReplicaWriteRetry({ clock, logger: createLogger({ level: 'info', destination }), resync: () => resyncs++, retryMs: 5_000 })
  return { retry, clock, lines, resyncs: () => resyncs }
}

const settle = () => new Promise((r) => setImmediate(r))

t.test('a streak of failures is logged once and retried every period until a write succeeds', async (t) => {
  const { retry, clock, lines, resyncs } = setup()
  for (let i = 0; i < 5; i++) retry.failed(new Error(`no room ${i}`))
  clock.advance(5_000)
  t.equal(resyncs(), 1, 'one request for the desired state per period, however many failures')
  retry.failed(new Error('no room again'))
  clock.advance(5_000)
  t.equal(resyncs(), 2)
  await settle()
  t.equal(lines.filter((l) => l.level === 50).length, 1, 'one error line for the whole streak')
  t.ok(retry.isFailing)
  retry.succeeded()
  clock.advance(20_000)
  t.equal(resyncs(), 2, 'no more requests once a write succeeded')
  await settle()
  t.match(lines.at(-1), { level: 30, msg: 'desired state stored again' })
  retry.failed(new Error('no room, later'))
  await settle()
  t.equal(lines.filter((l) => l.level === 50).length, 2, 'a new streak is said again')
})

t.test('success with no failure before says nothing; stop ends the retries', async (t) => {
  const { retry, clock, lines, resyncs } = setup()
  retry.succeeded()
  retry.failed(new Error('no room'))
  retry.stop()
  clock.advance(60_000)
  await settle()
  t.equal(resyncs(), 0)
  t.equal(lines.filter((l) => l.msg === 'desired state stored again').length, 0)
})
