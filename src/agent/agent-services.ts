// The node's Services side as the agent config asks for it: the proxy rules and, unless turned off,
// the pods' DNS server with its address on the node's loopback.

import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { AGENT_DEFAULTS, type AgentConfig } from './agent-config.js'
import { nodeResolvers, type NodeAddresses } from './dns-server.js'
import { agentDir } from './join-client.js'
import { ServiceAgent } from './service-agent.js'
import type { Iptables } from './service-proxy.js'

/** The ServiceAgent for config.services (undefined without it), and the DNS address it serves on. */
export function serviceAgentFor(
  config: AgentConfig,
  ports: { iptables?: Iptables; nodeAddresses?: NodeAddresses },
  clusterId: string,
  clock: Clock,
  logger: Logger,
): { services: ServiceAgent | undefined; dnsAddress: string | undefined } {
  const svc = config.services
  const dnsAddress = svc ? (svc.dnsAddress ?? AGENT_DEFAULTS.clusterDnsAddress) : undefined
  const services = svc
    ? new ServiceAgent({
        dir: agentDir(config.dataDir),
        clusterId,
        ...(ports.iptables ? { iptables: ports.iptables } : {}),
        ...(svc.clusterCidr ? { clusterCidr: svc.clusterCidr } : {}),
        ...(dnsAddress
          ? {
              dns: {
                host: dnsAddress,
                port: svc.dnsPort ?? 53,
                upstreams: svc.upstreams ?? nodeResolvers(),
                ...(ports.nodeAddresses ? { prepare: () => ports.nodeAddresses!.ensureLoopback(dnsAddress) } : {}),
              },
            }
          : {}),
        clock,
        logger,
      })
    : undefined
  return { services, dnsAddress }
}
