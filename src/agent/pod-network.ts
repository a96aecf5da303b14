// The node's pod network: a Docker bridge network that owns the pod subnet the hub leased this
// node (from its own Node in the replica), with the iptables rules that let pod traffic cross
// nodes with pod IPs (src/mesh/pod-network.ts says which and why). Level-triggered: sync() looks
// at the Node and at what Docker and iptables have, and makes them agree; run it as often as you
// like. It answers the network sandboxes should join, or undefined while there is none (no subnet
// yet, or Docker refused it): pods then run on Docker's default bridge, as before.
//
// The rules stay when the agent stops: pods keep running without it (offline autonomy) and still
// need them. A network whose subnet is no longer the node's is removed once no pod uses it.

import type { KubeObject } from '../api/types.js'
import type { Logger } from '../lib/logger.js'
import { parseCidr } from '../mesh/ipam.js'
import { ANNOTATION_CLUSTER_CIDR, podGateway, podNetworkName, podNetworkRules, ruleMarker, type FirewallRule, type ForwardChain } from '../mesh/pod-network.js'
import { LABELS } from './container-runtime.js'
import type { BridgeNetwork, BridgeNetworks } from './docker-networks.js'
import type { HostFirewall } from './host-firewall.js'

export const NETWORK_LABELS = {
  cluster: LABELS.cluster,
  node: 'io.bramble.node',
  podCidr: 'io.bramble.pod-cidr',
} as const

export interface PodNetworkOptions {
  networks: BridgeNetworks
  firewall: HostFirewall
  clusterId: string
  node: string
  /** The bridge MTU (the tunnel's), or how to work it out (from the link) when first needed. */
  mtu: number | (() => Promise<number>)
  logger: Logger
}

export class PodNetwork {
  private chain: Promise<unknown> = Promise.resolve()
  private readonly log: Logger
  private lastNotice: string | undefined
  private mtu: number | undefined

  constructor(private readonly o: PodNetworkOptions) {
    this.log = o.logger.child({ component: 'pod-network', node: o.node })
  }

  /** Makes Docker and iptables match the Node; resolves with the network sandboxes join (undefined: Docker's default bridge). */
  sync(node: KubeObject | undefined): Promise<string | undefined> {
    const run = this.chain.then(() => this.apply(node))
    this.chain = run.catch(() => {})
    return run
  }

  private async apply(node: KubeObject | undefined): Promise<string | undefined> {
    const { clusterId } = this.o
    const ours = await this.o.networks.list({ [NETWORK_LABELS.cluster]: clusterId, [NETWORK_LABELS.node]: this.o.node })
    const leased = node?.spec?.podCIDR
    if (typeof leased !== 'string' || leased === '') {
      this.notice('info', 'no pod subnet from the hub yet: pods run on Docker\'s default bridge until it comes')
      return undefined
    }
    let podCidr: string
    let clusterCidr: string
    try {
      podCidr = parseCidr(leased, 'spec.podCIDR').text
      const annotated = node?.metadata.annotations?.[ANNOTATION_CLUSTER_CIDR]
      clusterCidr = annotated ? parseCidr(annotated, ANNOTATION_CLUSTER_CIDR).text : podCidr
    } catch (err) {
      this.notice('warn', `the hub sent an unusable pod subnet (${(err as Error).message}): pods run on Docker's default bridge`)
      return undefined
    }
    const name = podNetworkName(clusterId, podCidr)
    let network = ours.find((n) => n.name === name && n.subnet === podCidr)
    if (!network) {
      try {
        network = await this.o.networks.create({
          name,
          subnet: podCidr,
          gateway: podGateway(podCidr),
          mtu: await this.bridgeMtu(),
          labels: { [NETWORK_LABELS.cluster]: clusterId, [NETWORK_LABELS.node]: this.o.node, [NETWORK_LABELS.podCidr]: podCidr },
        })
        this.log.info({ network: name, podCIDR: podCidr, bridge: network.bridge, mtu: network.mtu }, 'made the pod network')
      } catch (err) {
        this.notice('warn', `could not make the pod network ${name} for ${podCidr} (${(err as Error).message}): pods run on Docker's default bridge; another network on this Docker may hold an overlapping subnet`)
        return undefined
      }
    }
    // Docker without its iptables rules (--iptables=false) has no DOCKER-USER chain: FORWARD then.
    const forwardChain: ForwardChain = (await this.o.firewall.hasChain('filter', 'DOCKER-USER')) ? 'DOCKER-USER' : 'FORWARD'
    await this.ensureRules(podNetworkRules({ clusterId, node: this.o.node, bridge: network.bridge, podCidr, clusterCidr, forwardChain }), forwardChain)
    await this.removeUnused(ours, network)
    this.notice('info', `pods join ${name} (${podCidr})`)
    return name
  }

  /**
   * Each wanted rule once, first in its chain; our rules that are no longer wanted (an old bridge,
   * or the other forward chain after Docker's iptables setting changed) go.
   */
  private async ensureRules(wanted: FirewallRule[], forwardChain: ForwardChain): Promise<void> {
    const marker = ruleMarker(this.o.clusterId, this.o.node)
    const text = (r: FirewallRule) => `${r.table} ${r.chain} ${r.args.join(' ')}`
    const want = new Set(wanted.map(text))
    const chains: Array<Pick<FirewallRule, 'table' | 'chain'>> = [{ table: 'filter', chain: 'FORWARD' }, { table: 'nat', chain: 'POSTROUTING' }]
    if (forwardChain === 'DOCKER-USER') chains.push({ table: 'filter', chain: 'DOCKER-USER' })
    for (const { table, chain } of chains) {
      for (const held of await this.o.firewall.list(table, chain, marker)) {
        if (!want.has(text(held))) {
          await this.o.firewall.delete(held)
          this.log.info({ rule: text(held) }, 'removed a pod network rule no longer wanted')
        }
      }
    }
    for (const rule of wanted) if (!(await this.o.firewall.has(rule))) await this.o.firewall.insert(rule)
  }

  private async removeUnused(ours: BridgeNetwork[], keep: BridgeNetwork): Promise<void> {
    for (const n of ours) {
      if (n.id === keep.id || n.containers > 0) continue
      if (await this.o.networks.remove(n.id)) this.log.info({ network: n.name, subnet: n.subnet }, 'removed a pod network the node no longer leases')
    }
  }

  private async bridgeMtu(): Promise<number> {
    if (this.mtu === undefined) this.mtu = typeof this.o.mtu === 'number' ? this.o.mtu : await this.o.mtu()
    return this.mtu
  }

  /** Logs a state once, not on every sync. */
  private notice(level: 'info' | 'warn', message: string): void {
    if (this.lastNotice === message) return
    this.lastNotice = message
    this.log[level](message)
  }
}
