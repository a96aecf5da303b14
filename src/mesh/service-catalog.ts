// The cluster-wide services message (`bramble/v1/cluster/services`): every Service and Endpoints
// object, trimmed to what the nodes' proxy rules and DNS read, at the hub revision it was built
// at. The hub publishes it retained, so an agent (re)subscribing gets the whole current catalog.

import { isValidIP } from '../api/names.js'
import type { KubeObject } from '../api/types.js'

/** A catalog larger than this is not sent (nor accepted): some thousands of Services. */
export const MAX_SERVICES_PAYLOAD_BYTES = 4 * 1024 * 1024

export interface ServicesMessage {
  /** The hub store revision the catalog reflects; an agent keeps the newest it saw. */
  revision: number
  services: KubeObject[]
  endpoints: KubeObject[]
}

/** The catalog of these Services and Endpoints, keeping only the fields nodes use. */
export function serviceCatalog(services: KubeObject[], endpoints: KubeObject[], revision: number): ServicesMessage {
  const meta = (o: KubeObject) => ({ name: o.metadata.name, namespace: o.metadata.namespace, ...(o.metadata.uid ? { uid: o.metadata.uid } : {}) })
  const byName = (a: KubeObject, b: KubeObject) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`)
  return {
    revision,
    services: [...services].sort(byName).map((s) => ({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(s),
      spec: {
        type: s.spec?.type ?? 'ClusterIP',
        ...(s.spec?.clusterIP ? { clusterIP: s.spec.clusterIP } : {}),
        ports: (s.spec?.ports ?? []).map((p: any) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP', ...(p.nodePort ? { nodePort: p.nodePort } : {}) })),
      },
    })),
    endpoints: [...endpoints].sort(byName).map(
      (e) =>
        ({
          apiVersion: 'v1',
          kind: 'Endpoints',
          metadata: meta(e),
          subsets: ((e as { subsets?: any[] }).subsets ?? []).map((s) => ({
            ...(s.addresses ? { addresses: s.addresses.map((a: any) => ({ ip: a.ip, ...(a.hostname ? { hostname: a.hostname } : {}), ...(a.nodeName ? { nodeName: a.nodeName } : {}) })) } : {}),
            ...(s.notReadyAddresses ? { notReadyAddresses: s.notReadyAddresses.map((a: any) => ({ ip: a.ip })) } : {}),
            ports: (s.ports ?? []).map((p: any) => ({ ...(p.name ? { name: p.name } : {}), port: p.port, protocol: p.protocol ?? 'TCP' })),
          })),
        }) as KubeObject,
    ),
  }
}

/** Reads a services message; the reason names the first bad field. Untrusted input: nothing is assumed. */
export function decodeServicesMessage(payload: Buffer): { ok: true; message: ServicesMessage } | { ok: false; reason: string } {
  if (payload.length > MAX_SERVICES_PAYLOAD_BYTES) return { ok: false, reason: `payload of ${payload.length} bytes exceeds the limit of ${MAX_SERVICES_PAYLOAD_BYTES} bytes` }
  let m: any
  try {
    m = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return { ok: false, reason: `payload is not valid JSON (${(err as Error).message})` }
  }
  const problem = servicesMessageProblem(m)
  return problem ? { ok: false, reason: problem } : { ok: true, message: m as ServicesMessage }
}

function servicesMessageProblem(m: any): string | undefined {
  if (typeof m !== 'object' || m === null) return 'expected an object'
  if (!Number.isSafeInteger(m.revision) || m.revision < 0) return 'revision: expected a non-negative integer'
  if (!Array.isArray(m.services)) return 'services: expected an array'
  if (!Array.isArray(m.endpoints)) return 'endpoints: expected an array'
  const port = (p: any) => Number.isInteger(p) && p > 0 && p < 65536
  // Names end up in iptables comments and DNS names: DNS labels only.
  const dnsLabel = (n: unknown) => typeof n === 'string' && /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(n)
  const named = (o: any) => typeof o?.metadata?.name === 'string' && typeof o.metadata.namespace === 'string' && [o.metadata.name, o.metadata.namespace].every(dnsLabel)
  for (const [i, s] of m.services.entries()) {
    const at = `services[${i}]`
    if (!named(s)) return `${at}.metadata: name and namespace must be DNS labels`
    const ip = s.spec?.clusterIP
    if (ip !== undefined && ip !== 'None' && (typeof ip !== 'string' || isValidIP(ip).length > 0)) return `${at}.spec.clusterIP: expected an IP address or None`
    if (!Array.isArray(s.spec?.ports)) return `${at}.spec.ports: expected an array`
    for (const [j, p] of s.spec.ports.entries()) {
      if (!port(p?.port)) return `${at}.spec.ports[${j}].port: expected a port number`
      if (p.name !== undefined && !/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(p.name)) return `${at}.spec.ports[${j}].name: expected a DNS label`
      if (p.nodePort !== undefined && !port(p.nodePort)) return `${at}.spec.ports[${j}].nodePort: expected a port number`
      if (!['TCP', 'UDP', 'SCTP'].includes(p.protocol)) return `${at}.spec.ports[${j}].protocol: expected TCP, UDP or SCTP`
    }
  }
  for (const [i, e] of m.endpoints.entries()) {
    const at = `endpoints[${i}]`
    if (!named(e)) return `${at}.metadata: name and namespace must be DNS labels`
    if (!Array.isArray(e.subsets)) return `${at}.subsets: expected an array`
    for (const [j, s] of e.subsets.entries()) {
      for (const list of ['addresses', 'notReadyAddresses']) {
        if (s[list] === undefined) continue
        if (!Array.isArray(s[list])) return `${at}.subsets[${j}].${list}: expected an array`
        for (const [k, a] of s[list].entries()) {
          if (typeof a?.ip !== 'string' || isValidIP(a.ip).length > 0) return `${at}.subsets[${j}].${list}[${k}].ip: expected an IP address`
          if (a.hostname !== undefined && !dnsLabel(a.hostname)) return `${at}.subsets[${j}].${list}[${k}].hostname: expected a DNS label`
        }
      }
      if (!Array.isArray(s.ports) || !s.ports.every((p: any) => port(p?.port) && ['TCP', 'UDP', 'SCTP'].includes(p.protocol))) return `${at}.subsets[${j}].ports: expected port numbers and protocols`
    }
  }
  return undefined
}
