import t from 'tap'
import { WorkQueue } from '../../src/lib/work-queue.js'
import { FakeClock } from '../agent/fake-clock.js'

const tick = () => new Promise((r) => setImmediate(r))

function deferred() {
  let resolve!: () => void
  const promise = new Promise<void>((r) => (resolve = r))
  return { promise, resolve }
}

t.test('does nothing when nothing is added', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue<string>({ clock })
  const seen: string[] = []
  q.start(async (k) => void seen.push(k))
  clock.advance(60_000)
  await tick()
  t.same(seen, [])
  t.equal(clock.pendingTimers, 0)
  await q.stop()
})

t.test('a key added several times before it runs runs once', async (t) => {
  const q = new WorkQueue<string>({ clock: new FakeClock() })
  q.add('a')
  q.add('a')
  q.add('b')
  q.add('a')
  const seen: string[] = []
  q.start(async (k) => void seen.push(k))
  await q.idle()
  t.same(seen, ['a', 'b'])
  await q.stop()
})

t.test('a key never runs twice at once; one added while running runs again after', async (t) => {
  const q = new WorkQueue<string>({ clock: new FakeClock(), workers: 4 })
  let concurrent = 0
  let maxConcurrent = 0
  let runs = 0
  const gate = deferred()
  q.start(async () => {
    concurrent++
    runs++
    maxConcurrent = Math.max(maxConcurrent, concurrent)
    if (runs === 1) await gate.promise
    concurrent--
  })
  q.add('a')
  await tick()
  q.add('a')
  q.add('a')
  await tick()
  t.equal(runs, 1, 'the second add waits for the first run')
  gate.resolve()
  await q.idle()
  t.equal(runs, 2, 'added while running: runs once more')
  t.equal(maxConcurrent, 1)
  await q.stop()
})

t.test('runs different keys on several workers at once', async (t) => {
  const q = new WorkQueue<string>({ clock: new FakeClock(), workers: 2 })
  const gate = deferred()
  const started: string[] = []
  q.start(async (k) => {
    started.push(k)
    await gate.promise
  })
  q.add('a')
  q.add('b')
  q.add('c')
  await tick()
  t.same(started, ['a', 'b'], 'two workers, two keys at once')
  gate.resolve()
  await q.idle()
  t.same(started, ['a', 'b', 'c'])
  await q.stop()
})

t.test('a failing handler requeues its key with doubling, capped back-off', async (t) => {
  const clock = new FakeClock()
  const errors: unknown[] = []
  const q = new WorkQueue<string>({ clock, baseDelayMs: 100, maxDelayMs: 300, onError: (_k, e) => errors.push(e) })
  let runs = 0
  let failing = true
  q.start(async () => {
    runs++
    if (failing) throw new Error('boom')
  })
  q.add('a')
  await tick()
  t.equal(runs, 1)
  clock.advance(99)
  await tick()
  t.equal(runs, 1, 'not before the base delay')
  clock.advance(1)
  await tick()
  t.equal(runs, 2, 'requeued after 100 ms')
  clock.advance(199)
  await tick()
  t.equal(runs, 2)
  clock.advance(1)
  await tick()
  t.equal(runs, 3, 'then after 200 ms')
  clock.advance(300)
  await tick()
  t.equal(runs, 4, 'then capped at 300 ms')
  t.equal(q.failuresOf('a'), 4)
  failing = false
  clock.advance(300)
  await tick()
  t.equal(runs, 5)
  t.equal(clock.pendingTimers, 0, 'a success does not requeue')
  t.equal(errors.length, 4)
  await q.stop()
})

t.test('forget resets the back-off of a key', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue<string>({ clock, baseDelayMs: 100 })
  q.addRateLimited('a')
  q.addRateLimited('a')
  q.addRateLimited('a')
  t.equal(q.failuresOf('a'), 3)
  q.forget('a')
  t.equal(q.failuresOf('a'), 0)
  const seen: string[] = []
  q.start(async (k) => void seen.push(k))
  clock.advance(100)
  await tick()
  t.same(seen, ['a'], 'the pending delay of the first add still fires')
  await q.stop()
})

t.test('addAfter runs a key after its delay; the earlier of two delays wins', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue<string>({ clock })
  const seen: string[] = []
  q.start(async (k) => void seen.push(k))
  q.addAfter('a', 1000)
  q.addAfter('a', 500)
  q.addAfter('a', 2000)
  clock.advance(499)
  await tick()
  t.same(seen, [])
  clock.advance(1)
  await tick()
  t.same(seen, ['a'])
  clock.advance(5000)
  await tick()
  t.same(seen, ['a'], 'the later delays were replaced, not kept')
  await q.stop()
})

t.test('stop drops pending work and waits for running keys', async (t) => {
  const clock = new FakeClock()
  const q = new WorkQueue<string>({ clock })
  const gate = deferred()
  const seen: string[] = []
  q.start(async (k) => {
    seen.push(k)
    if (k === 'a') await gate.promise
  })
  q.add('a')
  q.add('b')
  q.addAfter('c', 10)
  await tick()
  let stopped = false
  const stopping = q.stop().then(() => (stopped = true))
  await tick()
  t.equal(stopped, false, 'waits for the running key')
  gate.resolve()
  await stopping
  clock.advance(100)
  q.add('d')
  await tick()
  t.same(seen, ['a'])
})
