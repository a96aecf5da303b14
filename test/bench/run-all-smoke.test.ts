// `npm run bench`'s runner: it runs each bench as a child process, writes RESULTS.md with what each
// printed, and records a bench that fails or overruns its time limit as such, then goes on.

import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { BENCHES, commandOf, parseRunAllArgs, runAll, type Bench } from '../../bench/run-all.js'
import { REPO_ROOT } from '../helpers/hub-process.js'

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bap-run-all-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('the list: unique names, a script built from bench/, a time limit each, the whole run bounded', async (t) => {
  const names = BENCHES.map((b) => b.name)
  t.same([...new Set(names)], names, 'names are unique')
  for (const name of ['store', 'api', 'sched', 'agent', 'mesh', 'wear']) t.ok(names.includes(name), `${name} is in the list`)
  for (const b of BENCHES) {
    const source = b.script.replace(/^dist\//, '').replace(/\.js$/, '.ts')
    t.ok(existsSync(join(REPO_ROOT, source)), `${b.name}: ${source} exists`)
    t.ok(b.timeLimitSeconds > 0 && b.timeLimitSeconds <= 1800, `${b.name}: a time limit of at most 30 min`)
  }
  const total = BENCHES.reduce((sum, b) => sum + b.timeLimitSeconds, 0)
  // The limits are the worst case; a run here takes about half of their sum.
  t.ok(total <= 5400, `the time limits add up to at most 90 minutes (${total} s)`)
})

t.test('writes RESULTS.md: figures of a bench that succeeds, a failure and an overrun recorded, the machine named', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'good.mjs'), "console.log('widgets/s: 42  baseline: 21  ratio: 2.00')\nconsole.error('progress on stderr')\n")
  writeFileSync(join(dir, 'bad.mjs'), "console.log('half a figure')\nconsole.error('the bench broke: no dockerd')\nprocess.exit(3)\n")
  writeFileSync(join(dir, 'slow.mjs'), "console.log('started')\nsetInterval(() => {}, 1000)\n")
  const benches: Bench[] = [
    { name: 'good', about: 'prints a figure', script: 'good.mjs', env: { GOOD_SIZE: '1' }, timeLimitSeconds: 60 },
    { name: 'bad', about: 'exits with 3', script: 'bad.mjs', timeLimitSeconds: 60 },
    { name: 'slow', about: 'never ends', script: 'slow.mjs', args: ['--forever'], timeLimitSeconds: 1 },
  ]
  const out = join(dir, 'RESULTS.md')
  const summary = await runAll({ benches, out, root: dir, conditions: 'a test run' })
  t.same(
    summary.results.map((r) => [r.bench.name, r.status, r.exitCode]),
    [
      ['good', 'ok', 0],
      ['bad', 'failed', 3],
      ['slow', 'timed out', null],
    ],
    'each bench ran, in order, and its outcome is recorded',
  )
  const md = readFileSync(out, 'utf8')
  t.comment(md)
  t.match(md, /^# Benchmark results/)
  t.match(md, /Machine: .+, \d+ cores, \d+\.\d GiB memory, Linux .+, Node v\d+/)
  t.match(md, /Conditions: a test run/)
  t.match(md, /Code: not a git checkout/, 'a folder outside git is said to be one')
  t.match(md, /Bounded: .*their sum, 2\.0 min/, 'the bound is the sum of the time limits (121 s)')
  t.match(md, /1 of 3 benches ok, 2 failed or timed out/)
  t.match(md, /\| \[good\]\(#good\) \| ok \| [\d.]+ s \| 60 s \| `GOOD_SIZE=1 node good\.mjs` \|/)
  t.match(md, /## good[\s\S]*widgets\/s: 42 {2}baseline: 21 {2}ratio: 2\.00/, "the good bench's printed line")
  t.notMatch(md, /progress on stderr/, "a bench that succeeds keeps its stderr out of the file")
  t.match(md, /## bad[\s\S]*Status: failed \(exit code 3\)[\s\S]*half a figure[\s\S]*the bench broke: no dockerd/, "the failure, what it printed and its stderr")
  t.match(md, /## slow[\s\S]*Status: timed out after 1 s[\s\S]*started/, 'the overrun, and what it printed before')
  t.equal(commandOf(benches[2]!), 'node slow.mjs --forever')
})

t.test('npm run bench -- --only NAME runs that bench from dist/ and writes the file', async (t) => {
  const out = join(tempDir(t), 'RESULTS.md')
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
    const child = spawn(process.execPath, [join(REPO_ROOT, 'dist', 'bench', 'run-all.js'), '--only', 'store-raw', '--out', out], { cwd: REPO_ROOT })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('close', (code) => resolve({ code, output }))
  })
  t.equal(code, 0, output)
  const md = readFileSync(out, 'utf8')
  t.match(md, /\| \[store-raw\]\(#store-raw\) \| ok \|/)
  t.match(md, /Code: commit [0-9a-f]{7,}/, 'the commit the benches ran from')
  t.match(md, /store creates\/s, 64 concurrent writers: +\d+/, "store-raw's figure")
  t.match(md, /ratio to baseline: [\d.]+x/, "store-raw's ratio")
  t.notMatch(md, /## store\n/, 'only the chosen bench ran')
})

t.test('flags: --only takes known names, anything else is refused naming the flag', async (t) => {
  t.same(parseRunAllArgs(['--only', 'store,api', '--out=/tmp/x.md', '--conditions', 'busy']), { only: ['store', 'api'], out: '/tmp/x.md', conditions: 'busy' })
  t.throws(() => parseRunAllArgs(['--only', 'store,nope']), /--only: no bench named "nope" \(there are: .*store/)
  t.throws(() => parseRunAllArgs(['--out']), /--out needs a value/)
  t.throws(() => parseRunAllArgs(['--fast']), /unknown flag "--fast"/)
})
