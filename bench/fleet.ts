// bench/fleet: a simulated fleet on one hub. For each broker (the embedded one, then Mosquitto) and
// each fleet size (1,000 then 10,000 agents, heartbeats every 5 s) it starts a fresh hub as its own
// process (the real `bramble hub`), connects the simulated agents (bench/simulated-agents.ts: the
// real agent with an in-memory runtime, each joining with the join token and holding its own TLS
// connection and MQTT credentials, as real nodes do), and applies Deployments totalling BENCH_FLEET_PODS
// pods (20,000). It prints, per run: time to every Node Ready and to every pod Running, the hub's
// CPU (user+sys seconds and % of one core, /proc/PID/stat) and memory (RSS), heartbeat lag p50/p99
// (node sending to hub having recorded it: the hub's bramble_heartbeat_lag_seconds histogram), and
// MQTT messages per second through the hub's gateway; for Mosquitto also the broker's own CPU and
// memory. Then the ratios to the baselines measured in the same run: the largest fleet against the
// smallest, Mosquitto against the embedded broker. The aim: 10,000 agents on a 2-core hub with
// heartbeat lag p99 under 1 s.
//
//   npm run bench:fleet     BENCH_FLEET_AGENTS=1000,10000  BENCH_FLEET_PODS=20000
//                           BENCH_FLEET_BROKERS=embedded,mosquitto  BENCH_TIMEOUT_SECONDS=900 (each run)
//                           BENCH_PROFILE=DIR: the hub and the agents' process write CPU profiles (.cpuprofile) there on exit
//
// Every phase is bounded by the run's deadline; on timeout the run prints how far it got and the
// bench goes on to the next one. The lag and the messages are measured in two windows: the fleet
// idle (every Node Ready, no pods: heartbeats only) and the rollout (Deployments applied until
// every pod is Running).

import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { ensurePki } from '../src/hub/pki.js'
import { systemClock } from '../src/lib/clock.js'
import { silentLogger } from '../src/lib/logger.js'
import { histogram, histogramDelta, hubClient, quantile, sampleSum, type HubClient } from './fleet-metrics.js'
import { commandExists, forkAgentsProcess, freePort, hardOpenFileLimit, sampleProcess, sleep, startHubProcess, startMosquittoProcess, type AgentsProcess, type HubProcess, type MosquittoProcess, type ProcessSample } from './fleet-processes.js'
import { simulatedNodes } from './sched-workload.js'

export type Broker = 'embedded' | 'mosquitto'
const NAMESPACE = 'fleet'
const REPLICAS_PER_DEPLOYMENT = 500
const AIM_LAG_P99_SECONDS = 1
const LAG_METRIC = 'bramble_heartbeat_lag_seconds'

export interface FleetRunOptions {
  broker: Broker
  agents: number
  pods: number
  heartbeatIntervalMs: number
  /** The whole run, setup included; each phase gives up at this deadline. */
  timeoutMs: number
  /** The idle window: heartbeats only. At least three heartbeat intervals. */
  idleWindowMs?: number
  /** Agents joining at once. */
  joinConcurrency?: number
  /** A directory the hub writes a CPU profile into when it stops. */
  profileDir?: string
  progress?: (line: string) => void
}

/** What one window measured: the hub's work and the heartbeats it recorded meanwhile. */
export interface WindowFigures {
  seconds: number
  hubCpuSeconds: number
  /** Of one core: 100 is one core busy the whole window. */
  hubCpuPercent: number
  hubRssBytes: number
  hubPeakRssBytes: number
  /** Mosquitto's own, when it is the broker. */
  brokerCpuSeconds?: number
  brokerCpuPercent?: number
  brokerRssBytes?: number
  /** The simulated agents' process (all of them): what the fleet itself cost, on the same 2 cores. */
  agentsCpuPercent: number
  heartbeats: number
  lagP50Seconds: number
  lagP99Seconds: number
  /** MQTT messages the hub's gateway received and sent, per second. */
  messagesPerSecond: number
  /** Sessions the agents began again (each sends `sync` on connecting): 0 unless links dropped. */
  reconnects: number
  /** How long the hub took to answer the /metrics scrape that ends the window (its per-node series grow with the fleet). */
  scrapeSeconds: number
}

export interface FleetRunResult {
  broker: Broker
  agents: number
  pods: number
  /** 'done', or the phase the run gave up in (and why). */
  reached: string
  /** Each process's open-file limit (soft) as it ran. */
  openFiles: { hub?: number; agents?: number; broker?: number }
  /** From starting the agents to every one having joined and connected. */
  joinSeconds?: number
  /** From starting the agents to every Node Ready. */
  readySeconds?: number
  /** CPU time over the joining, seconds: the hub's (its joins, Node writes, first node statuses) and the agents'. */
  joinCpu?: { hubSeconds: number; agentsSeconds: number; brokerSeconds?: number }
  nodesReady: number
  idle?: WindowFigures
  rollout?: WindowFigures & { runningSeconds?: number }
  /** Pods Running at the end, as the hub counts them (bramble_pods). */
  podsRunning: number
  /** The machine's 1-minute load average as the run started and ended: other work on it slows every figure. */
  load: { start: number; end?: number }
}

export async function runFleet(o: FleetRunOptions): Promise<FleetRunResult> {
  const deadline = performance.now() + o.timeoutMs
  const progress = o.progress ?? (() => {})
  const say = (line: string) => progress(`[${o.broker} ${o.agents}] ${line}`)
  const result: FleetRunResult = { broker: o.broker, agents: o.agents, pods: o.pods, reached: 'starting', openFiles: {}, nodesReady: 0, podsRunning: 0, load: { start: loadavg()[0]! } }
  const root = await mkdtemp(join(tmpdir(), 'flt-fleet-'))
  const hubDir = join(root, 'hub')
  // The agents' identity files on tmpfs where there is one: a real node fsyncs its own once, but
  // here thousands share one event loop and one disk, and each synchronous fsync would stall them all.
  const agentsRoot = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'flt-fleet-agents-'))
  let mosquitto: MosquittoProcess | undefined
  let hub: HubProcess | undefined
  let agents: AgentsProcess | undefined
  let client: HubClient | undefined
  const stopAll = async () => {
    await agents?.stop()
    await hub?.stop()
    await mosquitto?.stop()
    client?.close()
  }
  const removeDirs = () => Promise.all([root, agentsRoot].map((dir) => rm(dir, { recursive: true, force: true })))
  const onSignal = () => void stopAll().finally(() => removeDirs().finally(() => process.exit(143)))
  process.once('SIGTERM', onSignal)
  try {
    const mqttPort = await freePort()
    const profileArgs = o.profileDir ? ['--cpu-prof', `--cpu-prof-dir=${o.profileDir}`] : []
    const brokerArgs: string[] = []
    if (o.broker === 'mosquitto') {
      // The hub's PKI made ahead (the hub keeps it): Mosquitto serves with the hub's certificate.
      ensurePki({ dataDir: hubDir, advertise: '127.0.0.1', listen: '127.0.0.1', clock: systemClock, logger: silentLogger() })
      mosquitto = await startMosquittoProcess({ dir: root, hubDataDir: hubDir, port: mqttPort, timeoutMs: 30_000 })
      result.openFiles.broker = mosquitto.openFiles.soft
      brokerArgs.push('--mqtt-url', `mqtts://127.0.0.1:${mqttPort}`, '--mosquitto-pid-file', mosquitto.pidFile)
    }
    hub = await startHubProcess({
      dataDir: hubDir,
      mqttPort,
      args: [
        ...brokerArgs,
        '--heartbeat-interval', `${o.heartbeatIntervalMs}ms`,
        // Generous: the bench measures lag, it does not want nodes flapping while the hub is busy.
        '--node-grace-period', `${Math.max(60_000, 12 * o.heartbeatIntervalMs)}ms`,
        '--default-toleration-seconds', '3600',
        // A /24 of pod addresses for each of up to 16,384 nodes.
        '--cluster-cidr', '10.64.0.0/10',
        '--store-map-size', '8Gi',
      ],
      nodeArgs: profileArgs,
      timeoutMs: 60_000,
    })
    result.openFiles.hub = hub.openFiles.soft
    client = hubClient(hub.server, hub.token, hub.ca)
    const hubClientNow = client

    result.reached = 'joining'
    const specs = simulatedNodes(o.agents).map((spec, i) => ({ ...spec, name: `flt-${String(i).padStart(5, '0')}` }))
    const joinStart = performance.now()
    const hubAtJoin = sampleProcess(hub.pid)
    const brokerAtJoin = mosquitto && sampleProcess(mosquitto.pid)
    agents = forkAgentsProcess(
      { hub: new URL(hub.server).host, token: hub.joinToken, nodes: specs, dataRoot: agentsRoot, heartbeatIntervalMs: o.heartbeatIntervalMs, concurrency: o.joinConcurrency ?? 32 },
      deadline,
      Math.max(2_048, Math.ceil(o.agents * 0.6)),
      profileArgs,
    )
    result.openFiles.agents = agents.openFiles.soft
    let joined = false
    agents.started.then(() => {
      joined = true
      result.joinSeconds = secondsSince(joinStart)
    }, () => {})
    const readyNodes = async () => sampleSum(await hubClientNow.text('/metrics'), 'bramble_nodes', { condition: 'Ready', status: 'True' })
    let lastReport = performance.now()
    for (;;) {
      const failed = await Promise.race([agents.started.then(() => undefined, (err: Error) => err), sleep(2_000).then(() => undefined)])
      if (failed) throw new Phase('joining', failed.message)
      result.nodesReady = await readyNodes()
      if (joined && result.nodesReady >= o.agents) break
      if (performance.now() > deadline) throw new Phase('joining', `${result.nodesReady}/${o.agents} Nodes Ready at the deadline`)
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now()
        say(`${result.nodesReady}/${o.agents} Nodes Ready after ${secondsSince(joinStart).toFixed(0)} s`)
      }
    }
    result.readySeconds = secondsSince(joinStart)
    result.joinCpu = {
      hubSeconds: sampleProcess(hub.pid).cpuSeconds - hubAtJoin.cpuSeconds,
      agentsSeconds: sampleProcess(agents.child.pid!).cpuSeconds,
      ...(mosquitto && brokerAtJoin ? { brokerSeconds: sampleProcess(mosquitto.pid).cpuSeconds - brokerAtJoin.cpuSeconds } : {}),
    }
    say(`every agent joined in ${result.joinSeconds?.toFixed(1)} s, every Node Ready in ${result.readySeconds.toFixed(1)} s; CPU meanwhile: hub ${result.joinCpu.hubSeconds.toFixed(1)} s, agents ${result.joinCpu.agentsSeconds.toFixed(1)} s`)

    result.reached = 'idle window'
    const idleMs = Math.max(o.idleWindowMs ?? 0, 3 * o.heartbeatIntervalMs)
    if (performance.now() + idleMs > deadline) throw new Phase('idle window', 'no time left for it')
    const measured: Measured = { client, hub, agents, broker: mosquitto }
    const idleStart = await measureStart(measured)
    await sleep(idleMs)
    result.idle = await measureEnd(measured, idleStart)
    say(`idle: ${describeWindow(result.idle)}`)

    result.reached = 'rollout'
    const rolloutStart = await measureStart(measured)
    await applyDeployments(client, o.pods)
    let running = 0
    lastReport = performance.now()
    while (running < o.pods) {
      if (performance.now() > deadline) {
        result.rollout = await measureEnd(measured, rolloutStart)
        throw new Phase('rollout', `${running}/${o.pods} pods Running and Ready at the deadline`)
      }
      await sleep(1_000)
      running = await readyReplicas(client)
      if (performance.now() - lastReport > 10_000) {
        lastReport = performance.now()
        say(`${running}/${o.pods} pods Running after ${((performance.now() - rolloutStart.at) / 1000).toFixed(0)} s`)
      }
    }
    result.rollout = { ...(await measureEnd(measured, rolloutStart)), runningSeconds: (performance.now() - rolloutStart.at) / 1000 }
    say(`rollout: every pod Running in ${result.rollout.runningSeconds!.toFixed(1)} s; ${describeWindow(result.rollout)}`)
    result.reached = 'done'
  } catch (err) {
    result.reached = err instanceof Phase ? `${err.phase}: ${err.message}` : `${result.reached}: ${(err as Error).message}`
    say(`gave up in ${result.reached}`)
    if (hub) say(`hub log tail: ${hub.logTail().slice(-1_000) || '(empty)'}`)
  } finally {
    process.removeListener('SIGTERM', onSignal)
    if (client) {
      const text = await client.text('/metrics').catch(() => '')
      result.podsRunning = sampleSum(text, 'bramble_pods', { phase: 'Running' })
      if (text) result.nodesReady = sampleSum(text, 'bramble_nodes', { condition: 'Ready', status: 'True' })
    }
    result.load.end = loadavg()[0]!
    await stopAll()
    await removeDirs()
  }
  return result
}

class Phase extends Error {
  constructor(readonly phase: string, message: string) {
    super(message)
  }
}

interface Measured {
  client: HubClient
  hub: HubProcess
  agents: AgentsProcess
  broker?: MosquittoProcess
}

interface WindowStart {
  at: number
  metrics: string
  hub: ProcessSample
  agents: ProcessSample
  broker?: ProcessSample
}

async function measureStart(m: Measured): Promise<WindowStart> {
  const metrics = await m.client.text('/metrics')
  return { at: performance.now(), metrics, hub: sampleProcess(m.hub.pid), agents: sampleProcess(m.agents.child.pid!), ...(m.broker ? { broker: sampleProcess(m.broker.pid) } : {}) }
}

async function measureEnd(m: Measured, start: WindowStart): Promise<WindowFigures> {
  const { client, hub, broker } = m
  const hubNow = sampleProcess(hub.pid)
  const agentsNow = sampleProcess(m.agents.child.pid!)
  const brokerNow = broker ? sampleProcess(broker.pid) : undefined
  const seconds = (performance.now() - start.at) / 1000
  const scrapeStart = performance.now()
  const metrics = await client.text('/metrics')
  const scrapeSeconds = (performance.now() - scrapeStart) / 1000
  const lag = histogramDelta(histogram(start.metrics, LAG_METRIC), histogram(metrics, LAG_METRIC))
  const messages = sampleSum(metrics, 'bramble_mqtt_messages_total') - sampleSum(start.metrics, 'bramble_mqtt_messages_total')
  const syncs = (text: string) => sampleSum(text, 'bramble_mqtt_messages_total', { direction: 'in', kind: 'sync' })
  const hubCpuSeconds = hubNow.cpuSeconds - start.hub.cpuSeconds
  return {
    seconds,
    hubCpuSeconds,
    hubCpuPercent: (100 * hubCpuSeconds) / seconds,
    hubRssBytes: hubNow.rssBytes,
    hubPeakRssBytes: hubNow.peakRssBytes,
    ...(brokerNow && start.broker
      ? { brokerCpuSeconds: brokerNow.cpuSeconds - start.broker.cpuSeconds, brokerCpuPercent: (100 * (brokerNow.cpuSeconds - start.broker.cpuSeconds)) / seconds, brokerRssBytes: brokerNow.rssBytes }
      : {}),
    agentsCpuPercent: (100 * (agentsNow.cpuSeconds - start.agents.cpuSeconds)) / seconds,
    heartbeats: lag.count,
    lagP50Seconds: quantile(0.5, lag),
    lagP99Seconds: quantile(0.99, lag),
    messagesPerSecond: messages / seconds,
    reconnects: syncs(metrics) - syncs(start.metrics),
    scrapeSeconds,
  }
}

/** Deployments of up to 500 replicas each, together `pods`, created over HTTPS as `kubectl apply` would. */
async function applyDeployments(client: HubClient, pods: number): Promise<void> {
  const ns = await client.json('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } })
  if (ns.status !== 201 && ns.status !== 409) throw new Error(`creating namespace ${NAMESPACE}: HTTP ${ns.status}: ${JSON.stringify(ns.body).slice(0, 300)}`)
  for (let i = 0, left = pods; left > 0; i++, left -= REPLICAS_PER_DEPLOYMENT) {
    const name = `app-${String(i).padStart(3, '0')}`
    const replicas = Math.min(REPLICAS_PER_DEPLOYMENT, left)
    const labels = { app: name }
    const res = await client.json('POST', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`, {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name, labels },
      spec: {
        replicas,
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            terminationGracePeriodSeconds: 1,
            containers: [{ name: 'app', image: 'registry.bench.invalid/fleet/app:1', resources: { requests: { cpu: '10m', memory: '16Mi' } } }],
          },
        },
      },
    })
    if (res.status !== 201) throw new Error(`creating Deployment ${name}: HTTP ${res.status}: ${JSON.stringify(res.body).slice(0, 300)}`)
  }
}

/** Pods Running and Ready, as the Deployments count them (a list of a few dozen objects, cheap for the hub). */
async function readyReplicas(client: HubClient): Promise<number> {
  const res = await client.json('GET', `/apis/apps/v1/namespaces/${NAMESPACE}/deployments`)
  if (res.status !== 200) throw new Error(`listing Deployments: HTTP ${res.status}`)
  return (res.body.items as Array<{ status?: { readyReplicas?: number } }>).reduce((sum, d) => sum + (d.status?.readyReplicas ?? 0), 0)
}

function describeWindow(w: WindowFigures): string {
  const broker = w.brokerCpuSeconds === undefined ? '' : `, Mosquitto CPU ${w.brokerCpuSeconds.toFixed(1)} s (${w.brokerCpuPercent!.toFixed(0)}%) RSS ${mib(w.brokerRssBytes!)}`
  return (
    `hub CPU ${w.hubCpuSeconds.toFixed(1)} s over ${w.seconds.toFixed(1)} s (${w.hubCpuPercent.toFixed(0)}% of one core), RSS ${mib(w.hubRssBytes)} (peak ${mib(w.hubPeakRssBytes)})${broker}, ` +
    `agents' process ${w.agentsCpuPercent.toFixed(0)}% of one core, heartbeat lag p50 ${ms(w.lagP50Seconds)} p99 ${ms(w.lagP99Seconds)} over ${w.heartbeats} heartbeats, ${w.messagesPerSecond.toFixed(0)} MQTT messages/s, ${w.reconnects} agent reconnects, /metrics answered in ${ms(w.scrapeSeconds)}`
  )
}

const mib = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MiB`
const ms = (seconds: number) => (Number.isNaN(seconds) ? 'n/a' : `${(seconds * 1000).toFixed(1)} ms`)
const secondsSince = (t: number) => (performance.now() - t) / 1000

/** The printed report: one block per run, then the ratios to the baselines of this same run. */
export function report(results: FleetRunResult[]): string[] {
  const lines: string[] = []
  for (const r of results) {
    const limits = `open-file limit: hub ${r.openFiles.hub ?? '?'}, agents ${r.openFiles.agents ?? '?'}${r.broker === 'mosquitto' ? `, mosquitto ${r.openFiles.broker ?? '?'}` : ''}`
    lines.push(`fleet ${r.agents} agents, ${r.pods} pods, ${r.broker} broker: ${r.reached === 'done' ? 'done' : `INCOMPLETE (${r.reached})`}; ${limits}`)
    const joinCpu = r.joinCpu ? `; CPU meanwhile: hub ${r.joinCpu.hubSeconds.toFixed(1)} s, agents ${r.joinCpu.agentsSeconds.toFixed(1)} s${r.joinCpu.brokerSeconds === undefined ? '' : `, Mosquitto ${r.joinCpu.brokerSeconds.toFixed(1)} s`}` : ''
    lines.push(`  Nodes Ready: ${r.nodesReady}/${r.agents}${r.readySeconds === undefined ? '' : ` in ${r.readySeconds.toFixed(1)} s (joined in ${r.joinSeconds?.toFixed(1) ?? '?'} s)${joinCpu}`}`)
    if (r.idle) lines.push(`  idle fleet: ${describeWindow(r.idle)}`)
    if (r.rollout) {
      const running = r.rollout.runningSeconds === undefined ? `not all Running (${r.podsRunning}/${r.pods} at the end)` : `all ${r.pods} pods Running in ${r.rollout.runningSeconds.toFixed(1)} s`
      lines.push(`  rollout: ${running}; ${describeWindow(r.rollout)}`)
    }
    lines.push(`  pods Running at the end: ${r.podsRunning}/${r.pods}`)
    lines.push(`  machine load (1-minute average, ${cpus().length} cores): ${r.load.start.toFixed(1)} at the start, ${r.load.end?.toFixed(1) ?? '?'} at the end`)
    const p99s = [r.idle?.lagP99Seconds, r.rollout?.lagP99Seconds].filter((v): v is number => v !== undefined && !Number.isNaN(v))
    if (p99s.length > 0) {
      const worst = Math.max(...p99s)
      lines.push(`  heartbeat lag p99, the worse window: ${ms(worst)}  aim: under ${AIM_LAG_P99_SECONDS * 1000} ms: ${worst < AIM_LAG_P99_SECONDS ? 'met' : 'NOT met'}`)
    }
  }
  const done = results.filter((r) => r.rollout?.runningSeconds !== undefined && r.idle)
  const ratio = (a: number, b: number) => (b > 0 && Number.isFinite(a / b) ? (a / b).toFixed(2) : 'n/a')
  for (const broker of ['embedded', 'mosquitto'] as const) {
    const runs = done.filter((r) => r.broker === broker).sort((a, b) => a.agents - b.agents)
    if (runs.length < 2) continue
    const [base, big] = [runs[0]!, runs.at(-1)!]
    lines.push(
      `ratio ${big.agents} vs ${base.agents} agents (${broker}, baseline ${base.agents}): time to all Running ${ratio(big.rollout!.runningSeconds!, base.rollout!.runningSeconds!)}, ` +
        `idle hub CPU ${ratio(big.idle!.hubCpuSeconds, base.idle!.hubCpuSeconds)}, hub RSS ${ratio(big.rollout!.hubRssBytes, base.rollout!.hubRssBytes)}, ` +
        `idle lag p99 ${ratio(big.idle!.lagP99Seconds, base.idle!.lagP99Seconds)}, rollout lag p99 ${ratio(big.rollout!.lagP99Seconds, base.rollout!.lagP99Seconds)}, idle messages/s ${ratio(big.idle!.messagesPerSecond, base.idle!.messagesPerSecond)}`,
    )
  }
  for (const agents of [...new Set(done.map((r) => r.agents))]) {
    const base = done.find((r) => r.agents === agents && r.broker === 'embedded')
    const other = done.find((r) => r.agents === agents && r.broker === 'mosquitto')
    if (!base || !other) continue
    const hubAndBroker = (w: WindowFigures) => w.hubCpuSeconds + (w.brokerCpuSeconds ?? 0)
    lines.push(
      `ratio Mosquitto vs embedded broker (${agents} agents, baseline embedded): time to all Running ${ratio(other.rollout!.runningSeconds!, base.rollout!.runningSeconds!)}, ` +
        `idle hub CPU ${ratio(other.idle!.hubCpuSeconds, base.idle!.hubCpuSeconds)}, idle hub+broker CPU ${ratio(hubAndBroker(other.idle!), hubAndBroker(base.idle!))}, ` +
        `hub RSS ${ratio(other.rollout!.hubRssBytes, base.rollout!.hubRssBytes)}, idle lag p99 ${ratio(other.idle!.lagP99Seconds, base.idle!.lagP99Seconds)}, rollout lag p99 ${ratio(other.rollout!.lagP99Seconds, base.rollout!.lagP99Seconds)}`,
    )
  }
  return lines
}

function listEnv<T extends string>(name: string, fallback: T[], parse: (item: string) => T): T[] {
  const raw = process.env[name]
  if (raw === undefined || raw.trim() === '') return fallback
  return raw.split(',').map((item) => parse(item.trim()))
}

function wholeNumber(name: string, raw: string, max: number): number {
  const value = Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must hold whole numbers from 1 to ${max}, got "${raw}"`)
  return value
}

async function main(): Promise<void> {
  const hard = hardOpenFileLimit()
  // Each agent holds one socket in the agents' process and one in the broker's: leave room for the rest.
  const maxAgents = Math.max(1, Math.min(50_000, (Number.isFinite(hard) ? hard : 50_000) - 1_000))
  const agentCounts = listEnv('BENCH_FLEET_AGENTS', ['1000', '10000'], (s) => s).map((s) => wholeNumber('BENCH_FLEET_AGENTS', s, maxAgents))
  const pods = wholeNumber('BENCH_FLEET_PODS', process.env.BENCH_FLEET_PODS ?? '20000', 200_000)
  const timeoutSeconds = wholeNumber('BENCH_TIMEOUT_SECONDS', process.env.BENCH_TIMEOUT_SECONDS ?? '900', 7_200)
  const heartbeatSeconds = wholeNumber('BENCH_FLEET_HEARTBEAT_SECONDS', process.env.BENCH_FLEET_HEARTBEAT_SECONDS ?? '5', 600)
  const brokers = listEnv<Broker>('BENCH_FLEET_BROKERS', ['embedded', 'mosquitto'], (s) => {
    if (s !== 'embedded' && s !== 'mosquitto') throw new Error(`BENCH_FLEET_BROKERS must list embedded and/or mosquitto, got "${s}"`)
    return s
  })
  console.log(`open-file hard limit: ${hard}; every process below is started with its soft limit raised to it (prlimit --nofile=${hard}:${hard})`)
  const results: FleetRunResult[] = []
  for (const broker of brokers) {
    if (broker === 'mosquitto' && !commandExists('mosquitto', ['-h'])) {
      console.log('mosquitto is not installed (apt-get install mosquitto): the Mosquitto runs are skipped')
      continue
    }
    for (const agents of agentCounts) {
      results.push(await runFleet({ broker, agents, pods, heartbeatIntervalMs: heartbeatSeconds * 1000, timeoutMs: timeoutSeconds * 1000, profileDir: process.env.BENCH_PROFILE, progress: (line) => console.log(line) }))
    }
  }
  for (const line of report(results)) console.log(line)
  if (results.some((r) => r.reached !== 'done')) process.exitCode = 1
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
