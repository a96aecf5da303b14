// The node's pod network as the agent runs it: built from the agent's ports and config, and looked
// at again with every desired state applied and every resync. A new lease moves the pods, and rules
// lost (a flushed firewall, a restarted dockerd) come back; a failure keeps the pods where they are.

import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { podBridgeMtu } from '../mesh/pod-network.js'
import type { AgentConfig } from './agent-config.js'
import type { BridgeNetworks } from './docker-networks.js'
import type { HostFirewall } from './host-firewall.js'
import { PodNetwork } from './pod-network.js'

export interface PodNetworkPorts {
  networks: BridgeNetworks
  firewall: HostFirewall
  /** Reads the MTU of the node's link (the bridge gets the tunnel's, 80 less). */
  linkMtu?: (address: string) => Promise<number | undefined>
}

export function startPodNetwork(ports: PodNetworkPorts, config: AgentConfig, clusterId: string, node: string, hostIP: string, logger: Logger): PodNetwork {
  const linkMtu = ports.linkMtu
  return new PodNetwork({
    networks: ports.networks,
    firewall: ports.firewall,
    clusterId,
    node,
    mtu: config.podNetwork?.mtu || (async () => podBridgeMtu(linkMtu ? await linkMtu(hostIP).catch(() => undefined) : undefined)),
    logger,
  })
}

export interface PodNetworkRefreshOptions {
  podNetwork: PodNetwork
  /** The node's own Node, as the replica holds it. */
  node: () => KubeObject | undefined
  /** Hands the network sandboxes should join to the pod loop. */
  apply: (network: string | undefined) => void
  clock: Clock
  periodMs: number
  log: Logger
}

export class PodNetworkRefresh {
  private timer: { cancel(): void } | undefined
  private stopped = false

  constructor(private readonly o: PodNetworkRefreshOptions) {}

  async refresh(): Promise<void> {
    if (this.stopped) return
    try {
      const network = await this.o.podNetwork.sync(this.o.node())
      if (!this.stopped) this.o.apply(network)
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, 'could not update the pod network; will retry')
    }
  }

  start(): void {
    this.timer = this.o.clock.setTimeout(() => void this.refresh().finally(() => !this.stopped && this.start()), this.o.periodMs)
  }

  stop(): void {
    this.stopped = true
    this.timer?.cancel()
  }
}
