// bench/wear: what an idle cluster writes to its disk (SD cards wear out under steady writes). A
// real cluster as the e2e tests make it: `bramble hub` in the root namespace and three `bramble
// agent`s, each in a network namespace of its own with its own dockerd, 10 quiet pods per node
// (busybox sleep, no output). Once every pod is Running and a settling pause has passed, it reads
// /proc/PID/io of each process at the start and the end of a fixed window and prints, per hour:
//   - the hub (its process and children);
//   - one agent (its process and children);
//   - that agent's dockerd (dockerd, its containerd and the container shims: every process whose
//     command line names the node's folder, the agent excepted);
//   - baseline, measured in the same run: an idle dockerd in a fourth namespace running the same
//     number of the same containers started directly, with no agent. The agent's dockerd minus
//     this one is what dockerd writes on the agent's behalf.
// Ratios are to the aims of issue 7 (hub under 1 MB/h, agent under 100 KB/h; 1 MB = 10^6 bytes)
// and, for dockerd, to the idle dockerd. Data dirs are on the real disk (under the OS temp dir,
// which must not be a tmpfs). Names (namespaces, bridge, nodes, pods, containers) start with `wr`.
//
//   npm run bench:wear -- [--minutes 10] [--agents 3] [--pods 10] [--settle-seconds 70]
//
// Needs root, iproute2, util-linux (nsenter), docker.io and iptables.

import { readFileSync, readdirSync, statfsSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { apiRequest } from '../test/helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../test/helpers/busybox-image.js'
import { until } from '../test/helpers/e2e.js'
import { NetnsCluster, podReady, type AgentProcess } from '../test/helpers/netns-cluster.js'
import { netnsUnavailable, type NetnsHost } from '../test/helpers/netns-host.js'

export const HUB_AIM_BYTES_PER_HOUR = 1_000_000
export const AGENT_AIM_BYTES_PER_HOUR = 100_000
const TMPFS_MAGIC = 0x01021994
/** A command that never writes and never exits by itself: busybox sleep for ~68 years. */
const QUIET_COMMAND = ['sleep', '2147483647']

export interface WearOptions {
  minutes: number
  agents: number
  podsPerAgent: number
  settleSeconds: number
}

/**
 * Settling runs past each agent's first image-GC pass (60 s after it starts), which reports the
 * engine's images once and so rewrites each Node once: a start-up write, not the idle cluster's.
 */
export const DEFAULT_WEAR_OPTIONS: WearOptions = { minutes: 10, agents: 3, podsPerAgent: 10, settleSeconds: 70 }

/** The counters of /proc/PID/io the bench reports (bytes). */
export interface IoCounters {
  /** Sent to the block layer: pages dirtied by this process (what wears the disk). */
  writeBytes: number
  /** Dirtied pages that were truncated away before write-back (never reached the disk). */
  cancelledWriteBytes: number
  /** Passed to write-family system calls: files, pipes, sockets, cached or not. */
  wchar: number
  /** Passed back by read-family system calls. */
  rchar: number
}

export interface ProcessWear extends IoCounters {
  label: string
  /** Processes counted at the end of the window. */
  processes: number
}

export interface WearResult {
  options: WearOptions
  windowSeconds: number
  hub: ProcessWear
  agent: ProcessWear
  agentDockerd: ProcessWear
  idleDockerd: ProcessWear
  /** Pods Running and Ready at the end of the window, of all the bench made. */
  podsRunning: number
  pods: number
  /** Objects the hub's store holds with a resourceVersion newer than the window's start, by kind. */
  objectsWritten: Record<string, number>
  /** Store revisions the window took (every write bumps it by one). */
  storeRevisions: number
}

export class WearUsageError extends Error {
  readonly code = 'BRAMBLE_BENCH_USAGE'
}

/** `--minutes N --agents N --pods N --settle-seconds N`; a bad value throws naming its flag. */
export function parseWearArgs(argv: string[]): WearOptions {
  const options = { ...DEFAULT_WEAR_OPTIONS }
  const flags: Record<string, { key: keyof WearOptions; min: number; max: number; integer: boolean; what: string }> = {
    '--minutes': { key: 'minutes', min: 0.05, max: 1440, integer: false, what: 'minutes to measure' },
    '--agents': { key: 'agents', min: 1, max: 3, integer: true, what: 'agents' },
    '--pods': { key: 'podsPerAgent', min: 1, max: 50, integer: true, what: 'pods per agent' },
    '--settle-seconds': { key: 'settleSeconds', min: 0, max: 600, integer: true, what: 'seconds to settle before measuring' },
  }
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined]
    const spec = flags[flag]
    if (!spec) throw new WearUsageError(`unknown flag ${JSON.stringify(flag)}: the flags are ${Object.keys(flags).join(', ')}`)
    const raw = inline ?? argv[++i]
    const value = raw === undefined || raw.trim() === '' ? NaN : Number(raw)
    if (!Number.isFinite(value) || value < spec.min || value > spec.max || (spec.integer && !Number.isInteger(value))) {
      throw new WearUsageError(`${flag} must be ${spec.integer ? 'a whole number' : 'a number'} of ${spec.what} from ${spec.min} to ${spec.max}, got ${JSON.stringify(raw ?? '')}`)
    }
    options[spec.key] = value
  }
  return options
}

export async function runWearBench(options: WearOptions, progress: (line: string) => void = () => {}): Promise<WearResult> {
  const unavailable = await netnsUnavailable()
  if (unavailable) throw new Error(unavailable)
  if (statfsSync(tmpdir()).type === TMPFS_MAGIC) throw new Error(`${tmpdir()} is a tmpfs: the data dirs must be on the real disk (set TMPDIR)`)
  const cluster = await NetnsCluster.start({ prefix: 'wr' })
  // Interrupted (Ctrl-C), the bench still removes its namespaces, dockerds and processes.
  const interrupted = () => void cluster.cleanup().finally(() => process.exit(130))
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  try {
    const agents: AgentProcess[] = []
    for (let i = 0; i < options.agents; i++) agents.push(await cluster.addNode(`wr-node-${i}`))
    progress(`${agents.length} agent(s) Ready`)
    const idleHost = await cluster.lab.addHost()
    const pods = await createPods(cluster, agents, options.podsPerAgent)
    await startIdleContainers(idleHost, options.podsPerAgent)
    await until(`${pods.length} pods Running and Ready`, async () => (await runningPods(cluster, pods)) === pods.length, 300_000)
    progress(`${pods.length} pods Running and Ready; settling ${options.settleSeconds} s`)
    await new Promise((r) => setTimeout(r, options.settleSeconds * 1000))

    const measured = agents[0]!
    const groups = {
      hub: () => treeOf(cluster.hub.child.pid!),
      agent: () => treeOf(measured.child.pid!),
      agentDockerd: () => dockerdOf(measured.host, treeOf(measured.child.pid!)),
      idleDockerd: () => dockerdOf(idleHost, []),
    }
    const startRevision = await storeRevision(cluster)
    const before = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, readAll(pids())])) as Record<keyof typeof groups, Map<number, IoCounters>>
    const startedAt = performance.now()
    progress(`measuring for ${options.minutes} min`)
    await new Promise((r) => setTimeout(r, options.minutes * 60_000))
    const after = Object.fromEntries(Object.entries(groups).map(([k, pids]) => [k, readAll(pids())])) as Record<keyof typeof groups, Map<number, IoCounters>>
    const windowSeconds = (performance.now() - startedAt) / 1000
    const endRevision = await storeRevision(cluster)

    const labels = {
      hub: 'hub',
      agent: `agent ${measured.node}`,
      agentDockerd: `dockerd of ${measured.node}`,
      idleDockerd: `idle dockerd (baseline, ${options.podsPerAgent} containers, no agent)`,
    }
    const wear = (k: keyof typeof groups): ProcessWear => ({ label: labels[k], ...difference(before[k], after[k]), processes: after[k].size })
    return {
      options,
      windowSeconds,
      hub: wear('hub'),
      agent: wear('agent'),
      agentDockerd: wear('agentDockerd'),
      idleDockerd: wear('idleDockerd'),
      podsRunning: await runningPods(cluster, pods),
      pods: pods.length,
      objectsWritten: await objectsWrittenSince(cluster, startRevision),
      storeRevisions: endRevision - startRevision,
    }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await cluster.diagnostics()}`, { cause: err })
  } finally {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
    await cluster.cleanup()
  }
}

/** The report: one line per figure, per hour, with its ratio, and what the counters mean. */
export function formatWear(r: WearResult): string {
  const perHour = (bytes: number) => (bytes * 3600) / r.windowSeconds
  const size = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} KB`)
  const line = (w: ProcessWear, ratio: string) =>
    `${w.label.padEnd(58)} ${`${size(perHour(w.writeBytes))}/h`.padStart(12)} to disk   ${ratio}   (wchar ${size(perHour(w.wchar))}/h, rchar ${size(perHour(w.rchar))}/h, ${w.processes} process(es))`
  const ratio = (value: number, base: number, name: string) => `ratio to ${name} ${base > 0 ? (value / base).toFixed(3) : value === 0 ? '- (both 0)' : `- (${name} wrote 0)`}`
  const onBehalf = perHour(r.agentDockerd.writeBytes - r.idleDockerd.writeBytes)
  const written = Object.entries(r.objectsWritten).map(([kind, n]) => `${kind} ${n}`).join(', ') || 'none'
  return [
    `idle cluster: hub + ${r.options.agents} agent(s) x ${r.options.podsPerAgent} quiet pods; window ${(r.windowSeconds / 60).toFixed(1)} min after ${r.options.settleSeconds} s settling; ${r.podsRunning}/${r.pods} pods Running and Ready at the end`,
    line(r.hub, ratio(perHour(r.hub.writeBytes), HUB_AIM_BYTES_PER_HOUR, 'aim 1 MB/h')),
    line(r.agent, ratio(perHour(r.agent.writeBytes), AGENT_AIM_BYTES_PER_HOUR, 'aim 100 KB/h')),
    line(r.agentDockerd, ratio(r.agentDockerd.writeBytes, r.idleDockerd.writeBytes, 'idle dockerd')),
    line(r.idleDockerd, 'baseline'),
    `dockerd on the agent's behalf (its dockerd minus the idle one): ${size(onBehalf)}/h`,
    `hub store: ${r.storeRevisions} revision(s) in the window; objects written: ${written}`,
    'to disk = write_bytes of /proc/PID/io: bytes of page cache the process dirtied, i.e. what goes to the block layer (4 KiB pages, counted once per dirtying; the filesystem journal is not included); wchar = bytes handed to write-family calls (pipes and sockets too), rchar the same for reads.',
  ].join('\n')
}

async function createPods(cluster: NetnsCluster, agents: AgentProcess[], perAgent: number): Promise<string[]> {
  const names: string[] = []
  for (const agent of agents) {
    for (let i = 0; i < perAgent; i++) {
      const name = `wr-quiet-${agent.node.replace(/^wr-/, '')}-${i}`
      const pod = {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name, namespace: 'default', labels: { app: 'wr-quiet' } },
        spec: {
          nodeName: agent.node,
          terminationGracePeriodSeconds: 1,
          containers: [{ name: 'sleep', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: QUIET_COMMAND }],
        },
      }
      const res = await apiRequest(cluster.hub, 'POST', '/api/v1/namespaces/default/pods', pod)
      if (res.status !== 201) throw new Error(`creating pod ${name}: ${res.status} ${res.text}`)
      names.push(name)
    }
  }
  return names
}

/** The baseline: the same containers on a dockerd no agent talks to. */
async function startIdleContainers(host: NetnsHost, count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    const container = await host.docker.createContainer({ name: `wr-idle-${i}`, Image: BUSYBOX_IMAGE, Cmd: QUIET_COMMAND, Labels: { 'io.bramble.bench': 'wear' } })
    await container.start()
  }
}

async function runningPods(cluster: NetnsCluster, names: string[]): Promise<number> {
  const list = await cluster.get('/api/v1/namespaces/default/pods?labelSelector=app%3Dwr-quiet')
  const wanted = new Set(names)
  return (list?.items ?? []).filter((p: any) => wanted.has(p.metadata.name) && podReady(p)).length
}

async function storeRevision(cluster: NetnsCluster): Promise<number> {
  return Number((await cluster.get('/api/v1/namespaces'))?.metadata?.resourceVersion ?? NaN)
}

async function objectsWrittenSince(cluster: NetnsCluster, revision: number): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  for (const [kind, path] of [['Node', '/api/v1/nodes'], ['Pod', '/api/v1/pods'], ['Event', '/api/v1/events'], ['Endpoints', '/api/v1/endpoints'], ['ConfigMap', '/api/v1/configmaps'], ['Namespace', '/api/v1/namespaces']] as const) {
    const items: any[] = (await cluster.get(path))?.items ?? []
    const n = items.filter((o) => Number(o.metadata?.resourceVersion) > revision).length
    if (n > 0) counts[kind] = n
  }
  return counts
}

/** `pid` and every process below it. */
function treeOf(pid: number): number[] {
  const children = new Map<number, number[]>()
  for (const p of processIds()) {
    const ppid = Number(/^\d+ \(.*\) \S+ (\d+)/s.exec(readText(`/proc/${p}/stat`))?.[1])
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), p])
  }
  const tree: number[] = []
  for (const queue = [pid]; queue.length > 0; ) {
    const p = queue.shift()!
    tree.push(p)
    queue.push(...(children.get(p) ?? []))
  }
  return tree
}

/** dockerd, containerd and shims of a namespace host: their command lines name its folder. */
function dockerdOf(host: NetnsHost, except: number[]): number[] {
  const skip = new Set(except)
  return processIds().filter((p) => !skip.has(p) && readText(`/proc/${p}/cmdline`).replace(/\0/g, ' ').includes(`${host.dir}/`))
}

function processIds(): number[] {
  return readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number)
}

function readAll(pids: number[]): Map<number, IoCounters> {
  const all = new Map<number, IoCounters>()
  for (const pid of pids) {
    const io = readIo(pid)
    if (io) all.set(pid, io)
  }
  return all
}

export function readIo(pid: number): IoCounters | undefined {
  const text = readText(`/proc/${pid}/io`)
  if (!text) return undefined
  const field = (name: string) => Number(new RegExp(`^${name}: (\\d+)$`, 'm').exec(text)?.[1] ?? 0)
  return { writeBytes: field('write_bytes'), cancelledWriteBytes: field('cancelled_write_bytes'), wchar: field('wchar'), rchar: field('rchar') }
}

/** End minus start per process; a process born in the window counts from zero. */
function difference(before: Map<number, IoCounters>, after: Map<number, IoCounters>): IoCounters {
  const sum: IoCounters = { writeBytes: 0, cancelledWriteBytes: 0, wchar: 0, rchar: 0 }
  for (const [pid, end] of after) {
    const start = before.get(pid)
    for (const k of Object.keys(sum) as Array<keyof IoCounters>) sum[k] += end[k] - (start?.[k] ?? 0)
  }
  return sum
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

async function main(): Promise<void> {
  let options: WearOptions
  try {
    options = parseWearArgs(process.argv.slice(2))
  } catch (err) {
    console.error((err as Error).message)
    process.exit(2)
  }
  const result = await runWearBench(options, (line) => console.error(`[wear] ${line}`))
  console.log(formatWear(result))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
