// bench/vs-swarm: Bramble and Docker Swarm side by side on one Docker engine, in one run (issue 10).
// A dockerd of its own in a network namespace (never the machine's shared one: `swarm init` would
// change it for everyone) serves both: Swarm's manager runs inside it after `swarm init`, and a
// `bramble agent` (with its `bramble hub` in the root namespace) runs its pods on it. For each
// figure, Swarm goes first and then Bramble, each alone, driven by its own command line:
//   - N replicas Running, N in --replicas (default 1, 10, 30): `docker service create` vs `bramble
//     apply` of a Deployment, until the orchestrator says N are running (Swarm's tasks, Bramble's pods);
//     --rounds times (default 3), the sides taking turns, and the median kept;
//   - scale 10 -> 30: `docker service scale` vs `bramble scale`;
//   - rolling update of 10 replicas to a new image: `docker service update --image` vs `bramble
//     apply`, until the orchestrator says all N run the new image and no old container runs;
//   - a killed container replaced: `docker kill` of one, until N containers run again without it;
//   - resident memory added: dockerd's RSS before and after `swarm init` with nothing running, vs the
//     RSS of the hub and the agent processes (with nothing running);
//   - the floor: a bare `docker run -d` of the same image; and for each replica count, the engine
//     alone creating and starting that many bare containers, that many with no network at all (the
//     least the engine does for a container), and that many pods' worth (a sandbox and a container
//     in its network namespace), through its API 10 at a time (the agent's pod workers), --rounds
//     times with the median kept: no orchestrator can start N replicas faster than the engine starts
//     N containers, so this says how low a ratio to Swarm can go on this engine.
// Where each figure's time went is read from the engine's own container events, the same for both
// sides: from the command to the engine creating the first container, from there to it having
// started the last one (the engine's share), and from that to the orchestrator saying so.
// Both get the same stop grace period and update parallelism (Swarm: --stop-grace-period,
// --update-parallelism with stop-first order; Bramble: terminationGracePeriodSeconds, maxSurge 0 and
// maxUnavailable = parallelism). The container exits on SIGTERM at once, so stops cost no grace.
// Everything else is each side's default (Swarm's restart delay of 5 s among them). Before the
// figures each side runs one replica once, unmeasured (Bramble imports its pause image then).
// Names (namespace, bridge, node, services, deployments, containers, the updated image) start with
// `--prefix` (default `vsw`): two runs at once (a CI run's smoke test beside a measurement) each
// take their own.
//
//   npm run bench:vs-swarm -- [--replicas 1,10,30] [--rounds 3] [--update-replicas 10] [--scale-to 30]
//                             [--parallelism 1] [--grace-seconds 10] [--step-timeout 300] [--prefix vsw]
//
// Needs root, iproute2, util-linux (nsenter), docker.io (dockerd and the docker CLI) and iptables.

import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type Docker from 'dockerode'
import { BUSYBOX_IMAGE } from '../test/helpers/busybox-image.js'
import { NetnsCluster } from '../test/helpers/netns-cluster.js'
import { netnsUnavailable, type NetnsHost } from '../test/helpers/netns-host.js'
import { importUniqueImage } from '../test/helpers/unique-image.js'
import { engineFloorSeconds, type FloorOptions, type FloorUnit } from './engine-floor.js'
import { brambleSide, COMMAND, command, swarmSide, waitFor, type Orchestrator } from './vs-swarm-sides.js'

export interface VsSwarmOptions {
  /** Replica counts to reach from nothing, one figure each. */
  replicas: number[]
  /** Rounds of each replica-count figure, the sides taking turns; the median is reported (a shared machine's load drifts). */
  rounds: number
  /** Replicas of the rolling update, the kill and the scale to 30. */
  updateReplicas: number
  /** Replicas the scale step goes to. */
  scaleTo: number
  parallelism: number
  graceSeconds: number
  /** How long one step may take before the bench gives up. */
  stepTimeoutSeconds: number
  /** Two or three lowercase letters that start every name the run makes. */
  prefix: string
}

export const DEFAULT_VS_SWARM_OPTIONS: VsSwarmOptions = { replicas: [1, 10, 30], rounds: 3, updateReplicas: 10, scaleTo: 30, parallelism: 1, graceSeconds: 10, stepTimeoutSeconds: 300, prefix: 'vsw' }

/** One figure measured on both sides, in seconds. */
export interface Pair {
  label: string
  swarm: number
  bramble: number
  /** Replicas the step waited for. */
  replicas: number
  /** Replicas each orchestrator said were running (of the step's image) when the step ended. */
  running: { swarm: number; bramble: number }
  /** Bramble's aim against Swarm, as the largest ratio that meets it. */
  aim?: number
  /** Rounds measured; the times are their medians. */
  rounds: number
  /** Where the time went on each side (medians over the rounds), when the engine reported containers made. */
  phases: { swarm?: Phases; bramble?: Phases }
}

/** One step split by the engine's container events, in seconds. */
export interface Phases {
  /** From the command to the engine having created the step's first container. */
  toFirstCreate: number
  /** From the first container created to the last one started: the engine's share. */
  engine: number
  /** From the last container started to the step's end (the orchestrator reported it done). */
  toDone: number
  /** Containers the engine created and started in the step (a Bramble pod is two: its sandbox and its app). */
  creates: number
  starts: number
}

export interface MemoryFigures {
  dockerdBeforeKiB: number
  dockerdAfterKiB: number
  hubKiB: number
  agentKiB: number
}

export interface VsSwarmResult {
  options: VsSwarmOptions
  /** The run's name (its bridge; namespace `<name>-0`) and folder, all removed when the run ends. */
  lab: { name: string; dir: string; dockerdPid: number }
  /** A bare `docker run -d`, median of three. */
  floorSeconds: number
  /** The engine alone per replica count (seconds, medians): `containers` bare ones, and as many pods' worth (two containers each). */
  engineFloors: Array<{ replicas: number; containers: number; unnetworked: number; pods: number }>
  pairs: Pair[]
  memory: MemoryFigures
}

export class VsSwarmUsageError extends Error {
  readonly code = 'BRAMBLE_BENCH_USAGE'
}

/** `--replicas 1,10,30 --rounds N --update-replicas N --scale-to N --parallelism N --grace-seconds N --step-timeout N --prefix XYZ`; a bad value throws naming its flag. */
export function parseVsSwarmArgs(argv: string[]): VsSwarmOptions {
  const options = { ...DEFAULT_VS_SWARM_OPTIONS }
  const counts: Record<string, { key: Exclude<keyof VsSwarmOptions, 'replicas' | 'prefix'>; min: number; max: number; what: string }> = {
    '--rounds': { key: 'rounds', min: 1, max: 9, what: 'rounds of each replica-count figure' },
    '--update-replicas': { key: 'updateReplicas', min: 1, max: 100, what: 'replicas of the rolling update and the kill' },
    '--scale-to': { key: 'scaleTo', min: 1, max: 100, what: 'replicas of the scale step' },
    '--parallelism': { key: 'parallelism', min: 1, max: 100, what: 'replicas updated at once' },
    '--grace-seconds': { key: 'graceSeconds', min: 0, max: 300, what: 'seconds of stop grace period' },
    '--step-timeout': { key: 'stepTimeoutSeconds', min: 10, max: 3600, what: 'seconds one step may take' },
  }
  const names = ['--replicas', ...Object.keys(counts), '--prefix']
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i]!.split('=', 2) as [string, string | undefined]
    if (!names.includes(flag)) throw new VsSwarmUsageError(`unknown flag ${JSON.stringify(flag)}: the flags are ${names.join(', ')}`)
    const raw = inline ?? argv[++i] ?? ''
    if (flag === '--replicas') {
      const list = raw.split(',').map((s) => s.trim())
      if (raw.trim() === '' || list.some((s) => !/^\d+$/.test(s) || Number(s) < 1 || Number(s) > 100)) {
        throw new VsSwarmUsageError(`--replicas must be a comma-separated list of whole numbers from 1 to 100, got ${JSON.stringify(raw)}`)
      }
      options.replicas = list.map(Number)
      continue
    }
    if (flag === '--prefix') {
      // The run's bridge and namespaces are named <prefix><N> (test/helpers/netns-host.ts).
      if (!/^[a-z]{2,3}$/.test(raw)) throw new VsSwarmUsageError(`--prefix must be two or three lowercase letters, got ${JSON.stringify(raw)}`)
      options.prefix = raw
      continue
    }
    const spec = counts[flag]!
    const value = /^\d+$/.test(raw.trim()) ? Number(raw) : NaN
    if (!(value >= spec.min && value <= spec.max)) throw new VsSwarmUsageError(`${flag} must be a whole number of ${spec.what} from ${spec.min} to ${spec.max}, got ${JSON.stringify(raw)}`)
    options[spec.key] = value
  }
  if (options.parallelism > options.updateReplicas) throw new VsSwarmUsageError(`--parallelism (${options.parallelism}) must not exceed --update-replicas (${options.updateReplicas})`)
  return options
}

/** One step on one side: its seconds, the replicas the orchestrator said ran at its end, and its span on the wall clock (ms). */
interface Run {
  seconds: number
  running: number
  startMs: number
  endMs: number
  group: string
}

export async function runVsSwarmBench(options: VsSwarmOptions, progress: (line: string) => void = () => {}): Promise<VsSwarmResult> {
  const unavailable = await netnsUnavailable()
  if (unavailable) throw new Error(unavailable)
  await command('docker', ['--version']).catch((err) => {
    throw new Error(`the docker CLI is needed to drive Swarm: ${(err as Error).message}`, { cause: err })
  })
  // A task's image is taken as it is on the engine: no registry is reachable, and Swarm would ask one first.
  process.env.DOCKER_SERVICE_PREFER_OFFLINE_IMAGE = '1'
  const p = options.prefix
  /** The image of the rolling update: the busybox root filesystem plus a small file of its own. */
  const updatedImage = `${p}/busybox:2`
  const cluster = await NetnsCluster.start({ prefix: p })
  const interrupted = () => void cluster.cleanup().finally(() => process.exit(130))
  process.once('SIGINT', interrupted)
  process.once('SIGTERM', interrupted)
  let host: NetnsHost | undefined
  let engineEvents: EngineEvents | undefined
  try {
    const agent = await cluster.addNode(`${p}-node`)
    host = agent.host
    progress(`agent Ready on ${host.netns}; importing ${updatedImage}`)
    await importUniqueImage(host.docker, updatedImage, 64_000)
    const bramble = brambleSide(cluster, agent, options)
    await settle()
    const hubKiB = treeRssKiB(cluster.hub.child.pid!)
    const agentKiB = treeRssKiB(agent.child.pid!)

    engineEvents = await EngineEvents.watch(host.docker)
    const dockerdPid = Number(readFileSync(join(host.dir, 'dockerd.pid'), 'utf8'))
    const dockerdBeforeKiB = rssKiB(dockerdPid)
    const dockerHost = host.dockerHost
    await command('docker', ['-H', dockerHost, 'swarm', 'init', '--advertise-addr', host.address])
    await waitFor('the Swarm manager to be active', async () => (await host!.docker.info()).Swarm?.LocalNodeState === 'active', 60)
    await settle()
    const dockerdAfterKiB = rssKiB(dockerdPid)
    const swarm = swarmSide(host, options)
    progress(`swarm active; dockerd RSS ${mib(dockerdBeforeKiB)} -> ${mib(dockerdAfterKiB)}, hub ${mib(hubKiB)} + agent ${mib(agentKiB)}`)

    // One replica on each side, not measured: first-use costs (Bramble imports its pause image, the
    // engine warms its caches) are paid before the figures, as on a node that has run pods before.
    for (const side of [swarm, bramble]) {
      await side.create(`${p}-warmup`, 1, BUSYBOX_IMAGE)
      await waitFor(`a ${side.name} warm-up replica Running`, async () => (await side.running(`${p}-warmup`)) >= 1, options.stepTimeoutSeconds)
      await side.remove(`${p}-warmup`)
    }
    const floorSeconds = await bareRunSeconds(host, p)
    progress(`bare docker run -d: ${floorSeconds.toFixed(2)} s`)
    const pairs: Pair[] = []
    /**
     * Runs `measure` on Swarm, then on Bramble, `rounds` times; it returns the seconds and what the
     * orchestrator says runs at the end. The median time is kept, and the fewest replicas seen running.
     */
    const pair = async (label: string, replicas: number, aim: number | undefined, measure: (side: Orchestrator) => Promise<Run>, rounds = 1) => {
      const runs: Record<'swarm' | 'bramble', Run[]> = { swarm: [], bramble: [] }
      for (let round = 0; round < rounds; round++) {
        runs.swarm.push(await measure(swarm))
        runs.bramble.push(await measure(bramble))
      }
      const seconds = (side: 'swarm' | 'bramble') => median(runs[side].map((r) => r.seconds))
      const running = (side: 'swarm' | 'bramble') => Math.min(...runs[side].map((r) => r.running))
      const phases = (side: Orchestrator) => medianPhases(runs[side.name as 'swarm' | 'bramble'].map((r) => engineEvents!.phases((labels) => side.owns(r.group, labels), r.startMs, r.endMs)))
      pairs.push({ label, swarm: seconds('swarm'), bramble: seconds('bramble'), replicas, running: { swarm: running('swarm'), bramble: running('bramble') }, aim, rounds, phases: { swarm: phases(swarm), bramble: phases(bramble) } })
      const all = (side: 'swarm' | 'bramble') => runs[side].map((r) => r.seconds.toFixed(2)).join(', ')
      progress(`${label}: swarm ${all('swarm')} s, bramble ${all('bramble')} s`)
    }
    const timeout = options.stepTimeoutSeconds
    const engineFloors: VsSwarmResult['engineFloors'] = []
    const floorOptions: FloorOptions = { image: BUSYBOX_IMAGE, command: COMMAND, namePrefix: `${p}-floor`, label: ['io.bramble.bench', 'vs-swarm'], concurrency: 10 }
    for (const n of options.replicas) {
      const floor = async (unit: FloorUnit) => {
        const seconds: number[] = []
        for (let round = 0; round < options.rounds; round++) seconds.push(await engineFloorSeconds(host!.docker, unit, n, floorOptions))
        return median(seconds)
      }
      engineFloors.push({ replicas: n, containers: await floor('container'), unnetworked: await floor('unnetworked'), pods: await floor('pod') })
      await pair(`${n} replica${n === 1 ? '' : 's'} Running`, n, n === 1 ? 1 : 0.5, async (side) => {
        const name = `${p}-r${n}`
        const span = await timed(() => side.create(name, n, BUSYBOX_IMAGE), `${n} ${side.name} replicas Running`, async () => (await side.running(name)) >= n, timeout)
        const running = await side.running(name)
        await side.remove(name)
        return { ...span, running, group: name }
      }, options.rounds)
    }
    const m = options.updateReplicas
    const group = `${p}-u${m}`
    for (const side of [swarm, bramble]) {
      await side.create(group, m, BUSYBOX_IMAGE)
      await waitFor(`${m} ${side.name} replicas Running`, async () => (await side.running(group)) >= m, timeout)
    }
    await pair(`rolling update of ${m} replicas`, m, 0.5, async (side) => {
      const span = await timed(() => side.updateImage(group, m, updatedImage), `${side.name} update to ${updatedImage}`, async () => {
        if ((await side.running(group, updatedImage)) < m) return false
        return (await side.containers(group, BUSYBOX_IMAGE)).length === 0
      }, timeout)
      return { ...span, running: await side.running(group, updatedImage), group }
    })
    await pair('killed container replaced', m, 0.5, async (side) => {
      const [victim] = await side.containers(group, updatedImage)
      if (!victim) throw new Error(`no running ${side.name} container of ${group} to kill`)
      const span = await timed(() => host!.docker.getContainer(victim.Id).kill(), `${side.name} replacement of ${victim.Id.slice(0, 12)}`, async () => {
        const running = await side.containers(group, updatedImage)
        return running.length >= m && !running.some((c) => c.Id === victim.Id) && (await side.running(group, updatedImage)) >= m
      }, timeout)
      return { ...span, running: await side.running(group, updatedImage), group }
    })
    await pair(`scale ${m} -> ${options.scaleTo}`, options.scaleTo, 0.5, async (side) => {
      const span = await timed(() => side.scale(group, options.scaleTo), `${options.scaleTo} ${side.name} replicas Running`, async () => (await side.running(group)) >= options.scaleTo, timeout)
      return { ...span, running: await side.running(group), group }
    })
    for (const side of [swarm, bramble]) await side.remove(group)
    await command('docker', ['-H', dockerHost, 'swarm', 'leave', '--force'])
    return { options, lab: { name: cluster.lab.name, dir: cluster.lab.dir, dockerdPid }, floorSeconds, engineFloors, pairs, memory: { dockerdBeforeKiB, dockerdAfterKiB, hubKiB, agentKiB } }
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await cluster.diagnostics()}`, { cause: err })
  } finally {
    process.off('SIGINT', interrupted)
    process.off('SIGTERM', interrupted)
    engineEvents?.close()
    if (host) await command('docker', ['-H', host.dockerHost, 'swarm', 'leave', '--force']).catch(() => {})
    await cluster.cleanup()
  }
}

/** The report: each pair with its ratio Bramble/Swarm and the aim, the memory and the floor. */
export function formatVsSwarm(r: VsSwarmResult): string {
  const o = r.options
  const seconds = (s: number) => `${s.toFixed(2)} s`.padStart(9)
  const lines = [
    `Bramble vs Docker Swarm on one dockerd (same run); stop grace ${o.graceSeconds} s, update parallelism ${o.parallelism} (stop-first / maxSurge 0); ratio = Bramble / Swarm`,
    `${'figure'.padEnd(30)} ${'swarm'.padStart(9)} ${'bramble'.padStart(9)}   ratio   aim`,
  ]
  for (const p of r.pairs) {
    const ratio = p.bramble / p.swarm
    const aim = p.aim === undefined ? '' : `<= ${p.aim.toFixed(1)} ${ratio <= p.aim ? 'met' : 'missed'}`
    const rounds = p.rounds > 1 ? `   (median of ${p.rounds})` : ''
    lines.push(`${p.label.padEnd(30)} ${seconds(p.swarm)} ${seconds(p.bramble)}   ${ratio.toFixed(2).padStart(5)}   ${aim}${rounds}`)
  }
  lines.push(`where the time went, by the engine's container events (median s): command -> 1st container created | engine: -> last started (created/started) | -> done`)
  const split = (ph: Phases | undefined) => (ph ? `${ph.toFirstCreate.toFixed(2)} | ${ph.engine.toFixed(2)} (${ph.creates}/${ph.starts}) | ${ph.toDone.toFixed(2)}` : 'no containers made')
  for (const p of r.pairs) lines.push(`  ${p.label.padEnd(28)} swarm ${split(p.phases.swarm).padEnd(28)} bramble ${split(p.phases.bramble)}`)
  const swarmAdds = r.memory.dockerdAfterKiB - r.memory.dockerdBeforeKiB
  const brambleAdds = r.memory.hubKiB + r.memory.agentKiB
  lines.push(
    `${'resident memory added'.padEnd(30)} ${mib(swarmAdds).padStart(9)} ${mib(brambleAdds).padStart(9)}   ${(brambleAdds / swarmAdds).toFixed(2).padStart(5)}`,
    `  swarm: dockerd RSS ${mib(r.memory.dockerdBeforeKiB)} before swarm init, ${mib(r.memory.dockerdAfterKiB)} after (nothing running); bramble: hub ${mib(r.memory.hubKiB)} + agent ${mib(r.memory.agentKiB)} (nothing running)`,
    `floor: bare docker run -d ${r.floorSeconds.toFixed(2)} s (median of 3)`,
    `the engine alone, through its API, 10 at a time (median of ${o.rounds}): N bare containers | N without a network | N pods' worth (a sandbox and a container in its network); each side / that floor, and the aim's bound / the containers' floors (below 1: faster than the engine)`,
  )
  for (const f of r.engineFloors) {
    const p = r.pairs.find((p) => p.replicas === f.replicas && p.label.endsWith('Running'))
    const bound = p?.aim === undefined ? '' : `, aim ${((p.aim * p.swarm) / f.containers).toFixed(2)} x containers (${((p.aim * p.swarm) / f.unnetworked).toFixed(2)} x without a network)`
    const against = p ? `   swarm ${(p.swarm / f.containers).toFixed(2)} x containers, bramble ${(p.bramble / f.pods).toFixed(2)} x pods${bound}` : ''
    lines.push(`  ${String(f.replicas).padStart(3)}: ${f.containers.toFixed(2)} s | ${f.unnetworked.toFixed(2)} s | ${f.pods.toFixed(2)} s${against}`)
  }
  return lines.join('\n')
}

/** Median time of three bare `docker run -d`, each container removed after. */
async function bareRunSeconds(host: NetnsHost, prefix: string): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < 3; i++) {
    const start = performance.now()
    const id = (await command('docker', ['-H', host.dockerHost, 'run', '-d', '--name', `${prefix}-bare-${i}`, '--label', 'io.bramble.bench=vs-swarm', BUSYBOX_IMAGE, ...COMMAND])).trim()
    times.push((performance.now() - start) / 1000)
    await host.docker.getContainer(id).remove({ force: true })
  }
  return median(times)
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

/** Seconds from starting `act` until `done` holds (polled every 50 ms), and that span on the wall clock (the engine's events' clock). */
async function timed(act: () => Promise<unknown>, what: string, done: () => Promise<boolean>, timeoutSeconds: number): Promise<{ seconds: number; startMs: number; endMs: number }> {
  const startMs = Date.now()
  const start = performance.now()
  await act()
  await waitFor(what, done, timeoutSeconds)
  return { seconds: (performance.now() - start) / 1000, startMs, endMs: Date.now() }
}

/** The engine's container create and start events, as it timestamps them, kept for the whole run. */
class EngineEvents {
  private readonly seen: Array<{ action: 'create' | 'start'; ms: number; labels: Record<string, string> }> = []
  private constructor(private readonly stream: NodeJS.ReadableStream & { destroy?(): void }) {
    let pending = ''
    stream.on('data', (chunk: Buffer) => {
      const lines = (pending + chunk.toString('utf8')).split('\n')
      pending = lines.pop()!
      for (const line of lines) {
        if (!line.trim()) continue
        const e = JSON.parse(line)
        if (e.Action === 'create' || e.Action === 'start') this.seen.push({ action: e.Action, ms: Number(e.timeNano) / 1e6, labels: e.Actor?.Attributes ?? {} })
      }
    })
    stream.on('error', () => {}) // ends with the run's dockerd
  }

  static async watch(docker: Docker): Promise<EngineEvents> {
    return new EngineEvents((await docker.getEvents({ filters: { type: ['container'], event: ['create', 'start'] } })) as NodeJS.ReadableStream)
  }

  /** The split of the span [startMs, endMs] by the events of the containers `owned` says are the step's; undefined when none was created. */
  phases(owned: (labels: Record<string, string>) => boolean, startMs: number, endMs: number): Phases | undefined {
    const events = this.seen.filter((e) => e.ms >= startMs && e.ms <= endMs && owned(e.labels))
    const creates = events.filter((e) => e.action === 'create')
    const starts = events.filter((e) => e.action === 'start')
    if (creates.length === 0 || starts.length === 0) return undefined
    const firstCreate = Math.min(...creates.map((e) => e.ms))
    const lastStart = Math.max(...starts.map((e) => e.ms))
    return { toFirstCreate: (firstCreate - startMs) / 1000, engine: (lastStart - firstCreate) / 1000, toDone: (endMs - lastStart) / 1000, creates: creates.length, starts: starts.length }
  }

  close(): void {
    this.stream.destroy?.()
  }
}

/** Each field's median over the rounds that have one. */
function medianPhases(all: Array<Phases | undefined>): Phases | undefined {
  const known = all.filter((p): p is Phases => p !== undefined)
  if (known.length === 0) return undefined
  const of = (key: keyof Phases) => median(known.map((p) => p[key]))
  return { toFirstCreate: of('toFirstCreate'), engine: of('engine'), toDone: of('toDone'), creates: of('creates'), starts: of('starts') }
}

/** A pause for resident memory to settle after start-up or `swarm init`. */
function settle(): Promise<void> {
  return new Promise((r) => setTimeout(r, 3_000))
}

function rssKiB(pid: number): number {
  const status = readText(`/proc/${pid}/status`)
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1])
  if (!Number.isFinite(kib)) throw new Error(`no resident memory for process ${pid}: is it running?`)
  return kib
}

/** RSS of `pid` and every process below it. */
function treeRssKiB(pid: number): number {
  const children = new Map<number, number[]>()
  for (const p of readdirSync('/proc').filter((d) => /^\d+$/.test(d)).map(Number)) {
    const ppid = Number(/^\d+ \(.*\) \S+ (\d+)/s.exec(readText(`/proc/${p}/stat`))?.[1])
    if (ppid) children.set(ppid, [...(children.get(ppid) ?? []), p])
  }
  let total = 0
  for (const queue = [pid]; queue.length > 0; ) {
    const p = queue.shift()!
    total += rssKiB(p)
    queue.push(...(children.get(p) ?? []))
  }
  return total
}

function mib(kib: number): string {
  return `${(kib / 1024).toFixed(1)} MiB`
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

async function main(): Promise<void> {
  let options: VsSwarmOptions
  try {
    options = parseVsSwarmArgs(process.argv.slice(2))
  } catch (err) {
    console.error((err as Error).message)
    process.exit(2)
  }
  const result = await runVsSwarmBench(options, (line) => console.error(`[vs-swarm] ${line}`))
  console.log(formatVsSwarm(result))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
