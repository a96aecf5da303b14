// bench/sched-core: the hub's binding path alone. BENCH_PODS pods (10,000) are stored with
// BENCH_NODES Nodes (1,000; bench/sched's sizes, labels and taints), then the leader's controllers
// (startControllers: the real scheduler, informers, Registry and LMDB store) bind them, and it
// prints the CPU time of this process per binding, with its ratio to a baseline measured in the
// same run: the CPU time per create of the same pods into the same store. No agents, no MQTT, no
// status reports: on a loaded machine bench/sched's per-binding figure also takes in however many
// Running reports land in its binding window, so this one is the steadier figure for comparing
// two versions of the scheduler or the store (alternate them in the same window).
//
//   node dist/bench/sched-core.js      (BENCH_NODES, BENCH_PODS tune it)

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { KINDS } from '../src/api/kinds.js'
import type { KubeObject } from '../src/api/types.js'
import { startControllers } from '../src/hub/controllers.js'
import { HubMetrics } from '../src/hub/hub-metrics.js'
import { openLmdbStore } from '../src/hub/lmdb-store.js'
import { Registry } from '../src/hub/registry.js'
import { systemClock } from '../src/lib/clock.js'
import { resolveHubConfig } from '../src/lib/config.js'
import { silentLogger } from '../src/lib/logger.js'
import { benchPod, positiveInt, simulatedNodes } from './sched-workload.js'

const kind = (name: string) => KINDS.find((k) => k.kind === name)!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const, warnings: false }
const NAMESPACE = 'bench'
const IN_FLIGHT = 256
/** bench/sched's aim: 5,000 bindings per CPU-second. */
const AIM_MICROS_PER_BINDING = 200

export interface SchedCoreResult {
  nodes: number
  pods: number
  bound: number
  /** CPU time of this process per create of the pods (Registry.create into the store). */
  createCpuMicros: number
  /** CPU time of this process per binding, from the scheduler starting to the last binding. */
  bindCpuMicros: number
  boundPerSecond: number
}

function node(spec: ReturnType<typeof simulatedNodes>[number]): KubeObject {
  const resources = { cpu: String(spec.cpuCores), memory: String(spec.memoryBytes), pods: '110' }
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: spec.name, labels: { ...spec.labels, 'kubernetes.io/arch': spec.arch, 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': spec.name } },
    spec: spec.taints.length > 0 ? { taints: spec.taints } : {},
    status: { conditions: [{ type: 'Ready', status: 'True' }], capacity: resources, allocatable: resources, nodeInfo: { architecture: spec.arch, operatingSystem: 'linux' } },
  }
}

export async function runSchedCoreBench(o: { nodes: number; pods: number; timeoutMs: number }): Promise<SchedCoreResult> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-bench-sched-core-'))
  const store = await openLmdbStore({ path: join(dir, 'store'), mapSizeBytes: 4 * 1024 ** 3 })
  const stops: Array<() => Promise<void> | void> = []
  try {
    const registry = new Registry(store, systemClock, silentLogger())
    await registry.create(kind('Namespace'), '', { metadata: { name: NAMESPACE } }, WRITE)
    for (const spec of simulatedNodes(o.nodes)) await registry.create(kind('Node'), '', node(spec), WRITE)
    const create0 = process.cpuUsage()
    for (let i = 0; i < o.pods; i += IN_FLIGHT) {
      await Promise.all(Array.from({ length: Math.min(IN_FLIGHT, o.pods - i) }, (_, j) => registry.create(kind('Pod'), NAMESPACE, benchPod(i + j, NAMESPACE), WRITE)))
    }
    const created = process.cpuUsage(create0)
    let release!: () => void
    const schedulerHold = new Promise<void>((resolve) => (release = resolve))
    const config = resolveHubConfig({ dataDir: dir }, {})
    await startControllers(registry, config, { logger: silentLogger(), clock: systemClock, schedulerHold }, stops, new HubMetrics())
    const bound = new Set<string>()
    let bindCpu: NodeJS.CpuUsage | undefined
    let t1 = 0
    const from = await store.revision()
    const t0 = performance.now()
    const cpu0 = process.cpuUsage()
    const watch = store.watch({ resource: 'pods', namespace: NAMESPACE }, from, (event) => {
      if (!event.object.spec?.nodeName || bound.has(event.object.metadata.name!)) return
      bound.add(event.object.metadata.name!)
      if (bound.size === o.pods) {
        bindCpu = process.cpuUsage(cpu0)
        t1 = performance.now()
      }
    }, { readOnly: true })
    release()
    const deadline = performance.now() + o.timeoutMs
    while (!bindCpu && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    watch.stop()
    const micros = (u: NodeJS.CpuUsage | undefined) => (u ? (u.user + u.system) / o.pods : NaN)
    return { nodes: o.nodes, pods: o.pods, bound: bound.size, createCpuMicros: micros(created), bindCpuMicros: micros(bindCpu), boundPerSecond: bindCpu ? o.pods / ((t1 - t0) / 1000) : 0 }
  } finally {
    for (const stop of stops.reverse()) await stop()
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

async function main(): Promise<void> {
  const r = await runSchedCoreBench({ nodes: positiveInt('BENCH_NODES', 1_000, 5_000), pods: positiveInt('BENCH_PODS', 10_000, 100_000), timeoutMs: 600_000 })
  console.log(
    `CPU per binding (${r.pods} pods, ${r.nodes} nodes, the leader's controllers, no agents): ${r.bindCpuMicros.toFixed(0)} µs  ` +
      `baseline CPU per create of the same pods: ${r.createCpuMicros.toFixed(0)} µs  ratio: ${(r.bindCpuMicros / r.createCpuMicros).toFixed(2)}  aim: ${AIM_MICROS_PER_BINDING} µs`,
  )
  console.log(`bound ${r.bound}/${r.pods} at ${r.boundPerSecond.toFixed(0)} pods/s (wall clock: follows the machine's load)`)
  if (r.bound < r.pods) process.exitCode = 1
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
