// The agent's side of joining (src/api/join.ts): fetch the hub's CA without credentials, check it
// against the hash the token carries, then send the token over HTTPS pinned to that CA only. The
// answer (the node's own MQTT credentials) is kept in DATA_DIR/agent/identity.json, owner-only, so
// later starts need no token.

import { createHash, X509Certificate } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { join } from 'node:path'
import { CA_PATH, JOIN_PATH, parseJoinTokenParts, type JoinRequest, type JoinResponse } from '../api/join.js'
import { isValidNodeName } from '../api/protocol.js'
import { writeFileAtomic } from '../lib/atomic-file.js'
import type { Logger } from '../lib/logger.js'
import { clockSkewMs, tlsFailureSentence } from '../lib/tls-failure.js'
import { AgentIdentityCorruptError, JoinCaMismatchError, JoinFailedError, JoinRefusedError, type JoinRefusal } from './errors.js'

export const DEFAULT_HUB_PORT = 6443
const REQUEST_TIMEOUT_MS = 15_000
const MAX_ANSWER_BYTES = 1024 * 1024

export interface JoinFacts {
  arch?: string
  os?: string
  hostname?: string
}

export interface JoinOptions {
  /** `host[:port]`, port 6443 by default; `[v6]:port` for IPv6. */
  hub: string
  token: string
  nodeName: string
  facts?: JoinFacts
  /** This node's wall clock, for naming a clock skew; Date.now by default. */
  now?: () => number
  /** The node's public key for Secrets in transit (secrets-key.ts). */
  secretsPublicKey?: string
  /** This agent's Bramble version: the hub refuses versions it does not serve. */
  version?: string
  logger: Logger
}

/** The hub's base URL for `host[:port]`. */
export function hubUrl(hub: string): URL {
  const url = new URL(/^https?:\/\//.test(hub) ? hub : `https://${hub}`)
  if (url.protocol !== 'https:') throw new JoinFailedError(hub, 'the hub is only reached over HTTPS')
  if (!url.port) url.port = String(DEFAULT_HUB_PORT)
  return url
}

/** The addresses of `--hub` (one, or several comma-separated hubs sharing a store), in the order given. */
export function hubAddresses(hubs: string): string[] {
  return hubs
    .split(',')
    .map((hub) => hub.trim())
    .filter((hub) => hub !== '')
}

/** SHA-256 of a PEM certificate's DER, hex: what a join token carries. */
export function caHashOfPem(pem: string): string {
  return createHash('sha256').update(new X509Certificate(pem).raw).digest('hex')
}

export async function joinHub(options: JoinOptions): Promise<JoinResponse> {
  const { hub, token, nodeName } = options
  const log = options.logger.child({ component: 'join' })
  const parts = parseJoinTokenParts(token)
  if (!parts) {
    throw new JoinRefusedError(hub, 'malformed-token', 'the join token is not one `bramble token create` makes (K10<hash>::<id>.<secret>); copy it whole')
  }
  if (!isValidNodeName(nodeName)) throw invalidNodeName(hub, nodeName)
  const base = hubUrl(hub)

  // Unverified on purpose, for this one request only: the hash check below is the verification.
  const caAnswer = await send(hub, new URL(CA_PATH, base), { method: 'GET', rejectUnauthorized: false })
  if (caAnswer.status !== 200) throw new JoinFailedError(hub, `GET ${CA_PATH} answered HTTP ${caAnswer.status}`)
  let actual: string
  try {
    actual = caHashOfPem(caAnswer.body)
  } catch (err) {
    throw new JoinFailedError(hub, `GET ${CA_PATH} did not answer a PEM certificate`, { cause: err })
  }
  if (actual !== parts.caHash) throw new JoinCaMismatchError(hub, parts.caHash, actual)
  const ca = caAnswer.body

  const body: JoinRequest = { token: token.trim(), nodeName, ...options.facts, ...(options.secretsPublicKey ? { secretsPublicKey: options.secretsPublicKey } : {}), ...(options.version ? { version: options.version } : {}) }
  const answer = await send(hub, new URL(JOIN_PATH, base), { method: 'POST', ca, body: JSON.stringify(body) }).catch((err: unknown) => {
    // Pinned to the CA just fetched, so a certificate failure here is this node's clock (a Pi
    // booted offline): name the skew against the Date the hub sent with its CA.
    const now = options.now?.() ?? Date.now()
    const sentence = tlsFailureSentence(err, { peer: `the hub at ${hub}`, localNowMs: now, skewMs: clockSkewMs(caAnswer.date, now) })
    throw sentence ? new JoinFailedError(hub, sentence, { cause: err }) : err
  })
  if (answer.status < 200 || answer.status >= 300) throw refusal(hub, nodeName, answer.status, answer.body)
  let response: JoinResponse
  try {
    response = JSON.parse(answer.body) as JoinResponse
  } catch (err) {
    throw new JoinFailedError(hub, 'the join answer is not JSON', { cause: err })
  }
  if (!isJoinResponse(response)) throw new JoinFailedError(hub, 'the join answer lacks the node credentials')
  log.info({ node: response.nodeName, clusterId: response.clusterId, mqtt: response.mqtt.url }, 'joined the hub')
  return { ...response, ca: response.ca || ca }
}

// ---- identity.json ------------------------------------------------------------------------

export function agentDir(dataDir: string): string {
  return join(dataDir, 'agent')
}

export function identityPath(dataDir: string): string {
  return join(agentDir(dataDir), 'identity.json')
}

/** The identity saved by an earlier join, or undefined when this node has not joined yet. */
export function loadIdentity(dataDir: string): JoinResponse | undefined {
  const path = identityPath(dataDir)
  if (!existsSync(path)) return undefined
  try {
    const value = JSON.parse(readFileSync(path, 'utf8'))
    if (!isJoinResponse(value)) throw new Error('fields are missing')
    return value
  } catch (err) {
    throw new AgentIdentityCorruptError(path, { cause: err })
  }
}

/** Owner-only file (0600) in an owner-only directory (0700), written atomically. */
export function saveIdentity(dataDir: string, identity: JoinResponse): void {
  const dir = agentDir(dataDir)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
  writeFileAtomic(identityPath(dataDir), JSON.stringify(identity, null, 2) + '\n', 0o600)
}

// ---- helpers ------------------------------------------------------------------------------

function isJoinResponse(v: any): v is JoinResponse {
  return (
    typeof v === 'object' && v !== null &&
    typeof v.nodeName === 'string' && typeof v.clusterId === 'string' && typeof v.ca === 'string' &&
    typeof v.mqtt === 'object' && v.mqtt !== null &&
    ['url', 'username', 'password', 'clientId'].every((k) => typeof v.mqtt[k] === 'string')
  )
}

function invalidNodeName(hub: string, nodeName: string): JoinRefusedError {
  return new JoinRefusedError(
    hub,
    'invalid-node-name',
    `node name "${nodeName}" is not valid: it must be a DNS-1123 label (lower-case letters, digits and '-', at most 63 characters); pass --node-name`,
  )
}

const REFUSAL_MESSAGES: Record<Exclude<JoinRefusal, 'invalid-node-name' | 'other'>, string> = {
  expired: 'the join token has expired; make a new one on the hub with `bramble token create`',
  revoked: 'the join token was revoked; make a new one on the hub with `bramble token create`',
  'unknown-token': 'the hub does not know this join token; check it was copied whole, or make a new one with `bramble token create`',
  'malformed-token': 'the hub says the join token is malformed; copy it whole as `bramble token create` printed it',
}

/** Maps the hub's Status answer to a typed refusal with a sentence a person can act on. */
function refusal(hub: string, nodeName: string, httpStatus: number, body: string): JoinRefusedError | JoinFailedError {
  let status: { reason?: string; message?: string; details?: { causes?: Array<{ field?: string; message?: string }> } } = {}
  try {
    status = JSON.parse(body)
  } catch {
    // not a Status: fall through with the raw text
  }
  const text = `${status.reason ?? ''} ${status.message ?? body} ${(status.details?.causes ?? []).map((c) => `${c.field ?? ''} ${c.message ?? ''}`).join(' ')}`
  const said = (status.message ?? body).trim().slice(0, 300)
  if (/expired/i.test(text)) return new JoinRefusedError(hub, 'expired', REFUSAL_MESSAGES.expired)
  if (/revoked/i.test(text)) return new JoinRefusedError(hub, 'revoked', REFUSAL_MESSAGES.revoked)
  if (/node ?name|DNS-1123/i.test(text) && httpStatus !== 409) return invalidNodeName(hub, nodeName)
  if (/malformed/i.test(text)) return new JoinRefusedError(hub, 'malformed-token', REFUSAL_MESSAGES['malformed-token'])
  if (httpStatus === 401 || httpStatus === 403 || /unknown|not found|invalid token/i.test(text)) {
    return new JoinRefusedError(hub, 'unknown-token', REFUSAL_MESSAGES['unknown-token'])
  }
  if (httpStatus >= 400 && httpStatus < 500) return new JoinRefusedError(hub, 'other', `the hub refused the join: ${said || `HTTP ${httpStatus}`}`)
  return new JoinFailedError(hub, `the hub answered HTTP ${httpStatus}${said ? `: ${said}` : ''}`)
}

interface SendOptions {
  method: 'GET' | 'POST'
  ca?: string
  rejectUnauthorized?: boolean
  body?: string
}

function send(hub: string, url: URL, o: SendOptions): Promise<{ status: number; body: string; date?: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: o.method,
        // Pinned: the CA from the token-checked answer is the only one trusted, not the system's.
        ...(o.ca ? { ca: [o.ca], rejectUnauthorized: true } : { rejectUnauthorized: o.rejectUnauthorized ?? true }),
        headers: { accept: 'application/json', ...(o.body ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(o.body) } : {}) },
        timeout: REQUEST_TIMEOUT_MS,
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (c: Buffer) => {
          size += c.length
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`))
          else chunks.push(c)
        })
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), date: res.headers.date }))
        res.on('error', (err) => reject(new JoinFailedError(hub, err.message, { cause: err })))
      },
    )
    req.on('timeout', () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`)))
    req.on('error', (err) => reject(new JoinFailedError(hub, `${o.method} ${url.pathname}: ${err.message}`, { cause: err })))
    req.end(o.body)
  })
}
