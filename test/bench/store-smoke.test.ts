// bench/store at its smallest (1 s per throughput figure, 2 watchers of 20 events), run as `npm run
// bench` runs it, against the real hub process it starts: the create and watch fan-out lines are
// printed with their baselines and ratios, all parsing as positive numbers. Speed is the bench's.

import t from 'tap'
import { figuresOf, runBench } from '../helpers/bench-child.js'

t.test('prints API creates/s against GET /version/s and watch fan-out latency against a create round trip', async (t) => {
  const r = await runBench('store', { BENCH_SECONDS: '1', BENCH_WATCHERS: '2', BENCH_EVENTS: '20' }, 180)
  t.comment(`${r.stdout}(${r.seconds.toFixed(1)} s)`)
  t.equal(r.code, 0, `the bench exits 0 (stderr: ${r.stderr.slice(-2000)})`)
  const [creates, baseline, ratio] = figuresOf(r.stdout, /api creates\/s \(4 HTTPS clients, durable\): (\d+)  baseline GET \/version\/s: (\d+)  ratio: (\d+\.\d\d)/, 'api creates')
  t.ok(creates! > 0 && baseline! > 0 && ratio! > 0, 'creates/s, its baseline and ratio are positive')
  const [watchers, events, p50, p99, createP50, ratioP50] = figuresOf(
    r.stdout,
    /watch fan-out latency \((\d+) watchers, (\d+) events\): p50 (\d+\.\d) ms, p99 (\d+\.\d) ms  baseline create round trip p50: (\d+\.\d) ms  ratio p50: (\d+\.\d\d)/,
    'watch fan-out',
  )
  t.same([watchers, events], [2, 20], 'the watcher and event knobs were taken')
  t.ok(p50! > 0 && p99! >= p50!, 'the p50 latency is positive and p99 not below it')
  t.ok(createP50! > 0 && ratioP50! > 0, 'the create round trip baseline and the ratio are positive')
})
