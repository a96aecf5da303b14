// TurnBudget spreads a burst over turns of the event loop: a turn runs takes for at most its
// budget of milliseconds (counted on an injected clock here, one "ms" per take), the rest on later
// turns with I/O polled in between, in order; nothing waits while budget is left.

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

/** A clock that moves one ms each time it is read: work that costs 1 ms per take. */
function steppingClock(): () => number {
  let ms = 0
  return () => ms++
}

t.test('a burst runs at most its budget per turn, in order, and all of it', async (t) => {
  const budget = new TurnBudget(8, steppingClock())
  const turns = turnCounter()
  const seen: Array<{ i: number; turn: number }> = []
  await Promise.all(
    Array.from({ length: 100 }, async (_, i) => {
      await budget.take()
      seen.push({ i, turn: turns.now() })
    }),
  )
  turns.stop()
  t.equal(seen.length, 100, 'every take went through')
  t.same(seen.map((s) => s.i), [...Array(100).keys()], 'in the order they were asked for')
  const perTurn = new Map<number, number>()
  for (const s of seen) perTurn.set(s.turn, (perTurn.get(s.turn) ?? 0) + 1)
  t.ok([...perTurn.values()].every((n) => n <= 8), `no turn ran more than its budget (${[...perTurn.values()].join(' ')})`)
  t.ok(perTurn.size >= 13, `spread over at least 13 turns (${perTurn.size})`)
})

t.test('while budget is left, take does not wait for another turn; a later turn starts whole', async (t) => {
  const budget = new TurnBudget(1_000, steppingClock())
  const turns = turnCounter()
  const start = turns.now()
  for (let i = 0; i < 100; i++) await budget.take()
  t.equal(turns.now(), start, 'a hundred cheap takes in the turn they were asked in')
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  const later = turns.now()
  for (let i = 0; i < 100; i++) await budget.take()
  t.equal(turns.now(), later, 'and a hundred more on a later turn')
  turns.stop()
})
