// TurnBudget spreads a burst over turns of the event loop: a turn grants starts for at most its
// budget of milliseconds (counted on an injected clock here, moved by the work itself), the rest on
// later turns with I/O polled in between, in order, with at most maxInFlight running at once;
// nothing waits while budget is left.

import t from 'tap'
import { TurnBudget } from '../../src/lib/turn-budget.js'

/** Counts turns of the event loop (one setImmediate per turn) until stopped. */
function turnCounter(): { now(): number; stop(): void } {
  let turn = 0
  let stopped = false
  const tick = () => {
    if (stopped) return
    turn++
    setImmediate(tick)
  }
  setImmediate(tick)
  return { now: () => turn, stop: () => (stopped = true) }
}

/** A clock that moves only when work says it has taken time. */
function workClock(): { now(): number; spend(ms: number): void } {
  let ms = 0
  return { now: () => ms, spend: (d) => (ms += d) }
}

function perTurn(turns: number[]): number[] {
  const counts = new Map<number, number>()
  for (const turn of turns) counts.set(turn, (counts.get(turn) ?? 0) + 1)
  return [...counts.values()]
}

t.test('a burst asked for all at once runs at most its budget per turn, judged after the work ran, in order', async (t) => {
  const clock = workClock()
  const budget = new TurnBudget(8, 1, clock.now)
  const turns = turnCounter()
  const seen: Array<{ i: number; turn: number }> = []
  // Every start is asked for before any work has run: the budget must still hold.
  await Promise.all(
    Array.from({ length: 100 }, (_, i) =>
      budget.run(() => {
        clock.spend(1)
        seen.push({ i, turn: turns.now() })
      }),
    ),
  )
  turns.stop()
  t.equal(seen.length, 100, 'every piece of work ran')
  t.same(seen.map((s) => s.i), [...Array(100).keys()], 'in the order it was asked for')
  const counts = perTurn(seen.map((s) => s.turn))
  t.ok(counts.every((n) => n <= 8), `no turn ran more than its budget (${counts.join(' ')})`)
  t.ok(counts.length >= 13, `spread over at least 13 turns (${counts.length})`)
})

t.test('at most maxInFlight pieces of work run at once; each release lets the next start', async (t) => {
  const budget = new TurnBudget(1_000, 4, () => 0)
  let running = 0
  let most = 0
  await Promise.all(
    Array.from({ length: 20 }, () =>
      budget.run(async () => {
        running++
        most = Math.max(most, running)
        await new Promise((r) => setTimeout(r, 1))
        running--
      }),
    ),
  )
  t.equal(most, 4, 'four at a time, and no more')
  t.equal(running, 0, 'all of it finished')
})

t.test('work that throws releases its start, and releasing twice frees one slot only', async (t) => {
  const budget = new TurnBudget(1_000, 1, () => 0)
  await t.rejects(budget.run(() => Promise.reject(new Error('boom'))), /boom/)
  t.equal(await budget.run(() => 'next'), 'next', 'the next work starts after a failed one')
  const release = await budget.enter()
  release()
  release()
  const first = await budget.enter()
  let secondStarted = false
  const second = budget.enter().then((r) => {
    secondStarted = true
    return r
  })
  await new Promise((r) => setImmediate(r))
  t.equal(secondStarted, false, 'the extra release did not open a second slot')
  first()
  ;(await second)()
  t.equal(secondStarted, true)
})

t.test('while budget is left, work does not wait for another turn; a later turn starts whole', async (t) => {
  const clock = workClock()
  const budget = new TurnBudget(1_000, 1, clock.now)
  const turns = turnCounter()
  const start = turns.now()
  for (let i = 0; i < 100; i++) await budget.run(() => clock.spend(1))
  t.equal(turns.now(), start, 'a hundred cheap pieces in the turn they were asked in')
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  const later = turns.now()
  for (let i = 0; i < 100; i++) await budget.run(() => clock.spend(1))
  t.equal(turns.now(), later, 'and a hundred more on a later turn')
  turns.stop()
})

t.test('maxInFlight below 1 is refused', async (t) => {
  t.throws(() => new TurnBudget(10, 0), /maxInFlight must be at least 1/)
})
