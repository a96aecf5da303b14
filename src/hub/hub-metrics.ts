// The hub's Prometheus metrics (served on the API port's /metrics, behind the API's tokens):
// API requests and their latency, the store's size and revision, scheduling attempts, MQTT
// messages by kind, heartbeats' lag from node to hub, nodes by condition, pods by phase, and each
// node's CPU, memory and temperature from its last heartbeat. Counters are bumped by the parts that see the events;
// everything else is read from the caches when Prometheus scrapes, so an idle hub does no work.

import { statSync } from 'node:fs'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import type { KubeObject } from '../api/types.js'
import type { BusDirection } from '../lib/metered-bus.js'
import { registerProcessMetrics } from '../lib/process-metrics.js'
import type { Heartbeats } from './heartbeats.js'
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
  readonly scrape = async (): Promise<{ contentType: string; body: string }> => ({ contentType: this.registry.contentType, body: await this.registry.metrics() })

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
        for (const [labels, n] of countBy(sources.nodes.list().flatMap(nodeConditions))) this.set(JSON.parse(labels), n)
      },
    })
    new Gauge({
      name: 'bramble_pods',
      help: 'Pods by phase (Pending, Running, Succeeded, Failed, Unknown).',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset()
        const phases = sources.pods.list().map((p) => JSON.stringify({ phase: String(p.status?.phase ?? 'Pending') }))
        for (const [labels, n] of countBy(phases)) this.set(JSON.parse(labels), n)
      },
    })
    const perNode = (name: string, help: string, read: (hb: NonNullable<ReturnType<Heartbeats['get']>>['heartbeat']) => number | undefined) =>
      new Gauge({
        name,
        help,
        labelNames: ['node'],
        registers,
        collect() {
          this.reset()
          for (const node of sources.heartbeats.nodeNames()) {
            const value = read(sources.heartbeats.get(node)?.heartbeat)
            if (value !== undefined) this.set({ node }, value)
          }
        },
      })
    perNode('bramble_node_cpu_ratio', "Fraction of the node's cores in use (0-1), from its last heartbeat.", (hb) => hb?.cpu)
    perNode('bramble_node_memory_bytes', "Memory in use on the node, from its last heartbeat.", (hb) => hb?.memory)
    perNode('bramble_node_temperature_celsius', "The node's SoC temperature, where the board reports one.", (hb) => hb?.temperature)
  }
}

/** `{"condition":"Ready","status":"True"}` for each condition of a Node. */
function nodeConditions(node: KubeObject): string[] {
  const conditions = (node.status?.conditions ?? []) as Array<{ type?: string; status?: string }>
  return conditions.filter((c) => c.type).map((c) => JSON.stringify({ condition: c.type, status: c.status ?? 'Unknown' }))
}

function countBy(keys: string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const k of keys) counts.set(k, (counts.get(k) ?? 0) + 1)
  return counts
}
