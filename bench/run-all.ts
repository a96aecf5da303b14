// bench/run-all: `npm run bench`. Runs every benchmark in BENCHES, one after another, each as a
// child process with a time limit, keeps what it prints, and writes bench/RESULTS.md: per bench its
// printed lines (figures and ratios), how long it took, the command that reproduces it, and the
// machine it ran on. A bench that fails or runs past its limit is recorded as such and the run goes
// on; the exit code is 1 if any did. The whole run is bounded by the sum of the time limits.
//
//   npm run bench                               every bench, writes bench/RESULTS.md
//   npm run bench -- --only store,api           a subset, by name
//   npm run bench -- --out FILE --conditions TEXT
//
// The benches run from dist/ (npm run bench builds first). Sizes are set here through each bench's
// own knobs so the whole run takes roughly 20-30 minutes on a 2-core machine; run one bench on its
// own (its command in RESULTS.md, or `npm run bench:NAME`) for its full default size.

import { execFileSync, spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, release, totalmem } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { REPO_ROOT } from '../test/helpers/hub-process.js'

export interface Bench {
  name: string
  /** What it measures, in a few words, for RESULTS.md. */
  about: string
  /** The script to run with node, relative to the repository root. */
  script: string
  args?: string[]
  /** Environment for a bounded run, on top of the runner's own. */
  env?: Record<string, string>
  timeLimitSeconds: number
}

/** Every benchmark `npm run bench` runs, in order. Add one by adding an entry. */
export const BENCHES: Bench[] = [
  { name: 'store-raw', about: 'LMDB store alone: concurrent durable creates vs one at a time', script: 'dist/bench/store-raw.js', env: { BENCH_SECONDS: '3' }, timeLimitSeconds: 120 },
  { name: 'etcd-store', about: 'the etcd store vs LMDB: durable creates, serial and concurrent, and create-to-watch delay', script: 'dist/bench/etcd-store.js', env: { BENCH_SECONDS: '3' }, timeLimitSeconds: 180 },
  { name: 'store', about: 'API creates through HTTPS and watch fan-out latency', script: 'dist/bench/store.js', env: { BENCH_SECONDS: '5' }, timeLimitSeconds: 180 },
  { name: 'api', about: 'Hub throughput: creates, updates, lists, watch events per second; plain HTTPS and @kubernetes/client-node', script: 'dist/bench/api.js', env: { BENCH_SECONDS: '5' }, timeLimitSeconds: 300 },
  { name: 'sched', about: 'Scheduler: pods bound and reported Running per second on simulated nodes', script: 'dist/bench/sched.js', env: { BENCH_NODES: '1000', BENCH_PODS: '10000', BENCH_TIMEOUT_SECONDS: '420' }, timeLimitSeconds: 600 },
  { name: 'sched-core', about: "Binding path alone: the leader's controllers bind 10,000 stored pods to 1,000 Nodes, CPU per binding vs per create", script: 'dist/bench/sched-core.js', env: { BENCH_NODES: '1000', BENCH_PODS: '10000' }, timeLimitSeconds: 300 },
  { name: 'agent', about: "The agent's memory and CPU with 10 probed pods, and apply → Running", script: 'dist/bench/agent.js', env: { BENCH_MINUTES: '2' }, timeLimitSeconds: 420 },
  { name: 'mesh', about: 'TCP throughput pod to pod across the WireGuard tunnel vs the plain link', script: 'dist/bench/mesh.js', env: { BENCH_SECONDS: '5' }, timeLimitSeconds: 300 },
  { name: 'wear', about: 'Bytes an idle cluster writes to disk per hour', script: 'dist/bench/wear.js', args: ['--minutes', '3', '--settle-seconds', '70'], timeLimitSeconds: 480 },
  { name: 'fleet', about: 'Simulated fleets on one hub, embedded broker and Mosquitto: time to all Running, hub CPU and RSS, heartbeat lag p50/p99, MQTT messages/s (smaller here: 200 and 1,000 agents, 4,000 pods; the full run is 1,000 and 10,000 agents, 20,000 pods)', script: 'dist/bench/fleet.js', env: { BENCH_FLEET_AGENTS: '200,1000', BENCH_FLEET_PODS: '4000', BENCH_TIMEOUT_SECONDS: '300' }, timeLimitSeconds: 1_320 },
  { name: 'vs-swarm', about: 'Bramble vs Docker Swarm on one dockerd: 1, 10, 30 replicas Running, rolling update, killed container replaced, scale, memory added', script: 'dist/bench/vs-swarm.js', timeLimitSeconds: 900 },
]

export interface BenchResult {
  bench: Bench
  status: 'ok' | 'failed' | 'timed out'
  exitCode: number | null
  signal: string | null
  seconds: number
  stdout: string
  stderr: string
  /** Set when the process could not be started at all. */
  error?: string
}

/** How long a bench past its limit gets after SIGTERM to clean up (namespaces, dockerds) before SIGKILL. */
const CLEANUP_GRACE_MS = 60_000
/** The most of a bench's output kept in memory (its last part): a bench prints lines, not logs. */
const MAX_OUTPUT_CHARS = 200_000

/** The shell command that reproduces a bench, as it ran here (after `npm run build`). */
export function commandOf(bench: Bench): string {
  const env = Object.entries(bench.env ?? {}).map(([k, v]) => `${k}=${shellWord(v)}`)
  return [...env, 'node', bench.script, ...(bench.args ?? []).map(shellWord)].join(' ')
}

function shellWord(word: string): string {
  return /^[\w./:=,@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`
}

/**
 * Runs one bench as a child process in a process group of its own. Past its time limit it gets
 * SIGTERM (benches that set up namespaces clean them up on it), then its whole group SIGKILL.
 */
export function runBench(bench: Bench, options: { root?: string; onOutput?: (chunk: string) => void } = {}): Promise<BenchResult> {
  const root = options.root ?? REPO_ROOT
  const started = performance.now()
  return new Promise((resolve) => {
    let stdout = ''
    let stderr = ''
    let timedOut = false
    let graceTimer: NodeJS.Timeout | undefined
    let leftoverTimer: NodeJS.Timeout | undefined
    const child = spawn(process.execPath, [join(root, bench.script), ...(bench.args ?? [])], {
      cwd: root,
      env: { ...process.env, ...bench.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    })
    const keep = (text: string, chunk: string) => (text + chunk).slice(-MAX_OUTPUT_CHARS)
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      stdout = keep(stdout, chunk)
      options.onOutput?.(chunk)
    })
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr = keep(stderr, chunk)
      options.onOutput?.(chunk)
    })
    const limitTimer = setTimeout(() => {
      timedOut = true
      child.kill('SIGTERM')
      graceTimer = setTimeout(() => killGroup(child.pid), CLEANUP_GRACE_MS)
    }, bench.timeLimitSeconds * 1000)
    let exit: { code: number | null; signal: string | null } | undefined
    let finished = false
    const finish = (error?: string) => {
      if (finished) return
      finished = true
      clearTimeout(limitTimer)
      clearTimeout(graceTimer)
      clearTimeout(leftoverTimer)
      const status = timedOut ? 'timed out' : exit?.code === 0 && !error ? 'ok' : 'failed'
      // A bench that failed may have left processes in its group (a hub it never stopped).
      if (status !== 'ok') killGroup(child.pid)
      resolve({ bench, status, exitCode: exit?.code ?? null, signal: exit?.signal ?? null, seconds: (performance.now() - started) / 1000, stdout, stderr, ...(error ? { error } : {}) })
    }
    child.once('error', (err) => finish(err.message))
    child.once('exit', (code, signal) => {
      exit = { code, signal }
      // Its output pipes close once every process holding them is gone; one it left behind goes.
      leftoverTimer = setTimeout(() => killGroup(child.pid), 5_000)
    })
    child.once('close', () => finish())
  })
}

function killGroup(pid: number | undefined): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, 'SIGKILL')
  } catch {
    // the group is already gone
  }
}

export interface Machine {
  cpu: string
  cores: number
  memoryGiB: number
  kernel: string
  node: string
  loadAverage: number[]
}

export function describeMachine(): Machine {
  const list = cpus()
  return {
    cpu: list[0]?.model.trim() ?? 'unknown',
    cores: list.length,
    memoryGiB: totalmem() / 1024 ** 3,
    kernel: release(),
    node: process.version,
    loadAverage: loadavg(),
  }
}

/** The commit the benches were built from, and whether the working tree differed from it. */
export function describeCode(root: string = REPO_ROOT): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
    const commit = git('rev-parse', '--short', 'HEAD')
    return git('status', '--porcelain', '--untracked-files=no') ? `commit ${commit}, with uncommitted changes in the working tree` : `commit ${commit}`
  } catch {
    return 'not a git checkout'
  }
}

export interface RunSummary {
  startedAt: Date
  finishedAt: Date
  machine: Machine
  code: string
  loadAverageAtEnd: number[]
  /** Free text: what else ran on the machine. */
  conditions?: string
  results: BenchResult[]
}

function duration(seconds: number): string {
  return seconds < 120 ? `${seconds.toFixed(1)} s` : `${(seconds / 60).toFixed(1)} min`
}

function statusText(r: BenchResult): string {
  if (r.status === 'ok') return 'ok'
  if (r.status === 'timed out') return `timed out after ${r.bench.timeLimitSeconds} s`
  if (r.error) return `failed to start: ${r.error}`
  return r.signal ? `failed (killed by ${r.signal})` : `failed (exit code ${r.exitCode})`
}

function lastLines(text: string, count: number): string {
  return text.trimEnd().split('\n').slice(-count).join('\n')
}

/** A fenced block that no line of `text` can close early. */
function fenced(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length))
  const fence = '`'.repeat(longest + 1)
  return `${fence}\n${text.trimEnd()}\n${fence}`
}

export function formatResults(summary: RunSummary): string {
  const m = summary.machine
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(', ')
  const bound = summary.results.reduce((sum, r) => sum + r.bench.timeLimitSeconds, 0)
  const failed = summary.results.filter((r) => r.status !== 'ok').length
  const out: string[] = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/run-all.ts). Each bench prints its figures and their ratios to a baseline',
    'measured in the same run on the same machine; compare ratios between machines, not raw figures.',
    '',
    `- Date: ${summary.startedAt.toISOString()} to ${summary.finishedAt.toISOString()} (${duration((summary.finishedAt.getTime() - summary.startedAt.getTime()) / 1000)})`,
    `- Code: ${summary.code}`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB memory, Linux ${m.kernel}, Node ${m.node}`,
    `- Load average (1, 5, 15 min): ${load(m.loadAverage)} at the start, ${load(summary.loadAverageAtEnd)} at the end`,
    ...(summary.conditions ? [`- Conditions: ${summary.conditions}`] : []),
    `- Bounded: each bench has a time limit (below); the whole run is bounded by their sum, ${duration(bound)}, plus up to ${CLEANUP_GRACE_MS / 1000} s of cleanup for a bench that overruns.`,
    `- Outcome: ${summary.results.length - failed} of ${summary.results.length} benches ok${failed ? `, ${failed} failed or timed out` : ''}.`,
    '',
    'Every command runs from the repository root after `npm run build`.',
    '',
    '| bench | status | took | limit | command |',
    '| --- | --- | --- | --- | --- |',
    ...summary.results.map((r) => `| [${r.bench.name}](#${r.bench.name}) | ${statusText(r)} | ${duration(r.seconds)} | ${r.bench.timeLimitSeconds} s | \`${commandOf(r.bench)}\` |`),
  ]
  for (const r of summary.results) {
    out.push('', `## ${r.bench.name}`, '', r.bench.about + '.', '', `- Status: ${statusText(r)}`, `- Took: ${duration(r.seconds)} (limit ${r.bench.timeLimitSeconds} s)`, `- Command: \`${commandOf(r.bench)}\``, '')
    out.push(r.stdout.trim() ? fenced(r.stdout) : '(it printed nothing on stdout)')
    if (r.status !== 'ok' && r.stderr.trim()) out.push('', 'Last lines on stderr:', '', fenced(lastLines(r.stderr, 30)))
  }
  return out.join('\n') + '\n'
}

export interface RunAllOptions {
  benches: Bench[]
  out: string
  conditions?: string
  root?: string
  onOutput?: (chunk: string) => void
  onStart?: (bench: Bench) => void
}

/** Runs the benches one after another and writes the results file after each, so a killed run keeps what it measured. */
export async function runAll(options: RunAllOptions): Promise<RunSummary> {
  const summary: RunSummary = { startedAt: new Date(), finishedAt: new Date(), machine: describeMachine(), code: describeCode(options.root), loadAverageAtEnd: loadavg(), conditions: options.conditions, results: [] }
  for (const bench of options.benches) {
    options.onStart?.(bench)
    summary.results.push(await runBench(bench, { root: options.root, onOutput: options.onOutput }))
    summary.finishedAt = new Date()
    summary.loadAverageAtEnd = loadavg()
    writeFileSync(options.out, formatResults(summary))
  }
  return summary
}

export interface RunAllArgs {
  only?: string[]
  out: string
  conditions?: string
}

export function parseRunAllArgs(argv: string[], benches: Bench[] = BENCHES): RunAllArgs {
  const args: RunAllArgs = { out: join(REPO_ROOT, 'bench', 'RESULTS.md') }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split(/=(.*)/s, 2) as [string, string | undefined]
    const value = () => {
      const v = inline ?? argv[++i]
      if (v === undefined || v === '') throw new Error(`${flag} needs a value`)
      return v
    }
    if (flag === '--only') {
      const names = value().split(',').map((n) => n.trim()).filter(Boolean)
      const unknown = names.filter((n) => !benches.some((b) => b.name === n))
      if (unknown.length) throw new Error(`--only: no bench named ${unknown.map((n) => `"${n}"`).join(', ')} (there are: ${benches.map((b) => b.name).join(', ')})`)
      args.only = names
    } else if (flag === '--out') args.out = value()
    else if (flag === '--conditions') args.conditions = value()
    else throw new Error(`unknown flag "${flag}" (flags: --only NAME[,NAME], --out FILE, --conditions TEXT)`)
  }
  return args
}

async function main(): Promise<void> {
  let args: RunAllArgs
  try {
    args = parseRunAllArgs(process.argv.slice(2))
  } catch (err) {
    console.error((err as Error).message)
    process.exit(2)
  }
  const benches = args.only ? BENCHES.filter((b) => args.only!.includes(b.name)) : BENCHES
  const summary = await runAll({
    benches,
    out: args.out,
    conditions: args.conditions ?? process.env.BENCH_CONDITIONS,
    onStart: (b) => console.log(`\n=== ${b.name} (limit ${b.timeLimitSeconds} s): ${commandOf(b)}`),
    onOutput: (chunk) => process.stdout.write(chunk),
  })
  for (const r of summary.results) console.log(`${r.bench.name}: ${statusText(r)} in ${duration(r.seconds)}`)
  console.log(`results written to ${args.out}`)
  if (summary.results.some((r) => r.status !== 'ok')) process.exitCode = 1
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
