// Joining: how an agent becomes a node. Shared by the hub's join endpoint and the agent.
//
// 1. GET CA_PATH (no credentials): the hub's CA certificate, PEM. The agent checks that its
//    SHA-256 (of the DER) is the hash its join token carries, and from then on pins that CA.
// 2. POST JOIN_PATH over HTTPS verified with that CA, body JoinRequest: the hub registers the
//    Node and answers JoinResponse with the node's own MQTT credentials. The token is never sent
//    before the hub has proved it holds the pinned CA's certificate.

import { isSealingKey } from './sealed-secret.js'
import { parseVersion } from './version-skew.js'

export const CA_PATH = '/cacerts'
export const JOIN_PATH = '/apis/bramble.io/v1/join'
/** POST (admin): makes a join token; body `{ttlSeconds?}`, answer `{token, expiresAt}`. */
export const JOIN_TOKENS_PATH = '/apis/bramble.io/v1/jointokens'

export interface JoinRequest {
  token: string
  /** A DNS-1123 label; defaults to the host name on the agent side. */
  nodeName: string
  /** What the node is, so the Node object carries the right labels from the start. */
  arch?: string
  os?: string
  hostname?: string
  /** The node's X25519 public key for Secrets in transit (src/api/sealed-secret.ts); base64, 32 bytes. */
  secretsPublicKey?: string
  /** The agent's Bramble version (MAJOR.MINOR.PATCH); the hub serves its own minor version and the one before. */
  version?: string
}

export interface JoinResponse {
  nodeName: string
  clusterId: string
  /** The hub's API, e.g. https://10.0.0.1:6443. */
  apiServer: string
  /** The hub CA, PEM: the broker's and the API's certificates chain to it. */
  ca: string
  mqtt: { url: string; username: string; password: string; clientId: string }
}

/** `K10<caHashHex>::<id>.<secret>`, the form `bramble token create` prints. */
const TOKEN = /^K10([0-9a-f]{64})::([a-z0-9]{6})\.([a-z0-9]{16})$/

export function parseJoinTokenParts(token: string): { caHash: string; id: string; secret: string } | undefined {
  const m = TOKEN.exec(token.trim())
  return m ? { caHash: m[1], id: m[2], secret: m[3] } : undefined
}

/** Validates a JoinRequest body; returns the reasons it is not one. */
export function joinRequestProblems(body: unknown): string[] {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return ['the body must be a JSON object']
  const b = body as Record<string, unknown>
  const problems: string[] = []
  if (typeof b.token !== 'string' || b.token === '') problems.push('token: Required value')
  if (typeof b.nodeName !== 'string' || b.nodeName === '') problems.push('nodeName: Required value')
  for (const f of ['arch', 'os', 'hostname']) if (b[f] !== undefined && typeof b[f] !== 'string') problems.push(`${f}: must be a string`)
  if (b.secretsPublicKey !== undefined && !isSealingKey(b.secretsPublicKey)) problems.push('secretsPublicKey: must be an X25519 public key, 32 bytes in base64')
  if (b.version !== undefined && (typeof b.version !== 'string' || !parseVersion(b.version))) problems.push('version: must be a version, MAJOR.MINOR.PATCH')
  return problems
}
