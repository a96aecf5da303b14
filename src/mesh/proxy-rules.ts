// The service proxy's rules, as kube-proxy's iptables mode writes them: from Services and their
// Endpoints to an iptables-restore text for `--noflush` that rewrites only Bramble's chains.
// Pure: the agent (service-proxy.ts) lists the chains present and applies the text.
//
// Every chain is named `BRAMBLE-<tag>-...`, the tag taken from the cluster id, so two clusters
// (two test runs) on one machine never rewrite each other's rules, as Docker labels keep their
// containers apart. Below, `B-` stands for `BRAMBLE-<tag>-`.
// nat:    PREROUTING, OUTPUT → B-SERVICES: one rule per ClusterIP:port → B-SVC-<hash>, which
//         spreads new connections over B-SEP-<hash> chains (one per endpoint, DNAT) with
//         `statistic --mode random --probability 1/n, 1/(n-1), ..., 1`; last, traffic to a local
//         address goes to B-NODEPORTS (node port → masquerade mark → the SVC chain).
//         POSTROUTING → B-POSTROUTING masquerades what carries the mark.
// filter: FORWARD, OUTPUT → B-SERVICES rejects ClusterIP:ports without endpoints at once;
//         FORWARD → B-FORWARD accepts marked (node port) traffic past Docker's DROP policy.
// Declaring a chain in the text flushes it; chains of ours no longer needed are deleted (-X).

import { createHash } from 'node:crypto'
import type { KubeObject } from '../api/types.js'

/** The chain names of one cluster. */
export interface Chains {
  /** Every chain of the cluster starts with it: `BRAMBLE-1A2B3C-`. */
  prefix: string
  services: string
  nodePorts: string
  postrouting: string
  markMasq: string
  forward: string
}

/** `BRAMBLE-<first 6 characters of the cluster id, upper case>-...`: at most 28 characters each. */
export function chainsFor(clusterId: string): Chains {
  const tag = clusterId.replace(/[^a-zA-Z0-9]/g, '').slice(0, 6).toUpperCase().padEnd(6, '0')
  const prefix = `BRAMBLE-${tag}-`
  return { prefix, services: `${prefix}SERVICES`, nodePorts: `${prefix}NODEPORTS`, postrouting: `${prefix}POSTROUTING`, markMasq: `${prefix}MARK-MASQ`, forward: `${prefix}FORWARD` }
}
/** The packet mark bit meaning "masquerade on the way out" (kube-proxy's). */
export const MASQ_MARK = '0x4000'

export type Table = 'nat' | 'filter'

/** A jump from a built-in chain to one of ours; the agent makes sure each exists once, first. */
export interface Hook {
  table: Table
  chain: 'PREROUTING' | 'OUTPUT' | 'POSTROUTING' | 'FORWARD'
  target: string
}

export function hooks(c: Chains): Hook[] {
  return [
    { table: 'nat', chain: 'PREROUTING', target: c.services },
    { table: 'nat', chain: 'OUTPUT', target: c.services },
    { table: 'nat', chain: 'POSTROUTING', target: c.postrouting },
    { table: 'filter', chain: 'FORWARD', target: c.forward },
    { table: 'filter', chain: 'FORWARD', target: c.services },
    { table: 'filter', chain: 'OUTPUT', target: c.services },
  ]
}

export interface ProxyInput {
  chains: Chains
  services: KubeObject[]
  endpoints: KubeObject[]
  /** Chains of ours (chains.prefix) present in each table now: those not written again are deleted. */
  existingChains: Record<Table, string[]>
  /** Pod network of the cluster: connections to a ClusterIP from outside it are masqueraded. */
  clusterCidr?: string
}

/** One Service port and where it leads. */
export interface ServicePortView {
  /** `ns/name:port-name` (or `ns/name` for an unnamed port): what comments and hashes use. */
  id: string
  clusterIP: string
  port: number
  protocol: 'tcp' | 'udp' | 'sctp'
  nodePort?: number
  /** `ip:port`, sorted. */
  endpoints: string[]
}

/** The Service ports that get rules: those of Services with a cluster IP, with their ready endpoints. */
export function servicePorts(services: KubeObject[], endpoints: KubeObject[]): ServicePortView[] {
  const byKey = new Map(endpoints.map((e) => [`${e.metadata.namespace}/${e.metadata.name}`, e]))
  const views: ServicePortView[] = []
  for (const s of services) {
    const clusterIP = s.spec?.clusterIP
    if (typeof clusterIP !== 'string' || clusterIP === '' || clusterIP === 'None' || s.spec?.type === 'ExternalName') continue
    const key = `${s.metadata.namespace}/${s.metadata.name}`
    const ep = byKey.get(key)
    for (const p of s.spec?.ports ?? []) {
      const protocol = String(p.protocol ?? 'TCP').toLowerCase() as ServicePortView['protocol']
      const name = p.name ?? ''
      const targets = new Set<string>()
      for (const subset of ((ep as { subsets?: any[] } | undefined)?.subsets ?? [])) {
        const port = (subset.ports ?? []).find((q: any) => (q.name ?? '') === name && String(q.protocol ?? 'TCP').toLowerCase() === protocol)
        if (!port) continue
        for (const a of subset.addresses ?? []) targets.add(`${a.ip}:${port.port}`)
      }
      views.push({
        id: name ? `${key}:${name}` : key,
        clusterIP,
        port: p.port,
        protocol,
        ...(typeof p.nodePort === 'number' && (s.spec?.type === 'NodePort' || s.spec?.type === 'LoadBalancer') ? { nodePort: p.nodePort } : {}),
        endpoints: [...targets].sort(compareEndpoints),
      })
    }
  }
  return views.sort((a, b) => a.id.localeCompare(b.id) || a.protocol.localeCompare(b.protocol))
}

/** The iptables-restore text (for `--noflush`) that makes our chains match the Services. */
export function proxyRules(input: ProxyInput): string {
  const { prefix, services: SERVICES, nodePorts: NODEPORTS, postrouting: POSTROUTING, markMasq: MARK_MASQ, forward: FORWARD } = input.chains
  const ports = servicePorts(input.services, input.endpoints)
  const nat: string[] = []
  const natChains = [SERVICES, NODEPORTS, POSTROUTING, MARK_MASQ]
  nat.push(`-A ${MARK_MASQ} -j MARK --or-mark ${MASQ_MARK}`)
  nat.push(`-A ${POSTROUTING} -m mark ! --mark ${MASQ_MARK}/${MASQ_MARK} -j RETURN`)
  // The mark is cleared so that a packet encapsulated again (WireGuard) is not masqueraded twice.
  nat.push(`-A ${POSTROUTING} -j MARK --xor-mark ${MASQ_MARK}`)
  nat.push(`-A ${POSTROUTING} -m comment --comment "bramble service traffic requiring SNAT" -j MASQUERADE`)
  const filter: string[] = []
  const filterChains = [SERVICES, FORWARD]
  filter.push(`-A ${FORWARD} -m comment --comment "bramble forwarding rules" -m mark --mark ${MASQ_MARK}/${MASQ_MARK} -j ACCEPT`)
  filter.push(`-A ${FORWARD} -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT`)

  for (const sp of ports) {
    const comment = `-m comment --comment "${sp.id}"`
    const match = `-p ${sp.protocol} -m ${sp.protocol} --dport`
    if (sp.endpoints.length === 0) {
      filter.push(`-A ${SERVICES} -d ${sp.clusterIP}/32 ${match} ${sp.port} -m comment --comment "${sp.id} has no endpoints" -j REJECT`)
      if (sp.nodePort !== undefined) filter.push(`-A ${SERVICES} -m addrtype --dst-type LOCAL ${match} ${sp.nodePort} -m comment --comment "${sp.id} has no endpoints" -j REJECT`)
      continue
    }
    const svc = chainName(prefix, 'SVC', `${sp.id}/${sp.protocol}`)
    natChains.push(svc)
    nat.push(`-A ${SERVICES} -d ${sp.clusterIP}/32 ${match} ${sp.port} ${comment} -j ${svc}`)
    if (input.clusterCidr) nat.push(`-A ${svc} ! -s ${input.clusterCidr} -d ${sp.clusterIP}/32 ${match} ${sp.port} ${comment} -j ${MARK_MASQ}`)
    if (sp.nodePort !== undefined) {
      nat.push(`-A ${NODEPORTS} ${match} ${sp.nodePort} ${comment} -j ${MARK_MASQ}`)
      nat.push(`-A ${NODEPORTS} ${match} ${sp.nodePort} ${comment} -j ${svc}`)
    }
    sp.endpoints.forEach((endpoint, i) => {
      const sep = chainName(prefix, 'SEP', `${sp.id}/${sp.protocol}/${endpoint}`)
      natChains.push(sep)
      const left = sp.endpoints.length - i
      const spread = left > 1 ? ` -m statistic --mode random --probability ${(1 / left).toFixed(10)}` : ''
      nat.push(`-A ${svc} ${comment}${spread} -j ${sep}`)
      const ip = endpoint.slice(0, endpoint.lastIndexOf(':'))
      // A pod reaching itself through its Service must see the reply come from the Service.
      nat.push(`-A ${sep} -s ${ip}/32 ${comment} -j ${MARK_MASQ}`)
      nat.push(`-A ${sep} -p ${sp.protocol} ${comment} -m ${sp.protocol} -j DNAT --to-destination ${endpoint}`)
    })
  }
  // Last: whatever is addressed to this node itself may be a node port.
  nat.push(`-A ${SERVICES} -m addrtype --dst-type LOCAL -j ${NODEPORTS}`)

  return [table('nat', natChains, nat, input.existingChains.nat, prefix), table('filter', filterChains, filter, input.existingChains.filter, prefix)].join('')
}

function table(name: Table, chains: string[], rules: string[], existing: string[], prefix: string): string {
  const stale = existing.filter((c) => c.startsWith(prefix) && !chains.includes(c)).sort()
  const lines = [`*${name}`]
  for (const c of [...chains, ...stale]) lines.push(`:${c} - [0:0]`)
  lines.push(...rules)
  for (const c of stale) lines.push(`-X ${c}`)
  lines.push('COMMIT')
  return lines.join('\n') + '\n'
}

/** `BRAMBLE-<tag>-SVC-` + 10 base32 characters of a hash: within iptables' 28-character limit. */
export function chainName(prefix: string, kind: 'SVC' | 'SEP', id: string): string {
  return `${prefix}${kind}-${base32(createHash('sha256').update(id).digest()).slice(0, 28 - prefix.length - kind.length - 1)}`
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'

function base32(bytes: Buffer): string {
  let bits = 0
  let value = 0
  let out = ''
  for (const b of bytes) {
    value = (value << 8) | b
    bits += 8
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31]
      bits -= 5
    }
    value &= (1 << bits) - 1
  }
  return out
}

function compareEndpoints(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true })
}
