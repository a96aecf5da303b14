// TurnBudget spreads a burst over turns of the event loop: at most its budget per turn, the rest
// on later turns with I/O polled in between, and nothing waits while budget is left.

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

t.test('a burst of takes runs at most the budget per turn, in order, and all of it', async (t) => {
  const budget = new TurnBudget(8)
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
  t.ok([...perTurn.values()].every((n) => n <= 8), `no turn ran more than 8 (${[...perTurn.values()].join(' ')})`)
  t.ok(perTurn.size >= 13, `spread over at least 13 turns (${perTurn.size})`)
})

t.test('while budget is left, take does not wait for another turn', async (t) => {
  const budget = new TurnBudget(8)
  const turns = turnCounter()
  const start = turns.now()
  for (let i = 0; i < 8; i++) await budget.take()
  t.equal(turns.now(), start, 'eight takes in the turn they were asked in')
  // A later turn starts with its whole budget again.
  await new Promise((r) => setImmediate(r))
  await new Promise((r) => setImmediate(r))
  const later = turns.now()
  for (let i = 0; i < 8; i++) await budget.take()
  t.equal(turns.now(), later, 'and eight more on a later turn')
  turns.stop()
})
