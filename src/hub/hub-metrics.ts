// The hub's Prometheus metrics (served on the API port's /metrics, behind the API's tokens):
// API requests and their latency, the store's size and revision, scheduling attempts, MQTT
// messages by kind, heartbeats' lag from node to hub, nodes by condition, pods by phase, and each
// node's CPU, memory and temperature from its last heartbeat. Counters are bumped by the parts that see the events;
// everything else is read from the caches when Prometheus scrapes, so an idle hub does no work.

import { statSync } from 'node:fs'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { BusDirection } from '../lib/metered-bus.js'
import { registerProcessMetrics } from '../lib/process-metrics.js'
import type { HeartbeatFigures, Heartbeats } from './heartbeats.js'
import type { Informer } from './informer.js'
import type { Store } from './store.js'

export type SchedulingResult = 'scheduled' | 'unschedulable' | 'error'

/** What the hub's state gauges read at scrape time. */
export interface ClusterSources {
  store: Store
  /** The LMDB data file whose size is reported. */
  storeFile: string
  nodes: Informer
  pods: Informer
  heartbeats: Heartbeats
}

const LATENCY_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Finer at the low end: a heartbeat on an idle hub takes about a millisecond; the aim is under a second at p99. */
const HEARTBEAT_LAG_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 10, 30]

export class HubMetrics {
  readonly registry = new Registry()
  private readonly apiRequests: Counter<'verb' | 'resource' | 'code'>
  private readonly apiLatency: Histogram<'verb' | 'resource'>
  private readonly schedulingAttempts: Counter<'result'>
  private readonly schedulingLatency: Histogram<'result'>
  private readonly mqttMessages: Counter<'direction' | 'kind'>
  private readonly heartbeatLags: Histogram
  /** The per-node gauges' text, once observeCluster has the heartbeats. */
  private perNode: () => string = () => ''

  constructor() {
    const registers = [this.registry]
    registerProcessMetrics(this.registry)
    this.apiRequests = new Counter({ name: 'bramble_api_requests_total', help: 'API requests by Kubernetes verb, resource and HTTP status code.', labelNames: ['verb', 'resource', 'code'], registers })
    this.apiLatency = new Histogram({ name: 'bramble_api_request_duration_seconds', help: 'API request latency by verb and resource (watches and followed logs excluded).', labelNames: ['verb', 'resource'], buckets: LATENCY_BUCKETS, registers })
    this.schedulingAttempts = new Counter({ name: 'bramble_scheduling_attempts_total', help: 'Scheduling attempts by result: scheduled, unschedulable or error.', labelNames: ['result'], registers })
    this.schedulingLatency = new Histogram({ name: 'bramble_scheduling_duration_seconds', help: 'Time from a scheduling decision to its binding written, by result.', labelNames: ['result'], buckets: LATENCY_BUCKETS, registers })
    this.mqttMessages = new Counter({ name: 'bramble_mqtt_messages_total', help: 'MQTT messages the hub received (in) and sent (out), by kind.', labelNames: ['direction', 'kind'], registers })
    this.heartbeatLags = new Histogram({
      name: 'bramble_heartbeat_lag_seconds',
      help: "Time from a node sending a heartbeat (its clock) to the hub having recorded it (the hub's clock).",
      buckets: HEARTBEAT_LAG_BUCKETS,
      registers,
    })
  }

  /** The text Prometheus scrapes. */
  readonly scrape = async (): Promise<{ contentType: string; body: string }> => ({ contentType: this.registry.contentType, body: (await this.registry.metrics()) + this.perNode() })

  /** One API request done; `seconds` undefined for long-running ones (watch, followed logs). */
  readonly apiRequest = (verb: string, resource: string, code: number, seconds: number | undefined): void => {
    this.apiRequests.inc({ verb, resource, code: String(code) })
    if (seconds !== undefined) this.apiLatency.observe({ verb, resource }, seconds)
  }

  readonly schedulingAttempt = (result: SchedulingResult, seconds: number): void => {
    this.schedulingAttempts.inc({ result })
    this.schedulingLatency.observe({ result }, seconds)
  }

  readonly mqttMessage = (direction: BusDirection, kind: string): void => {
    this.mqttMessages.inc({ direction, kind })
  }

  readonly heartbeatLag = (seconds: number): void => {
    this.heartbeatLags.observe(seconds)
  }

  /** The gauges read from the store and the gateway's caches at scrape time. */
  observeCluster(sources: ClusterSources): void {
    const registers = [this.registry]
    new Gauge({
      name: 'bramble_store_size_bytes',
      help: "Size of the store's LMDB data file on disk.",
      registers,
      collect() {
        try {
          this.set(statSync(sources.storeFile).size)
        } catch {
          this.reset()
        }
      },
    })
    new Gauge({
      name: 'bramble_store_revision',
      help: "The store's current revision (every write bumps it).",
      registers,
      async collect() {
        this.set(await sources.store.revision())
      },
    })
    new Gauge({
      name: 'bramble_nodes',
      help: 'Nodes by condition type and status (Ready="True", "False" or "Unknown").',
      labelNames: ['condition', 'status'],
      registers,
      collect() {
        this.reset()
        const counts = new Map<string, { condition: string; status: string; n: number }>()
        for (const node of sources.nodes.list()) {
          for (const c of (node.status?.conditions ?? []) as Array<{ type?: string; status?: string }>) {
            if (!c.type) continue
            const status = c.status ?? 'Unknown'
            const key = `${c.type}\n${status}`
            const count = counts.get(key)
            if (count) count.n++
            else counts.set(key, { condition: c.type, status, n: 1 })
          }
        }
        for (const { condition, status, n } of counts.values()) this.set({ condition, status }, n)
      },
    })
    new Gauge({
      name: 'bramble_pods',
      help: 'Pods by phase (Pending, Running, Succeeded, Failed, Unknown).',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset()
        const counts = new Map<string, number>()
        for (const pod of sources.pods.list()) {
          const phase = String(pod.status?.phase ?? 'Pending')
          counts.set(phase, (counts.get(phase) ?? 0) + 1)
        }
        for (const [phase, n] of counts) this.set({ phase }, n)
      },
    })
    this.perNode = () => perNodeText(sources.heartbeats)
  }
}

/** Each node's figures from its last heartbeat, one series per node and metric. */
const PER_NODE: Array<{ name: string; help: string; read(hb: HeartbeatFigures): number | undefined }> = [
  { name: 'bramble_node_cpu_ratio', help: "Fraction of the node's cores in use (0-1), from its last heartbeat.", read: (hb) => hb.cpu },
  { name: 'bramble_node_memory_bytes', help: 'Memory in use on the node, from its last heartbeat.', read: (hb) => hb.memory },
  { name: 'bramble_node_temperature_celsius', help: "The node's SoC temperature, where the board reports one.", read: (hb) => hb.temperature },
]

/**
 * The per-node gauges in the text format, written straight from the heartbeats: through prom-client
 * (a labelled series per node, copied, hashed and escaped) a scrape of 10,000 nodes took the hub's
 * event loop 90-230 ms, most of it collecting the garbage, while heartbeats waited behind it.
 */
export function perNodeText(heartbeats: Heartbeats): string {
  const lines: string[] = []
  for (const metric of PER_NODE) {
    lines.push(`# HELP ${metric.name} ${metric.help}`, `# TYPE ${metric.name} gauge`)
    heartbeats.forEachHeartbeat((node, hb) => {
      const value = metric.read(hb)
      if (value !== undefined) lines.push(`${metric.name}{node="${escapeLabelValue(node)}"} ${value}`)
    })
  }
  return lines.join('\n') + '\n'
}

/** A label value as the text format wants it: backslash, double quote and newline escaped. */
function escapeLabelValue(value: string): string {
  return value.replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))
}
