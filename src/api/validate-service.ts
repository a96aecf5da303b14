// Service and Endpoints specs (Kubernetes' ValidateService, ValidateEndpoints).

import { isDNS1123Label, isDNS1123Subdomain, isValidIP, isValidPortNum, validateLabels } from './names.js'
import type { FieldError } from './types.js'
import { child, duplicate, forbidden, index, invalid, invalidEach, isRecord, notSupported, required } from './validate-errors.js'
import { validatePortNumOrName } from './validate-pod.js'

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']
const PROTOCOLS = ['TCP', 'UDP', 'SCTP']
export const NODE_PORT_MIN = 30000
export const NODE_PORT_MAX = 32767

const rec = (v: unknown): Record<string, unknown> | undefined => (isRecord(v) ? v : undefined)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

export function validateServiceSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'ports'))] : []
  const type = typeof s.type === 'string' ? s.type : 'ClusterIP'
  if (!SERVICE_TYPES.includes(type)) errs.push(notSupported(child(path, 'type'), type, SERVICE_TYPES))
  const clusterIP = typeof s.clusterIP === 'string' ? s.clusterIP : ''
  const headless = clusterIP === 'None'
  const ports = list(s.ports)
  if (ports.length === 0 && !headless && type !== 'ExternalName') errs.push(required(child(path, 'ports')))
  const names = new Set<string>()
  const seen = new Set<string>()
  ports.forEach((port, i) => {
    const p = rec(port)
    const pp = index(child(path, 'ports'), i)
    if (!p) return
    errs.push(...portBasics(p, pp, ports.length > 1, names))
    const protoPort = `${String(p.port)}/${typeof p.protocol === 'string' ? p.protocol : 'TCP'}`
    if (seen.has(protoPort)) errs.push(duplicate(pp, { port: p.port, protocol: p.protocol ?? 'TCP' }))
    seen.add(protoPort)
    if (p.targetPort !== undefined && p.targetPort !== null && p.targetPort !== 0) validatePortNumOrName(errs, p.targetPort, child(pp, 'targetPort'))
    if (p.nodePort !== undefined && p.nodePort !== null && p.nodePort !== 0 && typeof p.nodePort === 'number') {
      if (type !== 'NodePort' && type !== 'LoadBalancer') errs.push(forbidden(child(pp, 'nodePort'), `may not be used when \`type\` is '${type}'`))
      else if (p.nodePort < NODE_PORT_MIN || p.nodePort > NODE_PORT_MAX)
        errs.push(invalid(child(pp, 'nodePort'), p.nodePort, `provided port is not in the valid range. The range of valid ports is ${NODE_PORT_MIN}-${NODE_PORT_MAX}`))
    }
  })
  if (headless && type !== 'ClusterIP' && type !== 'ExternalName') errs.push(invalid(child(path, 'clusterIP'), clusterIP, `may not be set to 'None' for ${type} services`))
  if (clusterIP !== '' && !headless) errs.push(...invalidEach(child(path, 'clusterIP'), clusterIP, isValidIP(clusterIP).map(() => "must be empty, 'None', or a valid IP address")))
  const clusterIPs = list(s.clusterIPs)
  clusterIPs.forEach((ip, i) => {
    if (typeof ip === 'string' && ip !== 'None') errs.push(...invalidEach(index(child(path, 'clusterIPs'), i), ip, isValidIP(ip)))
  })
  if (clusterIP !== '' && clusterIPs.length > 0 && clusterIPs[0] !== clusterIP)
    errs.push(invalid(child(path, 'clusterIPs'), clusterIPs, 'must be empty or the first value must match spec.clusterIP'))
  if (type === 'ExternalName') {
    const ext = typeof s.externalName === 'string' ? s.externalName : ''
    if (ext === '') errs.push(required(child(path, 'externalName')))
    else errs.push(...invalidEach(child(path, 'externalName'), ext, isDNS1123Subdomain(ext.replace(/\.$/, ''))))
    if (clusterIP !== '' && !headless) errs.push(forbidden(child(path, 'clusterIP'), 'may not be set for ExternalName services'))
  }
  if (isRecord(s.selector)) errs.push(...validateLabels(s.selector, child(path, 'selector')))
  if (typeof s.sessionAffinity === 'string' && !['None', 'ClientIP'].includes(s.sessionAffinity))
    errs.push(notSupported(child(path, 'sessionAffinity'), s.sessionAffinity, ['None', 'ClientIP']))
  return errs
}

export function validateEndpoints(obj: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  list(obj.subsets).forEach((subset, i) => {
    const s = rec(subset)
    const sp = index('subsets', i)
    if (!s) return
    for (const kind of ['addresses', 'notReadyAddresses'] as const)
      list(s[kind]).forEach((addr, j) => {
        const a = rec(addr)
        const ap = index(child(sp, kind), j)
        if (!a) return
        if (typeof a.ip !== 'string' || a.ip === '') {
          if (a.ip === undefined || a.ip === null || a.ip === '') errs.push(required(child(ap, 'ip')))
        } else errs.push(...invalidEach(child(ap, 'ip'), a.ip, isValidIP(a.ip)))
        if (typeof a.nodeName === 'string' && a.nodeName !== '') errs.push(...invalidEach(child(ap, 'nodeName'), a.nodeName, isDNS1123Subdomain(a.nodeName)))
      })
    const ports = list(s.ports)
    const names = new Set<string>()
    ports.forEach((port, j) => {
      const p = rec(port)
      const pp = index(child(sp, 'ports'), j)
      if (!p) return
      errs.push(...portBasics(p, pp, ports.length > 1, names))
    })
  })
  return errs
}

/** A Service or Endpoints port: its name (required when there are several, unique), number and protocol. */
function portBasics(p: Record<string, unknown>, pp: string, several: boolean, names: Set<string>): FieldError[] {
  const errs: FieldError[] = []
  const name = typeof p.name === 'string' ? p.name : ''
  if (name === '') {
    if (several) errs.push(required(child(pp, 'name')))
  } else {
    errs.push(...invalidEach(child(pp, 'name'), name, isDNS1123Label(name)))
    if (names.has(name)) errs.push(duplicate(child(pp, 'name'), name))
    names.add(name)
  }
  if (p.port === undefined || p.port === null) errs.push(required(child(pp, 'port')))
  else if (typeof p.port === 'number') errs.push(...invalidEach(child(pp, 'port'), p.port, isValidPortNum(p.port)))
  if (typeof p.protocol === 'string' && !PROTOCOLS.includes(p.protocol)) errs.push(notSupported(child(pp, 'protocol'), p.protocol, PROTOCOLS))
  return errs
}
