// Where the mesh lives on Node objects, and the mesh message built from them. A node's agent
// reports its public key and endpoint; the hub keeps them as Node annotations (as flannel does)
// next to the pod subnet it leased (spec.podCIDRs), and publishes the mesh from those. Pure.

import type { KubeObject } from '../api/types.js'
import { isWireGuardKey } from './wireguard-keys.js'
import { isEndpoint, type MeshMessage, type MeshNode } from './wireguard-peers.js'

export const ANNOTATION_WIREGUARD_PUBLIC_KEY = 'bramble.io/wireguard-public-key'
export const ANNOTATION_WIREGUARD_ENDPOINT = 'bramble.io/wireguard-endpoint'

/** What an agent reports with its node status (public facts only). */
export interface WireGuardReport {
  publicKey: string
  endpoint?: string
}

/** Problems with an agent's report, each naming its field; empty when valid. */
export function wireGuardReportProblems(report: unknown): string[] {
  if (typeof report !== 'object' || report === null || Array.isArray(report)) return ['wireguard: expected an object']
  const r = report as Record<string, unknown>
  const problems: string[] = []
  if (!isWireGuardKey(r.publicKey)) problems.push('wireguard.publicKey: expected a WireGuard public key (32 bytes, base64)')
  if (r.endpoint !== undefined && !isEndpoint(r.endpoint)) problems.push('wireguard.endpoint: expected host:port with an IP address and a port 1-65535')
  return problems
}

/** The annotations a report sets; the endpoint annotation goes when the report has none. */
export function wireGuardAnnotations(current: Record<string, string> | undefined, report: WireGuardReport): Record<string, string> {
  const next: Record<string, string> = { ...current, [ANNOTATION_WIREGUARD_PUBLIC_KEY]: report.publicKey }
  if (report.endpoint) next[ANNOTATION_WIREGUARD_ENDPOINT] = report.endpoint
  else delete next[ANNOTATION_WIREGUARD_ENDPOINT]
  return next
}

/** The node's pod subnets: spec.podCIDRs, else spec.podCIDR, else none yet. */
export function podCIDRsOf(node: KubeObject): string[] {
  const spec = (node.spec ?? {}) as { podCIDRs?: unknown; podCIDR?: unknown }
  if (Array.isArray(spec.podCIDRs) && spec.podCIDRs.length > 0) return spec.podCIDRs.filter((c): c is string => typeof c === 'string')
  return typeof spec.podCIDR === 'string' && spec.podCIDR ? [spec.podCIDR] : []
}

/** The mesh entry of a Node; undefined while its agent has reported no public key. */
export function meshNodeOf(node: KubeObject): MeshNode | undefined {
  const annotations = node.metadata.annotations ?? {}
  const publicKey = annotations[ANNOTATION_WIREGUARD_PUBLIC_KEY]
  if (!isWireGuardKey(publicKey)) return undefined
  const endpoint = annotations[ANNOTATION_WIREGUARD_ENDPOINT]
  return { node: node.metadata.name!, publicKey, ...(isEndpoint(endpoint) ? { endpoint } : {}), podCIDRs: podCIDRsOf(node) }
}

/** The whole mesh, sorted by node name, so equal meshes encode to equal payloads. */
export function meshFromNodes(nodes: KubeObject[]): MeshMessage {
  return {
    nodes: nodes
      .filter((n) => !n.metadata.deletionTimestamp)
      .map(meshNodeOf)
      .filter((n): n is MeshNode => n !== undefined)
      .sort((a, b) => a.node.localeCompare(b.node)),
  }
}
