// The agent's Prometheus metrics (its small /metrics listener, metrics-listener.ts): MQTT messages
// by kind, pods by phase, container operations by result, its own CPU and memory, and the node's
// CPU, memory and temperature as last sent in a heartbeat. Loaded only when the listener is on,
// so an agent without it does not carry prom-client.

import { Counter, Gauge, Registry } from 'prom-client'
import type { BusDirection } from '../lib/metered-bus.js'
import { registerProcessMetrics } from '../lib/process-metrics.js'
import type { HostUsage } from './host-info.js'

/** What the gauges read when scraped. */
export interface AgentSources {
  /** The phase of every pod desired on the node, as last reported. */
  podPhases(): string[]
  /** The host's usage as last sent in a heartbeat. */
  nodeUsage(): HostUsage | undefined
}

export class AgentMetrics {
  readonly registry = new Registry()
  private readonly mqttMessages: Counter<'direction' | 'kind'>
  private readonly containerOperations: Counter<'operation' | 'result'>

  constructor() {
    const registers = [this.registry]
    registerProcessMetrics(this.registry)
    this.mqttMessages = new Counter({ name: 'bramble_agent_mqtt_messages_total', help: 'MQTT messages the agent received (in) and sent (out), by kind.', labelNames: ['direction', 'kind'], registers })
    this.containerOperations = new Counter({ name: 'bramble_agent_container_operations_total', help: 'Container engine operations (pull, create, start, stop, remove, exec) by result: ok or error.', labelNames: ['operation', 'result'], registers })
  }

  readonly mqttMessage = (direction: BusDirection, kind: string): void => {
    this.mqttMessages.inc({ direction, kind })
  }

  readonly containerOperation = (operation: string, result: 'ok' | 'error'): void => {
    this.containerOperations.inc({ operation, result })
  }

  readonly scrape = async (): Promise<{ contentType: string; body: string }> => ({ contentType: this.registry.contentType, body: await this.registry.metrics() })

  observe(sources: AgentSources): void {
    const registers = [this.registry]
    new Gauge({
      name: 'bramble_agent_pods',
      help: 'Pods desired on this node by phase, as last reported (Pending until a first status).',
      labelNames: ['phase'],
      registers,
      collect() {
        this.reset()
        const counts = new Map<string, number>()
        for (const phase of sources.podPhases()) counts.set(phase, (counts.get(phase) ?? 0) + 1)
        for (const [phase, n] of counts) this.set({ phase }, n)
      },
    })
    const nodeGauge = (name: string, help: string, read: (u: HostUsage) => number | undefined) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          const usage = sources.nodeUsage()
          const value = usage && read(usage)
          if (value === undefined) this.reset()
          else this.set(value)
        },
      })
    nodeGauge('bramble_node_cpu_ratio', "Fraction of the node's cores in use (0-1), as last sent in a heartbeat.", (u) => u.cpu)
    nodeGauge('bramble_node_memory_bytes', 'Memory in use on the node, as last sent in a heartbeat.', (u) => u.memoryUsedBytes)
    nodeGauge('bramble_node_temperature_celsius', "The node's SoC temperature, where the board reports one.", (u) => u.temperatureC)
  }
}
