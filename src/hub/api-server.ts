// The Kubernetes-shaped HTTPS API: authentication, routing, discovery and the resource verbs.
// Resource rules live in the Registry; this file only speaks HTTP.

import { createServer, type Server } from 'node:https'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { apiVersionOf, type KindInfo } from '../api/kinds.js'
import { openApiV3Document, openApiV3Root } from '../api/openapi.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { Duplex } from 'node:stream'
import { decodeObject, mediaType, PATCH_TYPES, readBody } from './api-body.js'
import { apiGroup, coreVersions, groupList, resourceList, versionInfo } from './api-discovery.js'
import { badRequest, forbidden, methodNotAllowed, notFoundPath, unauthorized, unsupportedMediaType } from './api-errors.js'
import { booleanParam, checkListQuery, fieldValidationOf, includeObjectOf, integerParam, isDryRun, selectorOf, verbOf, wantsTable } from './api-query.js'
import { answerClientError, refuseUpgrade, sendError, sendJson } from './api-replies.js'
import { decodeSegments, parseRoute } from './api-routes.js'
import { serveWatch } from './api-watch.js'
import { parseDeleteOptions } from './api-delete-options.js'
import { evictPod, parseEviction } from './eviction.js'
import { parseBinding } from './pod-binding.js'
import { mayPerform, type Authenticator, type UserInfo } from './auth.js'
import { metricsApiGroup, type MetricsApi } from './metrics-api.js'
import { Registry, type WriteContext, type WriteResult } from './registry.js'
import { getScale, updateScale } from './scale.js'
import type { Store } from './store.js'
import { toTable } from './tables.js'

export interface ApiServerOptions {
  store: Store
  logger: Logger
  clock: Clock
  tls: { key: string; cert: string }
  authenticate: Authenticator
  /** Bind address. */
  host: string
  /** 0 picks a free port. */
  port: number
  /** Bramble's own version, shown in /version. */
  brambleVersion?: string
  /** Endpoints beyond the Kubernetes paths (joining, join tokens), served before them. */
  extraRoutes?: ExtraRoute[]
  /** Streams a pod's container log (`GET .../pods/NAME/log`); absent, the subresource is 404. */
  podLogs?: PodLogs
  /** Serves `pods/NAME/exec` and `pods/NAME/portforward` upgrades (authenticated, allowed to create, the pod read); absent, they are 404. */
  podStreams?: PodStreamUpgrade
  /** Seconds of the not-ready and unreachable tolerations new pods get (--default-toleration-seconds). */
  defaultTolerationSeconds?: number
  /** The range Services' cluster IPs come from (default 10.43.0.0/16). */
  serviceCidr?: string
  /** How long a client may take to send its headers, and its whole request (default HEADERS_TIMEOUT_MS, REQUEST_TIMEOUT_MS). */
  timeouts?: { headersMs: number; requestMs: number }
  /** Counts requests and serves `/metrics` (Prometheus text) to any valid token; absent, `/metrics` is 404. */
  metrics?: ApiMetrics
  /** The metrics.k8s.io API (`kubectl top`); absent, the group is not served. */
  metricsApi?: MetricsApi
}

export interface ApiMetrics {
  /** A request ended; `seconds` is undefined for long-running ones (watch, followed logs). */
  apiRequest(verb: string, resource: string, code: number, seconds: number | undefined): void
  scrape(): Promise<{ contentType: string; body: string }>
}

export interface ExtraRoute {
  method: string
  path: string
  /** Public routes need no bearer token (the CA, the join call that carries its own token). */
  public: boolean
  /** Verb checked against the caller's role when the route is not public. */
  verb?: string
  handle(req: IncomingMessage, res: ServerResponse, user: UserInfo | undefined): Promise<void>
}

export interface PodLogOptions {
  container?: string
  follow: boolean
  tailLines?: number
  timestamps: boolean
}

export type PodStreamUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer, pod: KubeObject, subresource: 'exec' | 'portforward', query: URLSearchParams) => void

export type PodLogs = (pod: KubeObject, options: PodLogOptions, res: ServerResponse, onClose: (fn: () => void) => void) => Promise<void>

export interface RunningApiServer {
  port: number
  registry: Registry
  /** Serves a new certificate from the next TLS handshake on; open connections keep theirs. */
  setTls(tls: { key: string; cert: string }): void
  close(): Promise<void>
}

/** A client sends its request headers within this (TLS handshake included), as Go's ReadHeaderTimeout in the Kubernetes API server. */
export const HEADERS_TIMEOUT_MS = 30_000
/** ... and its whole request, body included: Node's default, so a 4 MiB image chunk over a 16 KB/s link fits. */
export const REQUEST_TIMEOUT_MS = 300_000

/** Paths anyone may read, as Kubernetes' system:public-info-viewer role allows. */
const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz'])


export async function startApiServer(options: ApiServerOptions): Promise<RunningApiServer> {
  const registry = new Registry(options.store, options.clock, options.logger, { defaultTolerationSeconds: options.defaultTolerationSeconds, serviceCidr: options.serviceCidr })
  const log = options.logger.child({ component: 'api' })
  const timeouts = options.timeouts ?? { headersMs: HEADERS_TIMEOUT_MS, requestMs: REQUEST_TIMEOUT_MS }
  const serverOptions = {
    key: options.tls.key,
    cert: options.tls.cert,
    keepAliveTimeout: 65_000,
    // Slow clients (slowloris) hold a socket at most this long; responses (watches, followed logs) are not limited.
    handshakeTimeout: timeouts.headersMs,
    headersTimeout: timeouts.headersMs,
    requestTimeout: timeouts.requestMs,
    connectionsCheckingInterval: Math.min(timeouts.headersMs / 4, 5_000),
  }
  const server: Server = createServer(serverOptions, (req, res) => {
    if (options.metrics) countRequest(req, res, options.metrics, options.clock)
    handle(req, res).catch((err) => sendError(req, res, err, log))
  })
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => answerClientError(err, socket, log))
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    socket.on('error', () => {})
    handleUpgrade(req, socket, head).catch((err) => refuseUpgrade(socket, err, log))
  })
  const sockets = new Set<import('node:net').Socket>()
  server.on('secureConnection', (s) => {
    sockets.add(s)
    s.on('close', () => sockets.delete(s))
  })

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://bramble')
    const path = url.pathname.length > 1 ? url.pathname.replace(/\/$/, '') : url.pathname
    if (!decodeSegments(path)) throw badRequest(`the request path has a malformed percent-encoding: ${path.slice(0, 200)}`)
    if (PUBLIC_PATHS.has(path)) {
      if (path === '/version') return sendJson(res, 200, versionInfo(options.brambleVersion ?? '0.1.0'))
      res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok')
      return
    }
    const extra = options.extraRoutes?.find((r) => r.path === path && r.method === req.method)
    if (extra) {
      const caller = extra.public ? undefined : await authenticateRequest(req)
      if (caller && extra.verb && !mayPerform(caller, extra.verb)) {
        log.warn({ user: caller.name, verb: extra.verb, path }, 'refused an API request: verb not allowed for this user')
        throw forbidden(`User "${caller.name}" cannot ${extra.verb} ${path}`)
      }
      return extra.handle(req, res, caller)
    }
    const user = await authenticateRequest(req)
    if (req.method === 'GET' && path === '/metrics' && options.metrics) {
      const { contentType, body } = await options.metrics.scrape()
      res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }).end(body)
      return
    }
    if (options.metricsApi?.owns(path)) {
      if (req.method !== 'GET') throw methodNotAllowed(req.method ?? '', path)
      return sendJson(res, 200, options.metricsApi.get(path, url.searchParams))
    }
    const route = parseRoute(path)
    if (route.type === 'resource') return handleResource(req, res, url, user, route)
    // An unknown path is 404 whatever the method, as Kubernetes answers; a known one is read-only.
    const doc = discovery(path, req)
    if (doc === undefined) throw notFoundPath(path)
    if (req.method !== 'GET') throw methodNotAllowed(req.method ?? '', path)
    sendJson(res, 200, doc)
  }

  /** exec and port-forward: a WebSocket upgrade on a pod, a write ("create" on pods/exec, pods/portforward) as in Kubernetes. */
  async function handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', 'https://bramble')
    const route = parseRoute(url.pathname.length > 1 ? url.pathname.replace(/\/$/, '') : url.pathname)
    const user = await authenticateRequest(req)
    if (route.type !== 'resource' || route.info.kind !== 'Pod' || !route.name || !route.namespace || (route.subresource !== 'exec' && route.subresource !== 'portforward') || !options.podStreams) {
      throw badRequest(`only pods/exec and pods/portforward take an upgrade; ${url.pathname} does not`)
    }
    if (!mayPerform(user, 'create')) {
      log.warn({ user: user.name, verb: 'create', resource: `pods/${route.subresource}`, namespace: route.namespace, name: route.name }, 'refused an API request: verb not allowed for this user')
      throw forbidden(`pods "${route.name}" is forbidden: User "${user.name}" cannot create resource "pods/${route.subresource}" in API group "" in the namespace "${route.namespace}"`)
    }
    const pod = await registry.get(route.info, route.namespace, route.name)
    options.podStreams(req, socket, head, pod, route.subresource, url.searchParams)
  }

  async function authenticateRequest(req: IncomingMessage): Promise<UserInfo> {
    const header = req.headers.authorization ?? ''
    const match = /^Bearer\s+(\S+)$/i.exec(header)
    const user = match ? await options.authenticate(match[1]) : undefined
    if (!user) {
      log.warn({ method: req.method, path: (req.url ?? '').split('?')[0], remote: req.socket.remoteAddress, reason: match ? 'unknown token' : 'no bearer token' }, 'refused an API request: no valid bearer token')
      throw unauthorized()
    }
    return user
  }

  function discovery(path: string, req: IncomingMessage): unknown {
    if (path === '/api') return coreVersions(`${req.socket.localAddress ?? '127.0.0.1'}:${req.socket.localPort ?? options.port}`)
    if (path === '/apis') return groupList(options.metricsApi ? [metricsApiGroup()] : [])
    if (path === '/openapi/v3') return openApiV3Root()
    if (path.startsWith('/openapi/v3/')) return openApiV3Document(path.slice('/openapi/v3/'.length))
    const route = parseRoute(path)
    if (route.type === 'groupVersion') return resourceList(route.group, route.version)
    const group = /^\/apis\/([^/]+)$/.exec(path)
    if (group) return apiGroup(group[1])
    return undefined
  }

  async function handleResource(
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    user: UserInfo,
    route: { info: KindInfo; namespace?: string; name?: string; subresource?: string },
  ): Promise<void> {
    const { info, name, subresource } = route
    const namespace = route.namespace ?? ''
    const q = url.searchParams
    const method = req.method ?? 'GET'
    if (subresource === 'exec' || subresource === 'portforward') throw badRequest(`Upgrade request required: ${subresource} is served over WebSocket`)
    const verb = verbOf(method, name, subresource, q)
    if (!verb) throw methodNotAllowed(method, url.pathname)
    if (!mayPerform(user, verb)) {
      log.warn({ user: user.name, verb, resource: info.plural, namespace, name }, 'refused an API request: verb not allowed for this user')
      const where = info.namespaced && namespace ? ` in the namespace "${namespace}"` : ''
      throw forbidden(`${info.plural}${subresource ? `/${subresource}` : ''} is forbidden: User "${user.name}" cannot ${verb} resource "${info.plural}" in API group "${info.group}"${where}`)
    }
    if (verb === 'list' || verb === 'watch') checkListQuery(q)
    if (subresource === 'log' && verb === 'get' && options.podLogs) {
      const logOptions = { container: q.get('container') || undefined, follow: booleanParam(q, 'follow') ?? false, tailLines: integerParam(q, 'tailLines'), timestamps: booleanParam(q, 'timestamps') ?? false }
      const pod = await registry.get(info, namespace, name!)
      return options.podLogs(
        pod,
        logOptions,
        res,
        (fn) => res.on('close', fn),
      )
    }
    if (subresource !== undefined && (subresource === 'log' || !info.subresources.includes(subresource as never))) throw notFoundPath(url.pathname)
    if (info.namespaced && !route.namespace && (method !== 'GET' || name)) throw methodNotAllowed(method, url.pathname)

    const ctx: WriteContext = { dryRun: isDryRun(q), fieldValidation: fieldValidationOf(q) }
    const asTable = wantsTable(req)

    switch (verb) {
      case 'get': {
        if (subresource === 'scale') return sendJson(res, 200, getScale(info, await registry.get(info, namespace, name!)))
        const object = await registry.get(info, namespace, name!)
        return sendJson(res, 200, asTable ? toTable(info.kind, [object], object.metadata.resourceVersion, options.clock.now(), includeObjectOf(q)) : object)
      }
      case 'list': {
        const matches = selectorOf(q, info.kind)
        const { items, revision } = await registry.list(info, route.namespace)
        const selected = items.filter(matches.test)
        if (asTable) return sendJson(res, 200, toTable(info.kind, selected, String(revision), options.clock.now(), includeObjectOf(q)))
        return sendJson(res, 200, { kind: `${info.kind}List`, apiVersion: apiVersionOf(info), metadata: { resourceVersion: String(revision) }, items: selected })
      }
      case 'watch': {
        const matches = selectorOf(q, info.kind)
        return serveWatch(
          registry,
          options.clock,
          {
            info,
            namespace: route.namespace,
            resourceVersion: q.get('resourceVersion') ?? undefined,
            matches: matches.test,
            filtered: matches.filtered,
            timeoutSeconds: integerParam(q, 'timeoutSeconds') || undefined,
            asTable,
          },
          res,
          (fn) => res.on('close', fn),
        )
      }
      case 'create': {
        if (subresource === 'eviction') {
          const eviction = parseEviction(decodeObject(await readBody(req), mediaType(req)), namespace, name!)
          return sendJson(res, 201, await evictPod(registry, namespace, name!, eviction, ctx.dryRun))
        }
        if (subresource === 'binding') {
          const binding = parseBinding(decodeObject(await readBody(req), mediaType(req)), namespace, name!)
          await registry.bind(namespace, name!, binding, ctx.dryRun)
          return sendJson(res, 201, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 })
        }
        if (subresource) throw methodNotAllowed(method, url.pathname)
        const body = decodeObject(await readBody(req), mediaType(req))
        const result = await registry.create(info, namespace, body, ctx)
        return sendWrite(res, 201, result)
      }
      case 'update': {
        const body = decodeObject(await readBody(req), mediaType(req))
        if (subresource === 'scale') return sendWrite(res, 200, await updateScale(registry, info, namespace, name!, { kind: 'replace', body }, ctx))
        return sendWrite(res, 200, await registry.update(info, namespace, name!, body, ctx, subresource === 'status' ? 'status' : undefined))
      }
      case 'patch': {
        const type = mediaType(req)
        if (!PATCH_TYPES.has(type)) throw unsupportedMediaType(type)
        const patch = await readBody(req)
        if (subresource === 'scale') return sendWrite(res, 200, await updateScale(registry, info, namespace, name!, { kind: 'patch', patch, contentType: type }, ctx))
        return sendWrite(res, 200, await registry.patch(info, namespace, name!, patch, type, ctx, subresource === 'status' ? 'status' : undefined))
      }
      case 'delete': {
        const opts = parseDeleteOptions(await readBody(req), q, ctx.dryRun)
        const object = await registry.delete(info, namespace, name!, opts)
        // 202: marked for deletion, the garbage collector finishes it (Orphan, Foreground).
        return sendJson(res, object.metadata.deletionTimestamp ? 202 : 200, object)
      }
      case 'deletecollection': {
        const opts = parseDeleteOptions(await readBody(req), q, ctx.dryRun)
        const matches = selectorOf(q, info.kind)
        const { items } = await registry.list(info, route.namespace)
        const deleted: KubeObject[] = []
        for (const item of items.filter(matches.test)) deleted.push(await registry.delete(info, item.metadata.namespace ?? '', item.metadata.name!, { dryRun: opts.dryRun, propagationPolicy: opts.propagationPolicy }))
        return sendJson(res, 200, { kind: `${info.kind}List`, apiVersion: apiVersionOf(info), metadata: {}, items: deleted })
      }
    }
  }

  function sendWrite(res: ServerResponse, status: number, result: WriteResult): void {
    sendJson(res, result.changed ? status : 200, result.object, result.warnings)
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  const port = (server.address() as AddressInfo).port
  log.info({ host: options.host, port }, 'API listening')
  return {
    port,
    registry,
    setTls: (tls) => server.setSecureContext({ key: tls.key, cert: tls.cert }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        for (const s of sockets) s.destroy()
      }),
  }
}

/** Reports the request to `metrics` once it ends, by Kubernetes verb and resource. */
function countRequest(req: IncomingMessage, res: ServerResponse, metrics: ApiMetrics, clock: Clock): void {
  const started = clock.monotonic()
  res.once('close', () => {
    const url = new URL(req.url ?? '/', 'https://bramble')
    const route = parseRoute(url.pathname.replace(/(.)\/$/, '$1'))
    const method = req.method ?? 'GET'
    const verb = (route.type === 'resource' ? verbOf(method, route.name, route.subresource, url.searchParams) : undefined) ?? method.toLowerCase()
    const resource = route.type === 'resource' ? route.info.plural + (route.subresource ? `/${route.subresource}` : '') : ''
    const longRunning = verb === 'watch' || (route.type === 'resource' && route.subresource === 'log' && url.searchParams.get('follow') === 'true')
    metrics.apiRequest(verb, resource, res.statusCode, longRunning ? undefined : (clock.monotonic() - started) / 1000)
  })
}
