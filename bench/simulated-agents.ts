// Many simulated agents in one process, for bench/sched. Each is the real agent (startAgent): it
// joins over HTTPS with a real join token, gets its own MQTT credentials, keeps its desired state
// and reports pod status through the real uplink. Only three things are swapped: the container
// runtime (SimulatedRuntime: pods "run" in memory), the host facts (given sizes, architectures,
// addresses) and the replica (in memory; see memory-replica.ts). A simulated node has no devices:
// its device directory is an empty one (listing the bench machine's /dev with every heartbeat of
// 10,000 nodes took a sixth of the simulator's CPU, work the hub never sees).
//
// Run as a child process (bench/sched forks it so the agents get a core of their own), it takes
// {type: 'start', options} over IPC, answers {type: 'started'} or {type: 'error'}, answers
// {type: 'connected?'} with {type: 'connected', count}, and closes the agents on {type: 'stop'} or
// when the parent goes away.

import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startAgent, type RunningAgent } from '../src/agent/agent.js'
import { DEFAULT_PAUSE_IMAGE } from '../src/agent/pod-pause-image.js'
import { systemClock } from '../src/lib/clock.js'
import { createLogger, silentLogger, type Logger } from '../src/lib/logger.js'
import { memoryReplicas } from './memory-replica.js'
import { SimulatedHostInfo, type SimulatedNodeSpec } from './simulated-host.js'
import { SimulatedRuntime } from './simulated-runtime.js'

export interface SimulatedAgentsOptions {
  /** The hub's API, `host:port`. */
  hub: string
  /** A join token the hub issued. */
  token: string
  nodes: SimulatedNodeSpec[]
  /** Each node's data dir (its identity.json) is `<dataRoot>/<name>`. */
  dataRoot: string
  heartbeatIntervalMs: number
  /** Agents starting (joining) at once. */
  concurrency?: number
  /** pino level for the agents' logs (stderr); silent by default. */
  logLevel?: string
}

export interface SimulatedAgents {
  agents: RunningAgent[]
  /** Containers running over all simulated nodes. */
  runningContainers(): number
  close(): Promise<void>
}

export async function startSimulatedAgents(o: SimulatedAgentsOptions): Promise<SimulatedAgents> {
  const logger: Logger = o.logLevel && o.logLevel !== 'silent' ? createLogger({ level: o.logLevel }) : silentLogger()
  const openReplica = memoryReplicas()
  const agents: RunningAgent[] = []
  const runtimes: SimulatedRuntime[] = []
  const queue = o.nodes.map((spec, index) => ({ spec, index }))
  const deviceDir = join(o.dataRoot, 'no-devices')
  mkdirSync(deviceDir, { recursive: true })
  const startOne = async ({ spec, index }: { spec: SimulatedNodeSpec; index: number }) => {
    const runtime = new SimulatedRuntime({ images: [DEFAULT_PAUSE_IMAGE], ipPrefix: `10.42.${index % 256}` })
    runtimes.push(runtime)
    const agent = await startAgent(
      {
        dataDir: join(o.dataRoot, spec.name),
        hub: o.hub,
        token: o.token,
        nodeName: spec.name,
        deviceDir,
        reserve: { cpuMillis: 100, memoryBytes: 128 * 1024 * 1024 },
        heartbeatIntervalMs: o.heartbeatIntervalMs,
        // The hub restarts once during the bench: come back quickly.
        mqttReconnect: { minMs: 200, maxMs: 2_000 },
        resyncMs: 60_000,
      },
      { runtime, hostInfo: new SimulatedHostInfo(spec), clock: systemClock, logger, runtimeVersion: async () => 'simulated://bench', openReplica },
    )
    agents.push(agent)
  }
  const workers = Array.from({ length: Math.min(o.concurrency ?? 16, queue.length) }, async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await startOne(next)
  })
  const started = await Promise.allSettled(workers)
  const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected')
  const close = async () => {
    await Promise.allSettled(agents.map((a) => a.close()))
  }
  if (failed) {
    await close()
    throw failed.reason
  }
  return {
    agents,
    runningContainers: () => runtimes.reduce((sum, r) => sum + r.running, 0),
    close,
  }
}

// ---- child-process mode -------------------------------------------------------------------------

type ParentMessage = { type: 'start'; options: SimulatedAgentsOptions } | { type: 'stop' } | { type: 'connected?' }

if (process.send && process.argv[1] === fileURLToPath(import.meta.url)) {
  let running: SimulatedAgents | undefined
  const stop = async () => {
    await running?.close()
    running = undefined
  }
  process.on('message', (msg: ParentMessage) => {
    if (msg.type === 'start') {
      startSimulatedAgents(msg.options).then(
        (agents) => {
          running = agents
          process.send!({ type: 'started', count: agents.agents.length })
        },
        (err) => process.send!({ type: 'error', message: (err as Error).message }),
      )
    } else if (msg.type === 'connected?') {
      // How many agents hold an MQTT session now (bench/sched waits for all after the hub restarts).
      process.send!({ type: 'connected', count: running?.agents.filter((a) => a.bus?.connected).length ?? 0 })
    } else if (msg.type === 'stop') {
      void stop().then(() => {
        process.send!({ type: 'stopped' })
        process.disconnect()
      })
    }
  })
  process.on('disconnect', () => void stop().then(() => process.exit(0)))
}
