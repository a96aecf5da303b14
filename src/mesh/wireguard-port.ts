// The WireGuard port (DESIGN.md, "Ports and adapters"): what the agent asks of a node's WireGuard,
// whether the kernel's or wireguard-go's. The real adapter is src/agent/wireguard-link.ts; one
// contract suite (test/contract/wireguard.ts) runs against it.

import type { WireGuardPeer } from './wireguard-peers.js'

export interface WireGuardLinkSettings {
  /** Interface name (at most 15 characters, the kernel's limit). */
  name: string
  /** A file holding the base64 private key, mode 0600: the key is never put on a command line. */
  privateKeyFile: string
  listenPort: number
  mtu: number
  /** The interface's own address as a CIDR (10.42.1.0/32); absent until the node has a pod subnet. */
  address?: string
}

export interface WireGuardPeerState extends WireGuardPeer {
  /** Seconds since the epoch of the last handshake; 0 for never. */
  latestHandshake: number
  rxBytes: number
  txBytes: number
}

export interface WireGuardState {
  name: string
  publicKey: string
  listenPort: number
  mtu: number
  up: boolean
  /** The interface's addresses as CIDRs. */
  addresses: string[]
  peers: WireGuardPeerState[]
  /** Destinations routed through the interface in the main table. */
  routes: string[]
}

export type WireGuardMode = 'kernel' | 'userspace'

export interface WireGuard {
  /**
   * Makes the interface exist as `settings` says (kernel WireGuard where the kernel has it, else
   * wireguard-go), with its key, port, MTU and address, and up. An interface already there is
   * adopted, its peers kept. Idempotent.
   */
  ensureLink(settings: WireGuardLinkSettings): Promise<{ mode: WireGuardMode; created: boolean }>
  /** The interface as it is now; undefined when there is none. */
  show(name: string): Promise<WireGuardState | undefined>
  /** Adds the peer or replaces its endpoint, allowed IPs and keepalive. */
  setPeer(name: string, peer: WireGuardPeer): Promise<void>
  removePeer(name: string, publicKey: string): Promise<void>
  /** Routes `cidr` through the interface (replacing any route to it). */
  addRoute(name: string, cidr: string): Promise<void>
  removeRoute(name: string, cidr: string): Promise<void>
  /** The MTU of the link that holds `address` (the node's own address); undefined when no link has it. */
  linkMtu(address: string): Promise<number | undefined>
  /** Removes the interface (and with it wireguard-go, its peers and routes); nothing when absent. */
  deleteLink(name: string): Promise<void>
}
