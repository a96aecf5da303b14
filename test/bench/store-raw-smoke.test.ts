// bench/store-raw at its smallest (1 s per figure, 4 writers), run as `npm run bench` runs it: both
// figures and their ratio are printed and parse as positive numbers. Speed is the bench's to print.

import t from 'tap'
import { figuresOf, runBench } from '../helpers/bench-child.js'

t.test('prints creates/s for one writer and for 4 concurrent writers, and their ratio', async (t) => {
  const r = await runBench('store-raw', { BENCH_SECONDS: '1', BENCH_WRITERS: '4' }, 120)
  t.comment(`${r.stdout}(${r.seconds.toFixed(1)} s)`)
  t.equal(r.code, 0, `the bench exits 0 (stderr: ${r.stderr.slice(-2000)})`)
  const [serial] = figuresOf(r.stdout, /store creates\/s, 1 writer awaiting each \(baseline\): (\d+)/, 'baseline')
  const [writers, concurrent] = figuresOf(r.stdout, /store creates\/s, (\d+) concurrent writers:\s+(\d+)/, 'concurrent writers')
  const [ratio] = figuresOf(r.stdout, /ratio to baseline: (\d+\.\d)x/, 'ratio')
  t.ok(serial! > 0, 'one writer made creates')
  t.equal(writers, 4, 'the writers knob was taken')
  t.ok(concurrent! > 0, 'concurrent writers made creates')
  t.ok(ratio! > 0, 'the ratio is a positive number')
})
