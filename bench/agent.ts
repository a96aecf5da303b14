// bench/agent: the agent's footprint on a node with 10 pods whose readiness probes keep firing, and
// the time from `apply` to Running for a pod whose image is present. Each figure is printed with
// its ratio to a baseline measured in the same run on the same machine:
//   memory  the agent's VmRSS                      vs an idle `node -e 'setInterval(...)'`
//   CPU     agent + its child processes, per core   vs the same idle node process
//   start   POST of a Pod → phase Running          vs `docker run -d` + `docker inspect`, same dockerd
//
//   npm run bench:agent            (BENCH_MINUTES: the measured window, default 10; 1 for a quick run)
//
// The hub and the agent run as separate processes (the agent through bin/bramble, as users start
// it) so the agent's own process is what gets measured. Docker containers are children of containerd, not of the agent, so they are
// not counted; exec probes' `docker exec` work is dockerd's, also not counted.

import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { promisify } from 'node:util'
import { apiRequest, closeApiAgents, type ApiTarget } from '../test/helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../test/helpers/busybox-image.js'
import { dockerClient, removeClusterContainers } from '../test/helpers/docker.js'
import { BRAMBLE_BIN, REPO_ROOT, startHubProcess } from '../test/helpers/hub-process.js'

const LAUNCHER = join(REPO_ROOT, 'bin', 'bramble')

const run = promisify(execFile)
const MINUTES = Number(process.env.BENCH_MINUTES ?? 10)
const PODS = 10
const PROBE_PERIOD_SECONDS = 3
const START_REPEATS = 5
const SAMPLE_EVERY_MS = 5_000
const AIMS = { rssMb: 64, cpuPercent: 1, startMs: 1000 }
const NODE = 'bench-node'
const NS = 'default'

if (!(MINUTES > 0 && MINUTES <= 120)) throw new Error(`BENCH_MINUTES must be in (0, 120], got ${process.env.BENCH_MINUTES}`)

const CLOCK_TICKS = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
  } catch {
    return 100
  }
})()

// ---- /proc ---------------------------------------------------------------------------------------

interface Stat {
  ppid: number
  /** utime + stime + cutime + cstime: its own CPU and that of children it has reaped, in ticks. */
  ticks: number
  /** utime + stime: its own CPU alone. */
  ownTicks: number
}

function readStat(pid: number): Stat | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // Field 2 (comm) may hold spaces and parentheses: split after the last ')'. Fields from 3 on.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  const own = Number(f[11]) + Number(f[12])
  return { ppid: Number(f[1]), ticks: own + Number(f[13]) + Number(f[14]), ownTicks: own }
}

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!m) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(m[1])
}

/** The process and its live descendants (found through their ppid). */
function processTree(root: number): number[] {
  const children = new Map<number, number[]>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const s = readStat(Number(name))
    if (!s) continue
    const list = children.get(s.ppid) ?? []
    list.push(Number(name))
    children.set(s.ppid, list)
  }
  const tree = [root]
  for (let i = 0; i < tree.length && i < 10_000; i++) tree.push(...(children.get(tree[i]) ?? []))
  return tree
}

/** CPU ticks of a process tree: a child reaped between two readings moves into its parent's cutime. */
function treeTicks(root: number): { ticks: number; ownTicks: number; processes: number } {
  const tree = processTree(root)
  return { ticks: tree.reduce((sum, pid) => sum + (readStat(pid)?.ticks ?? 0), 0), ownTicks: readStat(root)?.ownTicks ?? 0, processes: tree.length }
}

// ---- small helpers -------------------------------------------------------------------------------

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, everyMs = 200): Promise<T> {
  const deadline = performance.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await sleep(everyMs)
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

function spawnTracked(command: string, args: string[]): { child: ChildProcess; output: () => string } {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let tail = ''
  const keep = (d: Buffer) => (tail = (tail + d.toString()).slice(-8_000))
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  return { child, output: () => tail }
}

async function stopChild(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise((r) => child.once('exit', r))
  child.kill('SIGTERM')
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

function podManifest(name: string, probe: boolean) {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { app: 'bench-agent' } },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [
        {
          name: 'app',
          image: BUSYBOX_IMAGE,
          command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'],
          ...(probe ? { readinessProbe: { exec: { command: ['true'] }, periodSeconds: PROBE_PERIOD_SECONDS, timeoutSeconds: 2 } } : {}),
        },
      ],
    },
  }
}

const isReady = (pod: any) => pod?.status?.phase === 'Running' && pod.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')

// ---- measurements --------------------------------------------------------------------------------

/** Samples the agent's RSS and the CPU of both trees over the window; returns per-core percentages. */
async function footprint(agentPid: number, baselinePid: number) {
  const start = { agent: treeTicks(agentPid), baseline: treeTicks(baselinePid), at: performance.now() }
  const windowMs = MINUTES * 60_000
  const samples = Math.ceil(windowMs / SAMPLE_EVERY_MS)
  let maxRssKb = rssKb(agentPid)
  let maxProcesses = start.agent.processes
  for (let i = 0; i < samples && performance.now() - start.at < windowMs; i++) {
    await sleep(Math.min(SAMPLE_EVERY_MS, Math.max(0, windowMs - (performance.now() - start.at))))
    maxRssKb = Math.max(maxRssKb, rssKb(agentPid))
    maxProcesses = Math.max(maxProcesses, treeTicks(agentPid).processes)
  }
  const seconds = (performance.now() - start.at) / 1000
  const percent = (ticks: number) => (ticks / CLOCK_TICKS / seconds) * 100
  const end = treeTicks(agentPid)
  return {
    seconds,
    rssMb: rssKb(agentPid) / 1024,
    maxRssMb: maxRssKb / 1024,
    baselineRssMb: rssKb(baselinePid) / 1024,
    cpuPercent: percent(end.ticks - start.agent.ticks),
    ownCpuPercent: percent(end.ownTicks - start.agent.ownTicks),
    baselineCpuPercent: percent(treeTicks(baselinePid).ticks - start.baseline.ticks),
    maxProcesses,
  }
}

/** POST of a one-container pod (image present) until the API shows it Running; then deletes it. */
async function applyToRunning(admin: ApiTarget, i: number): Promise<number> {
  const name = `bench-start-${i}`
  const t0 = performance.now()
  const created = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NS}/pods`, podManifest(name, false))
  if (created.status !== 201) throw new Error(`creating ${name} answered ${created.status}: ${created.text}`)
  await until(`${name} Running`, async () => (await apiRequest(admin, 'GET', `/api/v1/namespaces/${NS}/pods/${name}`)).json?.status?.phase === 'Running', 30_000, 10)
  const elapsed = performance.now() - t0
  await apiRequest(admin, 'DELETE', `/api/v1/namespaces/${NS}/pods/${name}`)
  await until(`${name} deleted`, async () => (await apiRequest(admin, 'GET', `/api/v1/namespaces/${NS}/pods/${name}`)).status === 404, 60_000)
  return elapsed
}

/** The floor under apply-to-Running: the same image started straight through the same dockerd. */
async function dockerRunBaseline(label: string): Promise<number> {
  const t0 = performance.now()
  const { stdout } = await run('docker', ['run', '-d', '--label', label, BUSYBOX_IMAGE, 'sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'], { timeout: 30_000 })
  const { stdout: running } = await run('docker', ['inspect', '-f', '{{.State.Running}}', stdout.trim()], { timeout: 30_000 })
  const elapsed = performance.now() - t0
  if (running.trim() !== 'true') throw new Error(`docker run left the container not running (${running.trim()})`)
  await run('docker', ['rm', '-f', stdout.trim()], { timeout: 30_000 })
  return elapsed
}

// ---- the run -------------------------------------------------------------------------------------

function line(what: string, value: number, unit: string, baselineWhat: string, baseline: number, aim: number): string {
  const v = value.toFixed(unit === 'ms' ? 0 : 2)
  const b = baseline.toFixed(unit === 'ms' ? 0 : 2)
  // An idle process may use no CPU tick at all over a short window: no ratio to print then.
  const ratio = baseline > 0 ? (value / baseline).toFixed(2) : 'n/a (baseline below one clock tick)'
  return `${what}: ${v} ${unit}  baseline ${baselineWhat}: ${b} ${unit}  ratio: ${ratio}  aim < ${aim} ${unit}: ${value < aim ? 'met' : 'MISSED'}`
}

async function main(): Promise<void> {
  const docker = dockerClient()
  await docker.ping()
  await ensureBusyboxImage(docker)
  const hub = await startHubProcess()
  const clusterId = readFileSync(join(hub.dataDir, 'cluster-id'), 'utf8').trim()
  const admin: ApiTarget = { server: hub.server, ca: hub.ca, token: hub.token }
  const agentDir = mkdtempSync(join(tmpdir(), 'bramble-bench-agent-'))
  const benchLabel = `io.bramble.bench=${clusterId}`
  let agent: ReturnType<typeof spawnTracked> | undefined
  let baseline: ChildProcess | undefined
  try {
    const { stdout: token } = await run(process.execPath, [BRAMBLE_BIN, 'token', 'create', '--data-dir', hub.dataDir], { timeout: 30_000 })
    // Through the launcher, as users start it (it runs the agent in V8's lite mode).
    agent = spawnTracked(LAUNCHER, ['agent', '--data-dir', agentDir, '--hub', new URL(hub.server).host, '--token', token.trim(), '--node-name', NODE, '--log-level', 'warn'])
    const agentPid = agent.child.pid!
    await until('the node Ready', async () => {
      if (agent!.child.exitCode !== null) throw new Error(`the agent exited with ${agent!.child.exitCode}: ${agent!.output()}`)
      return (await apiRequest(admin, 'GET', `/api/v1/nodes/${NODE}`)).json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
    }, 60_000)

    for (let i = 0; i < PODS; i++) {
      const r = await apiRequest(admin, 'POST', `/api/v1/namespaces/${NS}/pods`, podManifest(`bench-probe-${i}`, true))
      if (r.status !== 201) throw new Error(`creating bench-probe-${i} answered ${r.status}: ${r.text}`)
    }
    await until(`${PODS} pods Running and Ready`, async () => {
      const list = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dbench-agent`)
      return list.json?.items?.filter(isReady).length === PODS
    }, 120_000, 500)
    await sleep(10_000) // let the start-up work settle before the window opens

    baseline = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { stdio: 'ignore' })
    await sleep(1_000)
    console.log(`measuring ${MINUTES} min: agent pid ${agentPid} with ${PODS} pods, exec readiness probes every ${PROBE_PERIOD_SECONDS} s`)
    const fp = await footprint(agentPid, baseline.pid!)
    const still = await apiRequest(admin, 'GET', `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dbench-agent`)
    const readyAtEnd = still.json?.items?.filter(isReady).length ?? 0

    const starts: number[] = []
    for (let i = 0; i < START_REPEATS; i++) starts.push(await applyToRunning(admin, i))
    const dockerStarts: number[] = []
    for (let i = 0; i < START_REPEATS; i++) dockerStarts.push(await dockerRunBaseline(benchLabel))

    console.log(line(`agent VmRSS after ${fp.seconds.toFixed(0)} s (max ${fp.maxRssMb.toFixed(2)})`, fp.rssMb, 'MB', 'idle node process', fp.baselineRssMb, AIMS.rssMb))
    console.log(line(`agent CPU, % of one core (+ children, up to ${fp.maxProcesses - 1} seen)`, fp.cpuPercent, '%', 'idle node process', fp.baselineCpuPercent, AIMS.cpuPercent))
    console.log(line(`apply → Running, median of ${START_REPEATS} (${starts.map((s) => s.toFixed(0)).join(', ')})`, median(starts), 'ms', `docker run -d + inspect (${dockerStarts.map((s) => s.toFixed(0)).join(', ')})`, median(dockerStarts), AIMS.startMs))
    console.log(`of the agent's CPU: its own process ${fp.ownCpuPercent.toFixed(2)} %, the commands it runs ${(fp.cpuPercent - fp.ownCpuPercent).toFixed(2)} %`)
    console.log(`pods Ready at the end of the window: ${readyAtEnd}/${PODS}`)
  } finally {
    // Pods outlive their agent (offline autonomy): delete them through the hub first, then sweep.
    for (let i = 0; i < PODS; i++) await apiRequest(admin, 'DELETE', `/api/v1/namespaces/${NS}/pods/bench-probe-${i}`).catch(() => undefined)
    await until('pods removed', async () => (await docker.listContainers({ all: true, filters: { label: [`io.bramble.cluster=${clusterId}`] } })).length === 0, 30_000, 500).catch(() => undefined)
    baseline?.kill('SIGKILL')
    await stopChild(agent?.child)
    await hub.cleanup()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    for (const c of await docker.listContainers({ all: true, filters: { label: [benchLabel] } })) await docker.getContainer(c.Id).remove({ force: true })
    rmSync(agentDir, { recursive: true, force: true })
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
