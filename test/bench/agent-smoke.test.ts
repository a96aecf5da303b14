// bench/agent at its smallest (a window of 6 s), run as `npm run bench` runs it: a real hub and a
// real agent through bin/bramble on the host's dockerd, 10 probed pods. Its three figure lines
// (memory, CPU, apply → Running) each print a value, a baseline, a ratio and the aim, and the
// agent it measured is gone afterwards. Skipped without a Docker engine. Speed is the bench's.

import t from 'tap'
import { figuresOf, runBench } from '../helpers/bench-child.js'
import { dockerUnavailable } from '../helpers/docker.js'

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

t.test('prints the agent memory, CPU and apply → Running figures with their baselines, ratios and aims', async (t) => {
  const unavailable = await dockerUnavailable()
  if (unavailable) return t.plan(0, unavailable)
  const r = await runBench('agent', { BENCH_MINUTES: '0.1' }, 300)
  t.comment(`${r.stdout}(${r.seconds.toFixed(1)} s)`)
  t.equal(r.code, 0, `the bench exits 0 (stderr: ${r.stderr.slice(-2000)})`)
  const [agentPid, pods] = figuresOf(r.stdout, /measuring 0\.1 min: agent pid (\d+) with (\d+) pods/, 'measuring')
  t.equal(pods, 10, 'the window is measured with 10 pods')
  const tail = (unit: string) => `(\\d+(?:\\.\\d+)?) ${unit}  ratio: (\\d+\\.\\d\\d|n/a \\(baseline below one clock tick\\))  aim < \\d+ ${unit}: (?:met|MISSED)`
  const [maxRss, rss, baselineRss] = figuresOf(r.stdout, new RegExp(`agent VmRSS after \\d+ s \\(max (\\d+\\.\\d\\d)\\): (\\d+\\.\\d\\d) MB  baseline idle node process: ${tail('MB')}`), 'memory')
  t.ok(rss! > 0 && maxRss! > 0 && baselineRss! > 0, 'the agent RSS, its maximum and the idle node baseline are positive')
  t.match(r.stdout, /agent VmRSS [^\n]*ratio: \d+\.\d\d/, 'the memory line has a numeric ratio')
  const [cpu, baselineCpu] = figuresOf(r.stdout, new RegExp(`agent CPU, % of one core \\(\\+ children, up to \\d+ seen\\): (\\d+\\.\\d\\d) %  baseline idle node process: ${tail('%')}`), 'CPU')
  t.ok(cpu! >= 0 && baselineCpu! >= 0, 'the CPU figures parse (an idle baseline may take no clock tick in 6 s)')
  const [start, dockerStart] = figuresOf(r.stdout, new RegExp(`apply → Running, median of 5 \\([\\d, ]+\\): (\\d+) ms  baseline docker run -d \\+ inspect \\([\\d, ]+\\): ${tail('ms')}`), 'apply → Running')
  t.ok(start! > 0 && dockerStart! > 0, 'apply → Running and its docker run baseline are positive')
  t.match(r.stdout, /apply → Running[^\n]*ratio: \d+\.\d\d/, 'the start line has a numeric ratio')
  const [ready] = figuresOf(r.stdout, /pods Ready at the end of the window: (\d+)\/10/, 'pods Ready')
  // The bench waits for all 10 Ready before the window; a probe timing out on a loaded machine may drop one.
  t.ok(ready! >= 0 && ready! <= 10, `the pods Ready at the end are counted (${ready}/10)`)
  t.notOk(alive(agentPid!), 'the agent the bench started has stopped')
})
