// bench/sched: BENCH_PODS pods (10,000) onto BENCH_NODES simulated nodes (1,000) through the real
// scheduler, store and MQTT path; prints pods/s bound and pods/s reported Running, with their
// ratios to the Kubernetes scheduler's performance gate (90 pods/s on 500 nodes, a fixed
// reference) and to a baseline measured in the same run: how fast the same store takes the same
// pods as plain creates (one durable write each; a binding takes one, through pods/binding, and
// its Scheduled Event another). It also prints the hub's CPU time per binding (its own process,
// from the scheduler starting to the last binding): what a binding costs, a figure that other load
// on a shared machine moves far less than it moves the rate.
//
//   npm run bench:sched            (BENCH_NODES, BENCH_PODS, BENCH_TIMEOUT_SECONDS tune it;
//                                   BENCH_PROFILE=FILE writes a CPU profile of the hub's measured phase)
//
// How it runs, and why:
//  1. A real hub starts in this process; the simulated agents (bench/simulated-agents.ts: the real
//     agent with an in-memory runtime) run in a child process, so each side has a core. They join
//     with a real join token and connect to the embedded broker with their own credentials.
//  2. Once every Node is Ready, the bench labels and taints them through the Registry, as
//     `kubectl label` and `kubectl taint` would.
//  3. The hub stops, and the pods are written into its store through the Registry (the API's own
//     validation and defaults), not over HTTPS: HTTPS creates run at about 2,000/s here and would
//     cap the figure, and this way every pod exists before the scheduler looks, so the bind rate
//     is the scheduler's own.
//  4. The hub starts again on the same ports, its scheduler held (HubDeps.schedulerHold) until
//     every agent has reconnected: a thousand TLS handshakes and MQTT sessions are the cost of a
//     restart, not of binding, and would otherwise land in whatever part of the binding they
//     overlap. From the moment the scheduler is let go, a store watch times each pod's binding
//     (spec.nodeName set) and its status turning Running (reported by its agent over MQTT and
//     written by the hub), and the hub's CPU time is counted up to the last binding: everything
//     its process does meanwhile, the agents' Running reports and their status writes included.

import { fork, type ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { extname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { writeFile } from 'node:fs/promises'
import { Session } from 'node:inspector/promises'
import { KINDS } from '../src/api/kinds.js'
import type { KubeObject } from '../src/api/types.js'
import { startHub, type RunningHub } from '../src/hub/hub.js'
import { openLmdbStore } from '../src/hub/lmdb-store.js'
import { mutateObject, WRITE } from '../src/hub/node-gateway-writes.js'
import { Registry } from '../src/hub/registry.js'
import { systemClock } from '../src/lib/clock.js'
import { resolveHubConfig } from '../src/lib/config.js'
import { createLogger, silentLogger, type Logger } from '../src/lib/logger.js'
import { tolerates } from '../src/sched/filters.js'
import { benchPod, positiveInt, simulatedNodes } from './sched-workload.js'
import type { SimulatedAgentsOptions } from './simulated-agents.js'
import type { SimulatedNodeSpec } from './simulated-host.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const POD = KINDS.find((k) => k.kind === 'Pod')!
const NAMESPACE = KINDS.find((k) => k.kind === 'Namespace')!
const BENCH_NAMESPACE = 'bench'
/** The Kubernetes scheduler's performance gate: 90 pods/s on a 500-node cluster. */
export const KUBERNETES_GATE_PODS_PER_SECOND = 90
const AIM_PODS_PER_SECOND = 5_000
const SEED_IN_FLIGHT = 256
/** After the last agent reconnects: time for the hub to handle what agents send on a new session. */
const RECONNECT_SETTLE_MS = 1_000

export interface SchedBenchOptions {
  nodes: number
  pods: number
  /** The whole run, setup included, gives up after this long. */
  timeoutMs: number
  /** pino level for the hub and the agents (stderr); silent by default. */
  logLevel?: string
  /** Writes a CPU profile (.cpuprofile) of this process during the measured phase. */
  profilePath?: string
  /** Progress lines; the figures are returned, and printed by main(). */
  progress?: (line: string) => void
}

export interface SchedBenchResult {
  nodes: number
  pods: number
  bound: number
  running: number
  /** Pods bound whose node breaks one of the pod's constraints (selector, architecture, taints). */
  misplaced: number
  /** Baseline: Registry creates of the same pods into the same store, per second. */
  createsPerSecond: number
  boundPerSecond: number
  runningPerSecond: number
  /** From the scheduler starting (every pod already stored, every agent connected) to the last binding / the last Running. */
  bindSeconds: number
  runningSeconds: number
  hubStartSeconds: number
  /** From the hub being up again to every simulated agent having reconnected (not timed as binding). */
  reconnectSeconds: number
  /** Pods found bound when the scheduler was let go (0: the hold held). */
  boundWhileHeld: number
  /**
   * CPU time of the hub's process (user + system) from the scheduler starting to the last binding,
   * per binding: what the bound rate would cost on a core of its own, and far less sensitive than
   * the rate to other work on the machine.
   */
  hubCpuMicrosPerBinding: number
}

export async function runSchedBench(o: SchedBenchOptions): Promise<SchedBenchResult> {
  const deadline = performance.now() + o.timeoutMs
  const progress = o.progress ?? (() => {})
  const logger: Logger = o.logLevel && o.logLevel !== 'silent' ? createLogger({ level: o.logLevel }) : silentLogger()
  const root = await mkdtemp(join(tmpdir(), 'bramble-bench-sched-'))
  const hubDir = join(root, 'hub')
  const [apiPort, mqttPort] = [await freePort(), await freePort()]
  const config = resolveHubConfig(
    {
      dataDir: hubDir,
      listen: '127.0.0.1',
      apiPort: String(apiPort),
      mqttPort: String(mqttPort),
      storeMapSize: '4Gi',
      // A thousand nodes: heartbeats every 10 s, and a grace period the restart fits in.
      heartbeatInterval: '10s',
      nodeGracePeriod: '2m',
      // A pod subnet (/24) for each of up to 4,096 nodes; the default /16 has room for 256.
      clusterCidr: '10.64.0.0/12',
      // The bench measures scheduling, not failover: on a loaded machine a simulated agent may
      // miss its MQTT keep-alive and reconnect, and its pods must not be evicted meanwhile.
      defaultTolerationSeconds: '600',
    },
    {},
  )
  const specs = simulatedNodes(o.nodes)
  let hub: RunningHub | undefined
  let agents: ChildProcess | undefined
  try {
    // 1. Hub, then the nodes join.
    hub = await startHub(config, { logger, clock: systemClock })
    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: o.timeoutMs + 60_000, description: 'bench/sched' })
    let t = performance.now()
    agents = await forkAgents({ hub: `127.0.0.1:${apiPort}`, token, nodes: specs, dataRoot: join(root, 'nodes'), heartbeatIntervalMs: 10_000, concurrency: 16, logLevel: o.logLevel }, deadline)
    progress(`${o.nodes} simulated agents joined in ${seconds(t)} s`)
    t = performance.now()
    await until('every Node Ready', deadline, async () => (await readyNodes(hub!)) === o.nodes)
    progress(`every Node Ready after ${seconds(t)} s more`)

    // 2. Labels and taints, as an operator would set them.
    const registry = new Registry(hub.store, systemClock, logger)
    await inBatches(specs, 64, (spec) =>
      mutateObject(registry, NODE, '', spec.name, (node) => {
        node.metadata.labels = { ...node.metadata.labels, ...spec.labels }
        if (spec.taints.length > 0) node.spec = { ...node.spec, taints: spec.taints }
        return node
      }),
    )
    await hub.close()
    hub = undefined

    // 3. The pods, stored while no scheduler runs.
    const store = await openLmdbStore({ path: join(hubDir, 'store'), logger, clock: systemClock, mapSizeBytes: config.storeMapSizeBytes })
    let fromRevision: number
    let createsPerSecond: number
    try {
      const seedRegistry = new Registry(store, systemClock, logger)
      await seedRegistry.create(NAMESPACE, '', { metadata: { name: BENCH_NAMESPACE } }, WRITE)
      t = performance.now()
      await inBatches(
        Array.from({ length: o.pods }, (_, i) => i),
        SEED_IN_FLIGHT,
        (i) => seedRegistry.create(POD, BENCH_NAMESPACE, benchPod(i, BENCH_NAMESPACE), WRITE),
      )
      createsPerSecond = o.pods / ((performance.now() - t) / 1000)
      fromRevision = await store.revision()
    } finally {
      await store.close()
    }
    progress(`${o.pods} pods stored at ${createsPerSecond.toFixed(0)} creates/s`)

    // 4. The hub again, its scheduler held until every agent has reconnected; then bindings and
    //    Running are timed from the moment it is let go.
    const bound = new Map<string, number>()
    const running = new Map<string, number>()
    const placement = new Map<string, string>()
    let release!: () => void
    const schedulerHold = new Promise<void>((resolve) => (release = resolve))
    t = performance.now()
    hub = await startHub(config, { logger, clock: systemClock, schedulerHold })
    const hubStartSeconds = (performance.now() - t) / 1000
    t = performance.now()
    await until('every simulated agent reconnected', deadline, async () => (await connectedAgents(agents!)) === o.nodes)
    // The agents' first messages on a new session (presence, sync, node status) are handled before the count starts.
    await new Promise((r) => setTimeout(r, RECONNECT_SETTLE_MS))
    const reconnectSeconds = (performance.now() - t) / 1000
    progress(`hub up again in ${hubStartSeconds.toFixed(1)} s, every agent reconnected ${reconnectSeconds.toFixed(1)} s later`)
    const boundWhileHeld = (await hub.store.list({ resource: 'pods', namespace: BENCH_NAMESPACE })).items.filter((p) => p.spec?.nodeName).length
    const profiler = o.profilePath ? await startProfiler() : undefined
    let bindCpu: NodeJS.CpuUsage | undefined
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    // Read-only: it shares the informers' copy of each event instead of costing the hub a clone of every pod write.
    const watch = hub.store.watch({ resource: 'pods', namespace: BENCH_NAMESPACE }, fromRevision, (event) => {
      const pod = event.object
      const name = pod.metadata.name!
      const now = performance.now()
      if (pod.spec?.nodeName && !bound.has(name)) {
        bound.set(name, now)
        placement.set(name, pod.spec.nodeName)
        if (bound.size === o.pods) bindCpu = process.cpuUsage(cpu0)
      }
      if (pod.status?.phase === 'Running' && !running.has(name)) running.set(name, now)
    }, { readOnly: true })
    release()
    try {
      await until('every pod bound and Running', deadline, async () => bound.size === o.pods && running.size === o.pods, () =>
        progress(`  ${bound.size} bound, ${running.size} Running after ${seconds(t0)} s`),
      ).catch((err) => progress((err as Error).message))
    } finally {
      watch.stop()
      if (profiler) await writeFile(o.profilePath!, JSON.stringify(await profiler.stop()))
    }
    const last = (m: Map<string, number>) => Math.max(t0, ...m.values())
    const bindSeconds = (last(bound) - t0) / 1000
    const runningSeconds = (last(running) - t0) / 1000
    return {
      nodes: o.nodes,
      pods: o.pods,
      bound: bound.size,
      running: running.size,
      misplaced: misplaced(placement, specs, o.pods),
      createsPerSecond,
      boundPerSecond: bound.size / Math.max(bindSeconds, 1e-3),
      runningPerSecond: running.size / Math.max(runningSeconds, 1e-3),
      bindSeconds,
      runningSeconds,
      hubStartSeconds,
      reconnectSeconds,
      boundWhileHeld,
      hubCpuMicrosPerBinding: bindCpu ? (bindCpu.user + bindCpu.system) / o.pods : NaN,
    }
  } finally {
    if (agents) await stopAgents(agents)
    await hub?.close()
    await rm(root, { recursive: true, force: true })
  }
}

/** Pods whose node does not meet their node selector, required architecture or taints. */
function misplaced(placement: Map<string, string>, specs: SimulatedNodeSpec[], pods: number): number {
  const byName = new Map(specs.map((s) => [s.name, s]))
  let wrong = 0
  for (let i = 0; i < pods; i++) {
    const pod = benchPod(i, BENCH_NAMESPACE)
    const spec = byName.get(placement.get(pod.metadata.name!) ?? '')
    if (!spec) continue
    const labels: Record<string, string> = { ...spec.labels, 'kubernetes.io/arch': spec.arch }
    const selectorOk = Object.entries((pod.spec?.nodeSelector ?? {}) as Record<string, string>).every(([k, v]) => labels[k] === v)
    const required = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchExpressions?.[0]
    const affinityOk = !required || required.values.includes(labels[required.key])
    const archAnnotation = pod.metadata.annotations?.['bramble.io/architectures']
    const archOk = !archAnnotation || archAnnotation === spec.arch
    const taintsOk = spec.taints.every((taint) => taint.effect === 'PreferNoSchedule' || tolerates(pod, taint))
    if (!(selectorOk && affinityOk && archOk && taintsOk)) wrong++
  }
  return wrong
}

async function readyNodes(hub: RunningHub): Promise<number> {
  const { items } = await hub.store.list({ resource: 'nodes' })
  return items.filter((n: KubeObject) => n.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')).length
}

function forkAgents(options: SimulatedAgentsOptions, deadline: number): Promise<ChildProcess> {
  // The same kind of file as this one: .js when built, .ts under the test runner's loader.
  const path = fileURLToPath(new URL(`./simulated-agents${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
  const child = fork(path, [], { execArgv: process.execArgv, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('the simulated agents did not all start in time')), Math.max(0, deadline - performance.now()))
    const fail = (err: Error) => {
      clearTimeout(timer)
      child.kill('SIGKILL')
      reject(err)
    }
    child.once('exit', (code) => fail(new Error(`the simulated agents' process exited (${code}) before starting`)))
    child.on('message', (msg: { type: string; message?: string }) => {
      if (msg.type === 'started') {
        clearTimeout(timer)
        child.removeAllListeners('exit')
        resolve(child)
      } else if (msg.type === 'error') fail(new Error(`a simulated agent failed to start: ${msg.message}`))
    })
    child.send({ type: 'start', options })
  })
}

/** How many simulated agents hold an MQTT session, as their process says. */
function connectedAgents(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMessage = (msg: { type: string; count?: number }) => {
      if (msg.type !== 'connected') return
      child.off('message', onMessage)
      child.off('exit', onExit)
      resolve(msg.count ?? 0)
    }
    const onExit = () => {
      child.off('message', onMessage)
      reject(new Error("the simulated agents' process exited"))
    }
    child.on('message', onMessage)
    child.once('exit', onExit)
    child.send({ type: 'connected?' })
  })
}

async function stopAgents(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  child.send({ type: 'stop' })
  const timer = setTimeout(() => child.kill('SIGKILL'), 15_000)
  await exited
  clearTimeout(timer)
}

async function inBatches<T>(items: T[], inFlight: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0
  await Promise.all(
    Array.from({ length: Math.min(inFlight, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!)
    }),
  )
}

async function until(what: string, deadline: number, done: () => Promise<boolean>, onTick?: () => void): Promise<void> {
  let lastTick = performance.now()
  while (!(await done())) {
    if (performance.now() > deadline) throw new Error(`gave up waiting for ${what}`)
    if (onTick && performance.now() - lastTick > 5_000) {
      lastTick = performance.now()
      onTick()
    }
    await new Promise((r) => setTimeout(r, 50))
  }
}

async function startProfiler(): Promise<{ stop(): Promise<unknown> }> {
  const session = new Session()
  session.connect()
  await session.post('Profiler.enable')
  await session.post('Profiler.start')
  return {
    async stop() {
      const { profile } = await session.post('Profiler.stop')
      session.disconnect()
      return profile
    },
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

function seconds(since: number): string {
  return ((performance.now() - since) / 1000).toFixed(1)
}

async function main(): Promise<void> {
  const nodes = positiveInt('BENCH_NODES', 1_000, 5_000)
  const pods = positiveInt('BENCH_PODS', 10_000, 100_000)
  const timeoutSeconds = positiveInt('BENCH_TIMEOUT_SECONDS', 600, 3_600)
  const r = await runSchedBench({ nodes, pods, timeoutMs: timeoutSeconds * 1000, logLevel: process.env.BENCH_LOG_LEVEL, profilePath: process.env.BENCH_PROFILE, progress: (line) => console.log(line) })
  const ratio = (v: number, base: number) => (v / base).toFixed(2)
  console.log(
    `pods bound/s (${r.pods} pods, ${r.nodes} simulated nodes, every pod stored before the hub starts): ${r.boundPerSecond.toFixed(0)}  ` +
      `baseline Kubernetes gate: ${KUBERNETES_GATE_PODS_PER_SECOND}  ratio: ${ratio(r.boundPerSecond, KUBERNETES_GATE_PODS_PER_SECOND)}  ` +
      `baseline store creates/s (same pods, same store): ${r.createsPerSecond.toFixed(0)}  ratio: ${ratio(r.boundPerSecond, r.createsPerSecond)}  aim: ${AIM_PODS_PER_SECOND}`,
  )
  console.log(
    `pods reported Running/s (agents over MQTT, status written by the hub): ${r.runningPerSecond.toFixed(0)}  ` +
      `baseline Kubernetes gate: ${KUBERNETES_GATE_PODS_PER_SECOND}  ratio: ${ratio(r.runningPerSecond, KUBERNETES_GATE_PODS_PER_SECOND)}`,
  )
  console.log(
    `hub CPU per binding (its process, scheduler start to last binding): ${r.hubCpuMicrosPerBinding.toFixed(0)} µs, ` +
      `i.e. ${(1e6 / r.hubCpuMicrosPerBinding).toFixed(0)} bindings per CPU-second  aim: ${(1e6 / AIM_PODS_PER_SECOND).toFixed(0)} µs`,
  )
  console.log(`bound ${r.bound}/${r.pods} in ${r.bindSeconds.toFixed(2)} s, Running ${r.running}/${r.pods} in ${r.runningSeconds.toFixed(2)} s, misplaced ${r.misplaced}, hub start ${r.hubStartSeconds.toFixed(2)} s, agents reconnected ${r.reconnectSeconds.toFixed(2)} s after`)
  if (r.bound < r.pods || r.running < r.pods || r.misplaced > 0) process.exitCode = 1
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
