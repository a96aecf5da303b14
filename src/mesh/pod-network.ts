// A node's pod network as data: the Docker bridge network that owns the node's pod subnet (its
// name, gateway and MTU) and the iptables rules that let pod traffic cross nodes with pod IPs.
// Pure: the agent's pod-network.ts creates the network and applies the rules.
//
// Docker facts that bite (DESIGN.md, "The mesh"): it sets the FORWARD policy to DROP, so traffic
// arriving from the tunnel for a pod is accepted in DOCKER-USER; and it masquerades everything a
// bridge sends out, so the network is made without Docker's masquerade and our own rule
// masquerades only what leaves the cluster CIDR (pod to pod keeps pod IPs).

import { addressAt, parseCidr } from './ipam.js'
import { tunnelMtu } from './wireguard-peers.js'

/**
 * On a Node with a leased subnet: the cluster CIDR it came from (the hub's pod-cidr-allocator
 * sets it). Its agent keeps traffic inside that range unmasqueraded and masquerades the rest.
 */
export const ANNOTATION_CLUSTER_CIDR = 'bramble.io/cluster-cidr'

/**
 * Every rule of ours carries this comment, with the cluster id and node name (two agents may share
 * a host in tests): how they are found again, replaced, and never duplicated.
 */
export function ruleMarker(clusterId: string, node: string): string {
  return `bramble:${clusterId}:${node}:pod-network`
}

export interface FirewallRule {
  table: 'filter' | 'nat'
  chain: string
  /** The rule after the chain, as `iptables -A CHAIN` takes it, comment included. */
  args: string[]
}

export interface PodNetworkFacts {
  clusterId: string
  node: string
  /** The Linux bridge of the node's Docker network (`br-<id>`). */
  bridge: string
  /** The node's pod subnet: `10.42.3.0/24`. */
  podCidr: string
  /** Every node's pod addresses: `10.42.0.0/16`. */
  clusterCidr: string
  /**
   * Where the accept rules go: DOCKER-USER, or FORWARD when Docker runs without its iptables
   * rules (`--iptables=false`): it then makes no DOCKER-USER chain and nothing jumps to one.
   */
  forwardChain?: ForwardChain
}

export type ForwardChain = 'DOCKER-USER' | 'FORWARD'

/**
 * In the order `iptables -S` prints a rule's parts (-s, -d, -i, -o, matches, -j), so a listed rule
 * compares equal to the one wanted.
 * - filter DOCKER-USER (or FORWARD, see forwardChain): cluster traffic into the bridge, and out
 *   of it, is accepted (Docker's FORWARD policy is DROP and its own rules accept only replies
 *   into a bridge);
 * - nat POSTROUTING: pods' traffic to anywhere outside the cluster CIDR (and not back into the
 *   bridge) is masqueraded behind the node's address; inside it, pod IPs stay.
 */
export function podNetworkRules(f: PodNetworkFacts): FirewallRule[] {
  const comment = ['-m', 'comment', '--comment', ruleMarker(f.clusterId, f.node)]
  const chain = f.forwardChain ?? 'DOCKER-USER'
  return [
    { table: 'filter', chain, args: ['-s', f.clusterCidr, '-o', f.bridge, ...comment, '-j', 'ACCEPT'] },
    { table: 'filter', chain, args: ['-d', f.clusterCidr, '-i', f.bridge, ...comment, '-j', 'ACCEPT'] },
    { table: 'nat', chain: 'POSTROUTING', args: ['-s', f.podCidr, '!', '-d', f.clusterCidr, '!', '-o', f.bridge, ...comment, '-j', 'MASQUERADE'] },
  ]
}

/** The Docker network of a node's pod subnet; the subnet is in the name, so a new lease is a new network. */
export function podNetworkName(clusterId: string, podCidr: string): string {
  return `bramble-${clusterId}-${parseCidr(podCidr, 'spec.podCIDR').text.replace('/', '-')}`
}

/** The bridge's own address: the subnet's first host (pods get the addresses after it). */
export function podGateway(podCidr: string): string {
  return addressAt(parseCidr(podCidr, 'spec.podCIDR'), 1)
}

/** Used when the link's MTU cannot be read: a 1500-byte Ethernet link's tunnel. */
export const FALLBACK_LINK_MTU = 1500

/**
 * The bridge MTU: the WireGuard tunnel's (the link's minus WireGuard's overhead, tunnelMtu in
 * wireguard-peers.ts), so a pod's full-size packet to another node fits the tunnel unfragmented.
 * The WireGuard side must keep its interface MTU at tunnelMtu(link) too; change both together.
 */
export function podBridgeMtu(linkMtu: number | undefined): number {
  return tunnelMtu(linkMtu ?? FALLBACK_LINK_MTU)
}
