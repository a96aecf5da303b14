// The agent's /metrics endpoint: what the metrics observe (the pods' phases, the node's usage) and
// the HTTP listener serving them. Only the type of AgentMetrics is imported: prom-client stays unloaded
// unless the listener is on.

import type { Logger } from '../lib/logger.js'
import type { AgentMetrics } from './agent-metrics.js'
import type { Heartbeat } from './heartbeat.js'
import { startMetricsListener, type MetricsListener } from './metrics-listener.js'
import type { Replica } from './replica.js'

/** The /metrics listener; one that cannot listen (the port taken) is logged, and the agent runs on without it. */
export async function startAgentMetrics(
  metrics: AgentMetrics,
  address: { host: string; port: number },
  from: { replica: Replica; podPhases: Map<string, string>; heartbeat: Heartbeat; log: Logger },
): Promise<MetricsListener | undefined> {
  metrics.observe({
    podPhases: () => {
      const desired = new Set(from.replica.pods().map((p) => String(p.metadata.uid)))
      for (const uid of from.podPhases.keys()) if (!desired.has(uid)) from.podPhases.delete(uid)
      return [...desired].map((uid) => from.podPhases.get(uid) ?? 'Pending')
    },
    nodeUsage: () => from.heartbeat.lastUsage,
  })
  try {
    const listener = await startMetricsListener({ ...address, scrape: metrics.scrape })
    from.log.info({ host: address.host, port: listener.port }, 'serving /metrics')
    return listener
  } catch (err) {
    from.log.warn({ err: (err as Error).message, host: address.host, port: address.port }, 'could not serve /metrics; running without it (see --metrics-address)')
    return undefined
  }
}
