// ConfigMap, Secret, Node, Namespace and Event rules (the data kinds and the cluster-scoped ones).

import { isConfigMapKey, isDNS1123Label, isQualifiedName, isValidLabelValue } from './names.js'
import type { FieldError } from './types.js'
import { child, duplicate, index, invalid, invalidEach, isRecord, key, notSupported, required, tooLong } from './validate-errors.js'

/** Kubernetes' MaxSecretSize and the ConfigMap limit: 1 MiB of data. */
export const MAX_DATA_SIZE = 1024 * 1024

const rec = (v: unknown): Record<string, unknown> | undefined => (isRecord(v) ? v : undefined)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

const BASE64_RE = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/

/** Decoded size of a base64 string, or undefined when it is not base64. */
function base64Size(value: string): number | undefined {
  if (!BASE64_RE.test(value)) return undefined
  return (value.length / 4) * 3 - (value.endsWith('==') ? 2 : value.endsWith('=') ? 1 : 0)
}

function checkKeys(errs: FieldError[], map: Record<string, unknown>, path: string): void {
  for (const k of Object.keys(map)) errs.push(...invalidEach(key(path, k), k, isConfigMapKey(k)))
}

export function validateConfigMap(obj: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  const data = rec(obj.data) ?? {}
  const binary = rec(obj.binaryData) ?? {}
  checkKeys(errs, data, 'data')
  checkKeys(errs, binary, 'binaryData')
  let size = 0
  for (const v of Object.values(data)) if (typeof v === 'string') size += Buffer.byteLength(v)
  for (const [k, v] of Object.entries(binary)) {
    if (Object.prototype.hasOwnProperty.call(data, k)) errs.push(duplicate(key('binaryData', k), k))
    if (typeof v !== 'string') continue
    const n = base64Size(v)
    if (n === undefined) errs.push(invalid(key('binaryData', k), '<binary>', 'illegal base64 data'))
    else size += n
  }
  if (size > MAX_DATA_SIZE) errs.push(tooLong('data', MAX_DATA_SIZE))
  return errs
}

/** Keys a Secret of a given type must hold in data (or stringData). */
const SECRET_TYPE_KEYS: Record<string, string[]> = {
  'kubernetes.io/tls': ['tls.crt', 'tls.key'],
  'kubernetes.io/dockerconfigjson': ['.dockerconfigjson'],
  'kubernetes.io/dockercfg': ['.dockercfg'],
  'kubernetes.io/ssh-auth': ['ssh-privatekey'],
}

export function validateSecret(obj: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  const data = rec(obj.data) ?? {}
  const stringData = rec(obj.stringData) ?? {}
  checkKeys(errs, data, 'data')
  checkKeys(errs, stringData, 'stringData')
  let size = 0
  for (const [k, v] of Object.entries(data)) {
    if (typeof v !== 'string') continue
    const n = base64Size(v)
    if (n === undefined) errs.push(invalid(key('data', k), '<secret contents redacted>', 'illegal base64 data'))
    else size += n
  }
  for (const v of Object.values(stringData)) if (typeof v === 'string') size += Buffer.byteLength(v)
  if (size > MAX_DATA_SIZE) errs.push(tooLong('data', MAX_DATA_SIZE))
  const type = typeof obj.type === 'string' ? obj.type : 'Opaque'
  for (const k of SECRET_TYPE_KEYS[type] ?? [])
    if (!(k in data) && !(k in stringData)) errs.push(required(key('data', k)))
  if (type === 'kubernetes.io/basic-auth' && !('username' in data || 'password' in data || 'username' in stringData || 'password' in stringData))
    errs.push(required(key('data', 'username'), 'one of username or password is required'))
  return errs
}

export function validateNamespace(obj: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  list(rec(obj.spec)?.finalizers).forEach((f, i) => {
    if (typeof f === 'string' && f !== 'kubernetes') errs.push(...invalidEach(index('spec.finalizers', i), f, isQualifiedName(f)))
  })
  const phase = rec(obj.status)?.phase
  if (typeof phase === 'string' && !['Active', 'Terminating'].includes(phase)) errs.push(notSupported('status.phase', phase, ['Active', 'Terminating']))
  return errs
}

const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute']

export function validateNode(obj: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  const spec = rec(obj.spec)
  if (!spec) return errs
  const seen = new Set<string>()
  list(spec.taints).forEach((t, i) => {
    const taint = rec(t)
    const tp = index('spec.taints', i)
    if (!taint) return
    if (typeof taint.key !== 'string' || taint.key === '') errs.push(required(child(tp, 'key')))
    else errs.push(...invalidEach(child(tp, 'key'), taint.key, isQualifiedName(taint.key)))
    if (typeof taint.value === 'string') errs.push(...invalidEach(child(tp, 'value'), taint.value, isValidLabelValue(taint.value)))
    if (taint.effect === undefined || taint.effect === null || taint.effect === '') errs.push(required(child(tp, 'effect')))
    else if (typeof taint.effect === 'string' && !TAINT_EFFECTS.includes(taint.effect)) errs.push(notSupported(child(tp, 'effect'), taint.effect, TAINT_EFFECTS))
    const id = `${String(taint.key)}:${String(taint.effect)}`
    if (seen.has(id)) errs.push(duplicate(tp, id))
    seen.add(id)
  })
  const cidrs = [...(typeof spec.podCIDR === 'string' && spec.podCIDR ? [['spec.podCIDR', spec.podCIDR]] : []), ...list(spec.podCIDRs).map((c, i) => [index('spec.podCIDRs', i), c])]
  for (const [p, c] of cidrs) if (typeof c === 'string' && !isCIDR(c)) errs.push(invalid(p as string, c, 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'))
  return errs
}

function isCIDR(value: string): boolean {
  const m = /^([^/]+)\/([0-9]{1,3})$/.exec(value)
  if (!m) return false
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(m[1])
  if (v4) return v4.slice(1).every((o) => Number(o) <= 255) && Number(m[2]) <= 32
  return m[1].includes(':') && Number(m[2]) <= 128
}

export function validateEvent(obj: Record<string, unknown>, namespace: string | undefined): FieldError[] {
  const errs: FieldError[] = []
  const io = rec(obj.involvedObject)
  if (!io) {
    if (obj.involvedObject === undefined || obj.involvedObject === null) errs.push(required('involvedObject'))
  } else if (typeof io.namespace === 'string' && io.namespace !== '' && namespace && io.namespace !== namespace) {
    errs.push(invalid('involvedObject.namespace', io.namespace, 'does not match event.namespace'))
  }
  if (typeof obj.type === 'string' && obj.type !== '' && !['Normal', 'Warning'].includes(obj.type)) errs.push(notSupported('type', obj.type, ['Normal', 'Warning']))
  if (typeof obj.reportingInstance === 'string' && obj.reportingInstance.length > 128) errs.push(tooLong('reportingInstance', 128, 'characters'))
  if (typeof obj.action === 'string' && obj.action.length > 128) errs.push(tooLong('action', 128, 'characters'))
  if (typeof obj.reason === 'string' && obj.reason.length > 128) errs.push(tooLong('reason', 128, 'characters'))
  const ns = typeof io?.namespace === 'string' ? io.namespace : ''
  if (ns) errs.push(...invalidEach('involvedObject.namespace', ns, isDNS1123Label(ns)))
  return errs
}
