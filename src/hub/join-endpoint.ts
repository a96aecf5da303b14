// The hub's side of joining (see src/api/join.ts for the flow): the CA for pinning, the join call
// that registers a Node and hands out its MQTT credentials, and join-token creation for
// `bramble token create`. Every refusal happens before anything is written. Every hub serves these
// routes, leading or not: the Node is an API write, and hubs sharing a store share the tokens and
// credentials too (shared-records.ts).

import type { IncomingMessage, ServerResponse } from 'node:http'
import { CA_PATH, JOIN_PATH, JOIN_TOKENS_PATH, joinRequestProblems, type JoinRequest, type JoinResponse } from '../api/join.js'
import { agentVersionProblem } from '../api/version-skew.js'
import { KINDS } from '../api/kinds.js'
import { isDNS1123Label } from '../api/names.js'
import { ANNOTATION_SECRETS_PUBLIC_KEY } from '../api/sealed-secret.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { parseJson, readBody } from './api-body.js'
import { ApiError, alreadyExists, badRequest, invalid } from './api-errors.js'
import type { ExtraRoute } from './api-server.js'
import type { NodeCredentials } from './node-credentials.js'
import { mutateObject, WRITE } from './node-gateway-writes.js'
import { caHash } from './pki.js'
import { rfc3339, type Registry } from './registry.js'
import type { HubTokens, JoinTokenRejection } from './tokens.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!

export const LABEL_ARCH = 'kubernetes.io/arch'
export const LABEL_OS = 'kubernetes.io/os'
export const LABEL_HOSTNAME = 'kubernetes.io/hostname'
/** Which join token a node last joined with (its id, never the secret): for audits. */
export const ANNOTATION_JOIN_TOKEN = 'bramble.io/join-token-id'

/** Longest join token lifetime `bramble token create --ttl` may ask for: a year. */
const MAX_TTL_SECONDS = 365 * 24 * 3600

export interface JoinEndpointOptions {
  registry: Registry
  tokens: HubTokens
  credentials: NodeCredentials
  /** The hub CA, PEM. */
  ca: string
  clusterId: string
  /** The API URL agents are told, e.g. https://10.0.0.1:6443 (a function when known only once the API listens). */
  apiServer: string | (() => string)
  /** The broker URL agents are told (embedded or external). */
  brokerUrl: string | (() => string)
  clock: Clock
  logger: Logger
  /** Bramble's version; agents of another major, a newer minor or more than one minor older are refused. */
  hubVersion?: string
}

const REJECTIONS: Record<JoinTokenRejection, string> = {
  malformed: 'malformed join token: expected the form `bramble token create` prints (K10<hash>::<id>.<secret>)',
  unknown: 'unknown join token; make a new one with `bramble token create` on the hub',
  expired: 'join token expired; make a new one with `bramble token create` on the hub',
  revoked: 'join token revoked; make a new one with `bramble token create` on the hub',
  'ca-mismatch': "join token was made for another hub's CA; use a token from this hub",
}

export function joinRoutes(o: JoinEndpointOptions): ExtraRoute[] {
  const log = o.logger.child({ component: 'join' })
  const hash = caHash(o.ca)

  async function join(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJson(await readBody(req))
    const problems = joinRequestProblems(body)
    if (problems.length > 0) throw badRequest(`invalid join request: ${problems.join('; ')}`)
    const request = body as JoinRequest
    const skew = request.version && o.hubVersion ? agentVersionProblem(o.hubVersion, request.version) : undefined
    if (skew) {
      log.warn({ node: request.nodeName, agentVersion: request.version, hubVersion: o.hubVersion }, 'refused a join: version skew')
      throw new ApiError(400, 'BadRequest', skew)
    }

    const verdict = await o.tokens.verifyJoinToken(request.token, hash)
    if (!verdict.ok) {
      log.warn({ node: request.nodeName, reason: verdict.reason }, 'refused a join')
      throw new ApiError(401, 'Unauthorized', REJECTIONS[verdict.reason])
    }
    const nameErrors = isDNS1123Label(request.nodeName)
    if (nameErrors.length > 0) {
      throw invalid('', 'Node', request.nodeName, nameErrors.map((message) => ({ field: 'nodeName', type: 'FieldValueInvalid' as const, message: `Invalid value: "${request.nodeName}": ${message}` })))
    }
    if (o.credentials.retiredWith(request.nodeName) === verdict.id) {
      log.warn({ node: request.nodeName, reason: 'deleted-node', tokenId: verdict.id }, 'refused a join')
      throw new ApiError(401, 'Unauthorized', `node "${request.nodeName}" was deleted; joining it again needs a new join token (\`bramble token create\` on the hub)`)
    }

    const node = await registerNode(request, verdict.id)
    const mqtt = await o.credentials.issue(request.nodeName)
    log.info({ node: request.nodeName, tokenId: verdict.id, uid: node.metadata.uid }, 'node joined')
    const answer: JoinResponse = {
      nodeName: request.nodeName,
      clusterId: o.clusterId,
      apiServer: resolve(o.apiServer),
      ca: o.ca,
      mqtt: { url: resolve(o.brokerUrl), username: mqtt.username, password: mqtt.password, clientId: request.nodeName },
    }
    sendJsonNoStore(res, 200, answer)
  }

  /**
   * Creates the Node, or takes it over when it is the same machine joining again (same host name)
   * or a Node nobody holds credentials for (made by hand). A name held by another machine is a 409:
   * joining must never hijack a running node.
   */
  async function registerNode(request: JoinRequest, tokenId: string): Promise<KubeObject> {
    const name = request.nodeName
    const hostname = request.hostname ?? name
    const labels: Record<string, string> = { [LABEL_HOSTNAME]: hostname }
    if (request.arch) labels[LABEL_ARCH] = request.arch
    if (request.os) labels[LABEL_OS] = request.os

    const existing = await o.registry.get(NODE, '', name).catch((err) => {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined
      throw err
    })
    if (!existing) {
      try {
        const created = await o.registry.create(NODE, '', newNode(name, labels, tokenId, request, o.clock.now()), WRITE)
        return created.object
      } catch (err) {
        if (err instanceof ApiError && err.reason === 'AlreadyExists') throw nameTaken(name)
        throw err
      }
    }
    const heldBy = existing.metadata.labels?.[LABEL_HOSTNAME]
    if (o.credentials.has(name) && heldBy !== undefined && heldBy !== hostname) {
      log.warn({ node: name, hostname, heldBy }, 'refused a join: the node name belongs to another machine')
      throw nameTaken(name, heldBy)
    }
    const updated = await mutateObject(o.registry, NODE, '', name, (current) => {
      current.metadata.labels = { ...current.metadata.labels, ...labels }
      current.metadata.annotations = { ...current.metadata.annotations, ...joinAnnotations(tokenId, request) }
      return current
    })
    return updated ?? existing
  }

  async function createToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req)
    const body = raw.length === 0 ? {} : parseJson(raw)
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the body must be a JSON object: {"ttlSeconds": N}')
    const ttl = (body as Record<string, unknown>).ttlSeconds
    if (ttl !== undefined && (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TTL_SECONDS)) {
      throw badRequest(`ttlSeconds: must be a whole number of seconds between 1 and ${MAX_TTL_SECONDS}`)
    }
    const { token, info, saved } = o.tokens.createJoinToken({ caHash: hash, ...(ttl === undefined ? {} : { ttlMs: (ttl as number) * 1000 }) })
    // Answered once every hub sharing the store can admit it.
    await saved
    log.info({ tokenId: info.id, expiresAt: info.expiresAt }, 'join token created')
    sendJsonNoStore(res, 201, { token, expiresAt: info.expiresAt })
  }

  return [
    {
      method: 'GET',
      path: CA_PATH,
      public: true,
      async handle(_req, res) {
        res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(o.ca) }).end(o.ca)
      },
    },
    { method: 'POST', path: JOIN_PATH, public: true, handle: (req, res) => join(req, res) },
    { method: 'POST', path: JOIN_TOKENS_PATH, public: false, verb: 'create', handle: (req, res) => createToken(req, res) },
  ]
}

function resolve(v: string | (() => string)): string {
  return typeof v === 'function' ? v() : v
}

function nameTaken(name: string, heldBy?: string): ApiError {
  const err = alreadyExists('', 'nodes', name)
  const by = heldBy ? ` by the machine "${heldBy}"` : ''
  return new ApiError(409, err.reason, `node name "${name}" is already taken${by}; join with another --node-name, or delete the Node first`, err.details)
}

/** A new Node: Ready=Unknown until its agent's first status arrives. */
function newNode(name: string, labels: Record<string, string>, tokenId: string, request: JoinRequest, nowMs: number): KubeObject {
  const now = rfc3339(nowMs)
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels, annotations: joinAnnotations(tokenId, request) },
    spec: {},
    status: {
      conditions: [{ type: 'Ready', status: 'Unknown', reason: 'NodeJoined', message: 'The node joined; waiting for its first status.', lastHeartbeatTime: now, lastTransitionTime: now }],
      nodeInfo: { architecture: request.arch ?? '', operatingSystem: request.os ?? '' },
    },
  }
}

/** The token joined with and, when the node sent one, its public key for Secrets in transit. */
function joinAnnotations(tokenId: string, request: JoinRequest): Record<string, string> {
  return { [ANNOTATION_JOIN_TOKEN]: tokenId, ...(request.secretsPublicKey ? { [ANNOTATION_SECRETS_PUBLIC_KEY]: request.secretsPublicKey } : {}) }
}

/** Join answers carry secrets: no cache may keep them. */
function sendJsonNoStore(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body)
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload), 'Cache-Control': 'no-store' }).end(payload)
}
