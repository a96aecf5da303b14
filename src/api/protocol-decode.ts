// Validating decoders for protocol v1 messages. Whatever arrives over MQTT is untrusted: a
// decoder refuses oversized payloads before parsing, then garbage, truncated JSON, missing fields
// and wrong types, with a reason a log reader can act on. Unknown extra fields are tolerated so a
// newer peer can add fields without breaking an older one.

import {
  DOWN_NAMES,
  MAX_PAYLOAD_BYTES,
  RPC_METHODS,
  UP_NAMES,
  isValidNodeName,
  parseTopic,
  type DownMessages,
  type DownName,
  type UpMessages,
  type UpName,
} from './protocol.js'
import { isSealingKey } from './sealed-secret.js'

export type Decoded<T> = { ok: true; message: T } | { ok: false; reason: string }

class Invalid extends Error {}

type Check = (value: unknown, path: string) => void

function fail(path: string, what: string): never {
  throw new Invalid(`${path}: ${what}`)
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const str: Check = (v, p) => {
  if (typeof v !== 'string') fail(p, `expected a string, got ${describe(v)}`)
}
const nonEmptyStr: Check = (v, p) => {
  str(v, p)
  if ((v as string).length === 0) fail(p, 'must not be empty')
}
const bool: Check = (v, p) => {
  if (typeof v !== 'boolean') fail(p, `expected a boolean, got ${describe(v)}`)
}
const num: Check = (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v)) fail(p, `expected a finite number, got ${describe(v)}`)
}
const count: Check = (v, p) => {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) fail(p, `expected a non-negative integer, got ${describe(v)}`)
}
const record: Check = (v, p) => {
  if (!isRecord(v)) fail(p, `expected an object, got ${describe(v)}`)
}
const anything: Check = () => {}
const stringMap: Check = (v, p) => {
  record(v, p)
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) str(x, `${p}.${k}`)
}
const sealingKey: Check = (v, p) => {
  if (!isSealingKey(v)) fail(p, `expected an X25519 public key (32 bytes in base64), got ${describe(v)}`)
}

function arrayOf(item: Check): Check {
  return (v, p) => {
    if (!Array.isArray(v)) fail(p, `expected an array, got ${describe(v)}`)
    v.forEach((x, i) => item(x, `${p}[${i}]`))
  }
}

function oneOf(values: readonly string[]): Check {
  return (v, p) => {
    if (typeof v !== 'string' || !values.includes(v)) fail(p, `expected one of ${values.join(', ')}, got ${describe(v)}`)
  }
}

type Shape = Record<string, { check: Check; optional?: boolean }>

function object(shape: Shape): Check {
  return (v, p) => {
    record(v, p)
    const o = v as Record<string, unknown>
    for (const [key, { check, optional }] of Object.entries(shape)) {
      const path = p ? `${p}.${key}` : key
      if (o[key] === undefined) {
        if (!optional) fail(path, 'required field is missing')
        continue
      }
      check(o[key], path)
    }
  }
}

const req = (check: Check) => ({ check })
const opt = (check: Check) => ({ check, optional: true })

const DESIRED_KINDS = ['Pod', 'ConfigMap', 'Secret', 'Node', 'PersistentVolume'] as const

/** The node's own Node and its PersistentVolumes are cluster-scoped: their namespace is '' (or absent); every other kind needs one. */
const namespaceOf = (kind: unknown) => (kind === 'Node' || kind === 'PersistentVolume' ? opt(str) : req(nonEmptyStr))

const desiredObject: Check = (v, p) => {
  object({
    apiVersion: req(nonEmptyStr),
    kind: req(oneOf(DESIRED_KINDS)),
  })(v, p)
  const kind = (v as Record<string, unknown>).kind
  object({ metadata: req(object({ name: req(nonEmptyStr), namespace: namespaceOf(kind), uid: opt(str) })) })(v, p)
}

const objectRef: Check = (v, p) => {
  object({ kind: req(oneOf(DESIRED_KINDS)), name: req(nonEmptyStr), uid: opt(str), gracePeriodSeconds: opt(count) })(v, p)
  object({ namespace: namespaceOf((v as Record<string, unknown>).kind) })(v, p)
}

const nodeTopic: Check = (v, p) => {
  str(v, p)
  if (!parseTopic(v as string)) fail(p, `"${String(v).slice(0, 120)}" is not a protocol v1 node topic`)
}

const nonNegative: Check = (v, p) => {
  num(v, p)
  if ((v as number) < 0) fail(p, `must not be negative, got ${v as number}`)
}

const podUsage: Check = object({
  namespace: req(nonEmptyStr),
  name: req(nonEmptyStr),
  containers: req(arrayOf(object({ name: req(nonEmptyStr), cpuCores: req(nonNegative), memoryBytes: req(nonNegative) }))),
})

const UP_SHAPES: Record<UpName, Check> = {
  sync: object({ revision: req(count) }),
  ack: object({ revision: req(count) }),
  heartbeat: object({ seq: req(count), uptimeMs: req(count), cpu: req(num), memory: req(num), temperature: opt(num), pods: opt(arrayOf(podUsage)), at: opt(count) }),
  'node-status': object({ status: req(record), labels: opt(stringMap), wireguard: opt(object({ publicKey: req(nonEmptyStr), endpoint: opt(str) })), secretsPublicKey: opt(sealingKey) }),
  'pod-status': object({ namespace: req(nonEmptyStr), name: req(nonEmptyStr), uid: req(nonEmptyStr), status: req(record), at: opt(count) }),
  events: object({ events: req(arrayOf(record)), at: opt(count) }),
  'rpc-reply': object({ id: req(nonEmptyStr), ok: req(bool), result: opt(anything), error: opt(str), chunk: opt(str), done: opt(bool), seq: opt(count), channel: opt(count), ack: opt(count) }),
  presence: object({ online: req(bool), at: req(count), agentStopped: opt(bool) }),
}

const DOWN_SHAPES: Record<DownName, Check> = {
  desired: (v, p) => {
    object({
      revision: req(count),
      since: req(count),
      full: req(bool),
      upserts: req(arrayOf(desiredObject)),
      deletes: req(arrayOf(objectRef)),
    })(v, p)
    const m = v as { revision: number; since: number }
    if (m.since > m.revision) fail('since', `must not be after revision (${m.since} > ${m.revision})`)
  },
  rpc: object({ id: req(nonEmptyStr), replyTopic: req(nodeTopic), method: req(oneOf(RPC_METHODS)), params: req(record) }),
}

function describe(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  if (typeof v === 'string') return `a string "${v.length > 40 ? v.slice(0, 40) + '…' : v}"`
  return typeof v === 'object' ? 'an object' : `${typeof v} ${String(v)}`
}

function decodeWith<T>(kind: string, limit: number, check: Check, payload: Buffer): Decoded<T> {
  if (!Buffer.isBuffer(payload)) return { ok: false, reason: `${kind}: payload is not a byte buffer` }
  if (payload.length > limit) return { ok: false, reason: `${kind}: payload of ${payload.length} bytes exceeds the limit of ${limit} bytes` }
  let value: unknown
  try {
    value = JSON.parse(payload.toString('utf8'))
  } catch (err) {
    return { ok: false, reason: `${kind}: payload is not valid JSON (${(err as Error).message})` }
  }
  try {
    check(value, '')
  } catch (err) {
    if (err instanceof Invalid) return { ok: false, reason: `${kind}: ${err.message.replace(/^: /, '')}` }
    throw err
  }
  return { ok: true, message: value as T }
}

/** Decodes what a node sent on `up/<name>`. */
export function decodeUp<K extends UpName>(name: K, payload: Buffer): Decoded<UpMessages[K]>
export function decodeUp(name: string, payload: Buffer): Decoded<UpMessages[UpName]>
export function decodeUp(name: string, payload: Buffer): Decoded<UpMessages[UpName]> {
  if (!(UP_NAMES as readonly string[]).includes(name)) return { ok: false, reason: `unknown upward message "${name}"` }
  const n = name as UpName
  return decodeWith(`up/${n}`, MAX_PAYLOAD_BYTES[n], UP_SHAPES[n], payload)
}

/** Decodes what the hub sent on `down/<name>`. */
export function decodeDown<K extends DownName>(name: K, payload: Buffer): Decoded<DownMessages[K]>
export function decodeDown(name: string, payload: Buffer): Decoded<DownMessages[DownName]>
export function decodeDown(name: string, payload: Buffer): Decoded<DownMessages[DownName]> {
  if (!(DOWN_NAMES as readonly string[]).includes(name)) return { ok: false, reason: `unknown downward message "${name}"` }
  const n = name as DownName
  return decodeWith(`down/${n}`, MAX_PAYLOAD_BYTES[n], DOWN_SHAPES[n], payload)
}

/**
 * An rpc reply topic must be the node's own `up/rpc-reply`: a request cannot make a node publish
 * anywhere else (the broker would refuse it anyway).
 */
export function isReplyTopicFor(node: string, topic: string): boolean {
  const parsed = parseTopic(topic)
  return isValidNodeName(node) && parsed?.node === node && parsed.direction === 'up' && parsed.name === 'rpc-reply'
}
