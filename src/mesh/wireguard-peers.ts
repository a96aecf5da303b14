// The mesh as data: what the hub publishes on the cluster-wide mesh topic (each node's public key,
// endpoint and pod subnets), the peers a node configures from it, and the steps from what its
// WireGuard interface has to what it should have. Pure: plan here, execute in the agent.

import { isIP } from 'node:net'
import { ipToNumber, numberToIp } from '../lib/ipv4-cidr.js'
import { isWireGuardKey } from './wireguard-keys.js'

/** WireGuard's overhead on a packet carried over IPv6 (the worst case): 40 IP + 8 UDP + 32 WireGuard. */
export const WIREGUARD_OVERHEAD_BYTES = 80
/** Smallest MTU an IPv4 host must accept; a tunnel below it cannot carry pod traffic. */
export const MIN_TUNNEL_MTU = 576

/** One node as the mesh topic carries it. Never a private key: every node reads this. */
export interface MeshNode {
  node: string
  publicKey: string
  /** `host:port` (IPv6 hosts in brackets); absent when the node gave none (it dials out, others wait). */
  endpoint?: string
  /** The node's pod subnets (Node spec.podCIDRs); empty until the hub has leased one. */
  podCIDRs: string[]
}

/** The retained message on `bramble/v1/cluster/mesh`: the whole mesh, every time. */
export interface MeshMessage {
  nodes: MeshNode[]
}

/** A peer as `wg set ... peer` takes it. */
export interface WireGuardPeer {
  publicKey: string
  endpoint?: string
  allowedIPs: string[]
  /** Seconds; 0 or absent is off. */
  persistentKeepalive?: number
}

export interface PeerSet {
  peers: WireGuardPeer[]
  /** Every peer's pod subnets: each is routed through the interface. */
  routes: string[]
  /** Entries left out, with the reason (a key or subnet another node already holds). */
  skipped: Array<{ node: string; reason: string }>
}

export type PeerStep = { op: 'set-peer'; peer: WireGuardPeer; reason: 'new' | 'changed' } | { op: 'remove-peer'; publicKey: string }
export type RouteStep = { op: 'add-route'; cidr: string } | { op: 'remove-route'; cidr: string }

/**
 * The peers `self` configures: every other node in the mesh, sorted by name. A public key or pod
 * subnet seen twice goes to the first node by name (WireGuard allows one peer per key and one peer
 * per allowed IP; a copied data dir would otherwise steal a node's traffic).
 */
export function peerSet(mesh: MeshMessage, self: string, options: { keepaliveSeconds?: number } = {}): PeerSet {
  const keepalive = options.keepaliveSeconds ?? 0
  const peers: WireGuardPeer[] = []
  const skipped: PeerSet['skipped'] = []
  const keys = new Map<string, string>()
  const subnets = new Map<string, string>()
  const selfNode = mesh.nodes.find((n) => n.node === self)
  if (selfNode) {
    keys.set(selfNode.publicKey, self)
    for (const cidr of selfNode.podCIDRs) subnets.set(canonicalCidr(cidr), self)
  }
  for (const n of [...mesh.nodes].sort((a, b) => a.node.localeCompare(b.node))) {
    if (n.node === self) continue
    const holder = keys.get(n.publicKey)
    if (holder !== undefined) {
      skipped.push({ node: n.node, reason: `public key already used by node ${holder}` })
      continue
    }
    keys.set(n.publicKey, n.node)
    const allowedIPs: string[] = []
    for (const cidr of n.podCIDRs.map(canonicalCidr)) {
      const taken = subnets.get(cidr)
      if (taken !== undefined) skipped.push({ node: n.node, reason: `pod subnet ${cidr} already belongs to node ${taken}` })
      else {
        subnets.set(cidr, n.node)
        allowedIPs.push(cidr)
      }
    }
    peers.push({ publicKey: n.publicKey, ...(n.endpoint ? { endpoint: n.endpoint } : {}), allowedIPs, ...(keepalive > 0 ? { persistentKeepalive: keepalive } : {}) })
  }
  return { peers, routes: peers.flatMap((p) => p.allowedIPs).sort(), skipped }
}

/**
 * Steps from the interface's peers (`actual`) to `desired`. An endpoint is set when the desired one
 * is new or changed since `lastApplied` (what this agent set before): a peer behind NAT roams to the
 * address its packets really come from, and resetting it on every pass would cut it off.
 */
export function planPeers(desired: WireGuardPeer[], actual: WireGuardPeer[], lastApplied?: WireGuardPeer[]): PeerStep[] {
  const now = new Map(actual.map((p) => [p.publicKey, p]))
  const before = new Map((lastApplied ?? []).map((p) => [p.publicKey, p]))
  const steps: PeerStep[] = []
  const wanted = new Set(desired.map((p) => p.publicKey))
  for (const p of actual) if (!wanted.has(p.publicKey)) steps.push({ op: 'remove-peer', publicKey: p.publicKey })
  for (const peer of desired) {
    const have = now.get(peer.publicKey)
    if (!have) {
      steps.push({ op: 'set-peer', peer, reason: 'new' })
      continue
    }
    const last = before.get(peer.publicKey)
    const endpointChanged = peer.endpoint !== undefined && peer.endpoint !== have.endpoint && (lastApplied === undefined || last?.endpoint !== peer.endpoint)
    const changed =
      endpointChanged || !sameSet(peer.allowedIPs, have.allowedIPs) || (peer.persistentKeepalive ?? 0) !== (have.persistentKeepalive ?? 0)
    if (changed) steps.push({ op: 'set-peer', peer, reason: 'changed' })
  }
  return steps
}

/** Routes through the interface: add the missing, remove the ones no peer owns any more. */
export function planRoutes(desired: string[], actual: string[]): RouteStep[] {
  const want = new Set(desired.map(canonicalCidr))
  const have = new Set(actual.map(canonicalCidr))
  return [
    ...[...have].filter((c) => !want.has(c)).map((cidr): RouteStep => ({ op: 'remove-route', cidr })),
    ...[...want].filter((c) => !have.has(c)).map((cidr): RouteStep => ({ op: 'add-route', cidr })),
  ]
}

/** The tunnel's MTU for a link MTU: what is left after WireGuard's overhead. */
export function tunnelMtu(linkMtu: number): number {
  if (!Number.isInteger(linkMtu) || linkMtu <= 0) throw new RangeError(`linkMtu: must be a positive whole number of bytes, got ${linkMtu}`)
  const mtu = linkMtu - WIREGUARD_OVERHEAD_BYTES
  if (mtu < MIN_TUNNEL_MTU) throw new RangeError(`linkMtu: ${linkMtu} leaves ${mtu} bytes after WireGuard's ${WIREGUARD_OVERHEAD_BYTES}, below the ${MIN_TUNNEL_MTU} a tunnel needs`)
  return mtu
}

/**
 * The interface's own address: the first address of the node's pod subnet as a /32 (as flannel
 * does), so traffic the host itself sends to other nodes' pods has a source inside its own subnet,
 * which the peers accept.
 */
export function overlayAddress(podCIDR: string): string {
  const { address, prefix } = parseCidr(podCIDR, 'podCIDR')
  if (isIP(address) !== 4) throw new RangeError(`podCIDR: "${podCIDR}" is not IPv4; the overlay address is taken from an IPv4 pod subnet`)
  return `${networkAddressV4(address, prefix)}/32`
}

/** `host:port` for an endpoint, with IPv6 hosts in brackets. */
export function formatEndpoint(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}

/** Problems with one mesh entry, each naming its field; empty when it is valid. */
function meshNodeProblems(n: unknown, path: string): string[] {
  if (typeof n !== 'object' || n === null || Array.isArray(n)) return [`${path}: expected an object`]
  const o = n as Record<string, unknown>
  const problems: string[] = []
  if (typeof o.node !== 'string' || !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(o.node)) problems.push(`${path}.node: expected a DNS-1123 label`)
  if (!isWireGuardKey(o.publicKey)) problems.push(`${path}.publicKey: expected a WireGuard public key (32 bytes, base64)`)
  if (o.endpoint !== undefined && !isEndpoint(o.endpoint)) problems.push(`${path}.endpoint: expected host:port with an IP address and a port 1-65535`)
  if (!Array.isArray(o.podCIDRs)) problems.push(`${path}.podCIDRs: expected an array of CIDRs`)
  else o.podCIDRs.forEach((c, i) => cidrProblem(c) && problems.push(`${path}.podCIDRs[${i}]: ${cidrProblem(c)}`))
  return problems
}

/** Decodes the mesh topic's payload; entries with problems are dropped and reported, not fatal. */
export function decodeMeshMessage(payload: Buffer | string): { ok: true; mesh: MeshMessage; problems: string[] } | { ok: false; reason: string } {
  if (payload.length > MAX_MESH_PAYLOAD_BYTES) return { ok: false, reason: `payload of ${payload.length} bytes exceeds ${MAX_MESH_PAYLOAD_BYTES}` }
  let value: unknown
  try {
    value = JSON.parse(payload.toString())
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  if (typeof value !== 'object' || value === null || !Array.isArray((value as MeshMessage).nodes)) return { ok: false, reason: 'nodes: expected an array' }
  const problems: string[] = []
  const nodes: MeshNode[] = []
  ;(value as { nodes: unknown[] }).nodes.forEach((n, i) => {
    const p = meshNodeProblems(n, `nodes[${i}]`)
    if (p.length > 0) return void problems.push(...p)
    const o = n as MeshNode
    nodes.push({ node: o.node, publicKey: o.publicKey, ...(o.endpoint ? { endpoint: o.endpoint } : {}), podCIDRs: [...o.podCIDRs] })
  })
  return { ok: true, mesh: { nodes }, problems }
}

/** A mesh of a thousand nodes fits with room to spare. */
export const MAX_MESH_PAYLOAD_BYTES = 512 * 1024

export function isEndpoint(value: unknown): value is string {
  if (typeof value !== 'string') return false
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+)):(\d{1,5})$/.exec(value)
  if (!m) return false
  const host = m[1] ?? m[2]!
  const port = Number(m[3])
  return isIP(host) === (m[1] ? 6 : 4) && port >= 1 && port <= 65535
}

function cidrProblem(value: unknown): string | undefined {
  try {
    parseCidr(value, 'cidr')
    return undefined
  } catch (err) {
    return (err as Error).message.replace(/^cidr: /, '')
  }
}

function parseCidr(value: unknown, field: string): { address: string; prefix: number } {
  const m = typeof value === 'string' ? /^([^/]+)\/(\d{1,3})$/.exec(value) : null
  const family = m ? isIP(m[1]!) : 0
  if (!m || family === 0 || Number(m[2]) > (family === 4 ? 32 : 128)) throw new RangeError(`${field}: expected a CIDR such as 10.42.1.0/24, got ${JSON.stringify(value)}`)
  return { address: m[1]!, prefix: Number(m[2]) }
}

/** The CIDR with its host bits cleared (10.42.1.7/24 → 10.42.1.0/24); IPv6 lower-cased as given. */
export function canonicalCidr(cidr: string): string {
  const { address, prefix } = parseCidr(cidr, 'cidr')
  return isIP(address) === 4 ? `${networkAddressV4(address, prefix)}/${prefix}` : `${address.toLowerCase()}/${prefix}`
}

function networkAddressV4(address: string, prefix: number): string {
  const n = ipToNumber(address)!
  return numberToIp(n - (n % 2 ** (32 - prefix)))
}

function sameSet(a: string[], b: string[]): boolean {
  const x = new Set(a.map(canonicalCidr))
  const y = new Set(b.map(canonicalCidr))
  return x.size === y.size && [...x].every((v) => y.has(v))
}
