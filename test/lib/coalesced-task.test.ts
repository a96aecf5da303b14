// coalescedTask: calls made while the task runs share one more run, which starts after the current
// one and sees what changed before it; the task never runs twice at once; a failed run fails the
// calls it covered and not the next ones.

import t from 'tap'
import { coalescedTask } from '../../src/lib/coalesced-task.js'

/** A task whose runs the test finishes by hand, recording the state each run saw. */
function manualTask() {
  const runs: Array<{ saw: number; finish: (err?: Error) => void }> = []
  let state = 0
  let concurrent = 0
  let maxConcurrent = 0
  const task = () =>
    new Promise<void>((resolve, reject) => {
      concurrent++
      maxConcurrent = Math.max(maxConcurrent, concurrent)
      runs.push({
        saw: state,
        finish: (err) => {
          concurrent--
          if (err) reject(err)
          else resolve()
        },
      })
    })
  return { runs, task, change: () => ++state, maxConcurrent: () => maxConcurrent }
}

const tick = () => new Promise((r) => setImmediate(r))

t.test('one call runs the task once', async (t) => {
  const m = manualTask()
  const run = coalescedTask(m.task)
  const done = run()
  t.equal(m.runs.length, 1)
  m.runs[0]!.finish()
  await done
  await tick()
  t.equal(m.runs.length, 1, 'and nothing more')
})

t.test('many calls during a run are served by one more run that sees every change', async (t) => {
  const m = manualTask()
  const run = coalescedTask(m.task)
  m.change()
  const first = run()
  const later: Array<Promise<void>> = []
  for (let i = 0; i < 100; i++) {
    m.change()
    later.push(run())
  }
  t.equal(m.runs.length, 1, 'the second run waits for the first')
  m.runs[0]!.finish()
  await first
  await tick()
  t.equal(m.runs.length, 2, 'one more run for the hundred calls')
  t.equal(m.runs[1]!.saw, 101, 'it sees every change made before it started')
  let settled = false
  void Promise.all(later).then(() => (settled = true))
  await tick()
  t.notOk(settled, 'the later calls wait for the run that covers them')
  m.runs[1]!.finish()
  await Promise.all(later)
  t.equal(m.maxConcurrent(), 1, 'never two runs at once')
})

t.test('a failed run fails the calls it covers, and the next call runs again', async (t) => {
  const m = manualTask()
  const run = coalescedTask(m.task)
  const first = run()
  const second = run()
  m.runs[0]!.finish(new Error('disk full'))
  await t.rejects(first, /disk full/)
  await tick()
  t.equal(m.runs.length, 2, 'the queued run still happens after a failure')
  m.runs[1]!.finish()
  await second
  const third = run()
  t.equal(m.runs.length, 3)
  m.runs[2]!.finish()
  await third
})
