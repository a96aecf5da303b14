// DNS messages (RFC 1035) as far as the cluster's DNS needs them: reading a query's header and
// question, writing an answer of A records or an error code, and deciding what a cluster name
// resolves to (`<svc>.<ns>.svc.<domain>`: the ClusterIP, or a headless Service's ready pod IPs;
// `<hostname>.<svc>.<ns>.svc.<domain>`: one of those, a StatefulSet's pod by name).
// Pure: the agent's dns-server.ts does the sockets and the forwarding.

import type { KubeObject } from '../api/types.js'

export const CLUSTER_DOMAIN = 'cluster.local'
/** Seconds resolvers may keep a cluster answer, as CoreDNS's kubernetes plugin gives. */
export const CLUSTER_TTL_SECONDS = 5

export const TYPE_A = 1
export const TYPE_AAAA = 28
export const CLASS_IN = 1
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const

export interface DnsQuestion {
  /** Lower-case, without the trailing dot. */
  name: string
  type: number
  class: number
}

export interface DnsQuery {
  id: number
  /** The flags word as received (opcode and RD are echoed). */
  flags: number
  question: DnsQuestion
  /** Where the question ends: the answer copies the message up to here. */
  questionEnd: number
}

export class DnsFormatError extends Error {
  readonly code = 'BRAMBLE_MESH_DNS_FORMAT'
}

/** Reads the header and the first question of a query; throws DnsFormatError on a malformed one. */
export function decodeQuery(msg: Buffer): DnsQuery {
  const query = readQuestion(msg)
  if (query.flags & 0x8000) throw new DnsFormatError('the message is a response, not a query')
  return query
}

function readQuestion(msg: Buffer): DnsQuery {
  if (msg.length < 12) throw new DnsFormatError(`a DNS message has a 12-byte header; got ${msg.length} bytes`)
  const id = msg.readUInt16BE(0)
  const flags = msg.readUInt16BE(2)
  if (msg.readUInt16BE(4) !== 1) throw new DnsFormatError(`expected one question, got ${msg.readUInt16BE(4)}`)
  const { name, end } = readName(msg, 12)
  if (end + 4 > msg.length) throw new DnsFormatError('the question is cut short')
  return { id, flags, question: { name, type: msg.readUInt16BE(end), class: msg.readUInt16BE(end + 2) }, questionEnd: end + 4 }
}

function readName(msg: Buffer, start: number): { name: string; end: number } {
  const labels: string[] = []
  let offset = start
  let end: number | undefined
  for (let jumps = 0; ; ) {
    if (offset >= msg.length) throw new DnsFormatError('a name runs past the end of the message')
    const len = msg[offset]!
    if (len === 0) {
      end ??= offset + 1
      break
    }
    if ((len & 0xc0) === 0xc0) {
      if (offset + 1 >= msg.length || ++jumps > 16) throw new DnsFormatError('a name has a bad compression pointer')
      end ??= offset + 2
      offset = ((len & 0x3f) << 8) | msg[offset + 1]!
      continue
    }
    if (len > 63 || offset + 1 + len > msg.length) throw new DnsFormatError('a name has a bad label length')
    labels.push(msg.toString('latin1', offset + 1, offset + 1 + len))
    offset += 1 + len
  }
  return { name: labels.join('.').toLowerCase(), end }
}

/**
 * The response to `query`: the header (QR, the query's opcode and RD, RA, AA when `authoritative`,
 * `rcode`), the question copied, then one A record per address (a pointer to the question's name).
 */
export function encodeAnswer(query: DnsQuery, raw: Buffer, rcode: number, addresses: string[], authoritative: boolean, ttlSeconds = CLUSTER_TTL_SECONDS): Buffer {
  const header = Buffer.alloc(12)
  header.writeUInt16BE(query.id, 0)
  const flags = 0x8000 | (query.flags & 0x7800) | (query.flags & 0x0100) | 0x0080 | (authoritative ? 0x0400 : 0) | (rcode & 0xf)
  header.writeUInt16BE(flags, 2)
  header.writeUInt16BE(1, 4)
  header.writeUInt16BE(addresses.length, 6)
  const question = raw.subarray(12, query.questionEnd)
  const answers = addresses.map((ip) => {
    const rr = Buffer.alloc(16)
    rr.writeUInt16BE(0xc00c, 0)
    rr.writeUInt16BE(TYPE_A, 2)
    rr.writeUInt16BE(CLASS_IN, 4)
    rr.writeUInt32BE(ttlSeconds, 6)
    rr.writeUInt16BE(4, 10)
    ip.split('.').forEach((octet, i) => rr.writeUInt8(Number(octet), 12 + i))
    return rr
  })
  return Buffer.concat([header, question, ...answers])
}

/** A query for `name` (to test servers and forwarders with). */
export function encodeQuery(id: number, name: string, type = TYPE_A): Buffer {
  const labels = name.replace(/\.$/, '').split('.').filter((l) => l !== '')
  const parts = [Buffer.from([id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0])]
  for (const l of labels) parts.push(Buffer.from([l.length]), Buffer.from(l, 'latin1'))
  parts.push(Buffer.from([0, type >> 8, type & 0xff, 0, CLASS_IN]))
  return Buffer.concat(parts)
}

/** The rcode and A records of a response (for tests and the forwarder's logs). */
export function decodeAnswer(msg: Buffer): { id: number; rcode: number; authoritative: boolean; addresses: string[] } {
  const query = readQuestion(msg)
  const count = msg.readUInt16BE(6)
  const addresses: string[] = []
  let offset = query.questionEnd
  for (let i = 0; i < count; i++) {
    const { end } = readName(msg, offset)
    const type = msg.readUInt16BE(end)
    const length = msg.readUInt16BE(end + 8)
    if (type === TYPE_A && length === 4) addresses.push([...msg.subarray(end + 10, end + 14)].join('.'))
    offset = end + 10 + length
  }
  return { id: query.id, rcode: query.flags & 0xf, authoritative: (query.flags & 0x0400) !== 0, addresses }
}

/**
 * What the cluster says about `name`: undefined when the name is outside the cluster domain (to
 * be forwarded), else NXDOMAIN or the addresses (none for a Service without any: NODATA).
 */
export function resolveClusterName(name: string, services: KubeObject[], endpoints: KubeObject[], domain = CLUSTER_DOMAIN): { rcode: number; addresses: string[] } | undefined {
  const suffix = `.svc.${domain}`
  if (name !== domain && !name.endsWith(`.${domain}`)) return undefined
  if (!name.endsWith(suffix)) return { rcode: RCODE.NXDOMAIN, addresses: [] }
  const parts = name.slice(0, -suffix.length).split('.')
  if (parts.length !== 2 && parts.length !== 3) return { rcode: RCODE.NXDOMAIN, addresses: [] }
  const [svcName, namespace] = parts.slice(-2) as [string, string]
  const host = parts.length === 3 ? parts[0] : undefined
  const service = services.find((s) => s.metadata.name === svcName && s.metadata.namespace === namespace)
  if (!service) return { rcode: RCODE.NXDOMAIN, addresses: [] }
  const clusterIP = service.spec?.clusterIP
  const headless = !(typeof clusterIP === 'string' && clusterIP !== '' && clusterIP !== 'None')
  if (!headless) return host === undefined ? { rcode: RCODE.NOERROR, addresses: [clusterIP] } : { rcode: RCODE.NXDOMAIN, addresses: [] }
  const ep = endpoints.find((e) => e.metadata.name === svcName && e.metadata.namespace === namespace) as { subsets?: any[] } | undefined
  const ips = new Set<string>()
  // `<hostname>.<svc>`: the ready pod of that hostname whose subdomain is the Service (a StatefulSet's pod).
  for (const subset of ep?.subsets ?? []) for (const a of subset.addresses ?? []) if (host === undefined || a.hostname === host) ips.add(a.ip)
  if (host !== undefined && ips.size === 0) return { rcode: RCODE.NXDOMAIN, addresses: [] }
  return { rcode: RCODE.NOERROR, addresses: [...ips].sort((a, b) => a.localeCompare(b, 'en', { numeric: true })) }
}
