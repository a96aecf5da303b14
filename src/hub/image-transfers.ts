// Image archives through the hub (src/api/image-transfer.ts has the flow): uploads in chunks to
// files under the hub's data dir (size-bounded), `image-load` and `image-save` requests to nodes
// over `down/rpc`, and the archive download a node makes with its own credentials. An archive is
// removed once its load has every node's answer; uploads nobody loaded go after an hour.

import { randomBytes, randomUUID } from 'node:crypto'
import { createReadStream, createWriteStream } from 'node:fs'
import { mkdir, readdir, rm, stat } from 'node:fs/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import { join } from 'node:path'
import {
  IMAGE_ARCHIVES_PATH,
  IMAGE_COPIES_PATH,
  IMAGE_LOADS_PATH,
  NODE_IMAGE_ARCHIVES_PATH,
  isArchiveId,
  type ImageLoadResponse,
  type ImageNodeResult,
} from '../api/image-transfer.js'
import { DELIVERY, downTopic, encodeMessage, upTopic, type RpcReply, type RpcRequest } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { parseJson, readBody } from './api-body.js'
import { ApiError, badRequest, unauthorized } from './api-errors.js'
import { sendJson } from './api-replies.js'
import type { ExtraRoute } from './api-server.js'
import type { Informer } from './informer.js'
import type { NodeCredentials } from './node-credentials.js'

/** Largest archive the hub keeps (4 GiB): a site's images, not a disk's worth. */
export const DEFAULT_MAX_ARCHIVE_BYTES = 4 * 1024 ** 3
/** How long a node has to fetch and load an archive, or save and upload an image. */
export const DEFAULT_NODE_TIMEOUT_MS = 15 * 60_000
const STALE_UPLOAD_MS = 60 * 60_000

export interface ImageTransfersOptions {
  /** Where archives are kept while in flight (under the hub's data dir). */
  dir: string
  bus: Bus
  nodes: Informer
  credentials: NodeCredentials
  clock: Clock
  logger: Logger
  maxArchiveBytes?: number
  nodeTimeoutMs?: number
}

interface Call {
  node: string
  resolve(reply: RpcReply): void
}

export class ImageTransfers {
  private readonly calls = new Map<string, Call>()
  /** Archive id → nodes that may fetch it now. */
  private readonly readers = new Map<string, Set<string>>()
  /** Archive id → the node that may upload it now (an `image copy` source). */
  private readonly writers = new Map<string, string>()
  private readonly log: Logger
  private readonly maxBytes: number
  private readonly timeoutMs: number

  constructor(private readonly o: ImageTransfersOptions) {
    this.log = o.logger.child({ component: 'image-transfers' })
    this.maxBytes = o.maxArchiveBytes ?? DEFAULT_MAX_ARCHIVE_BYTES
    this.timeoutMs = o.nodeTimeoutMs ?? DEFAULT_NODE_TIMEOUT_MS
  }

  routes(): ExtraRoute[] {
    return [
      { method: 'PUT', path: IMAGE_ARCHIVES_PATH, public: false, verb: 'create', handle: (req, res) => this.receiveChunk(req, res) },
      { method: 'POST', path: IMAGE_LOADS_PATH, public: false, verb: 'create', handle: (req, res) => this.load(req, res) },
      { method: 'POST', path: IMAGE_COPIES_PATH, public: false, verb: 'create', handle: (req, res) => this.copy(req, res) },
      // Nodes authenticate with their MQTT credentials (HTTP Basic), checked here.
      { method: 'GET', path: NODE_IMAGE_ARCHIVES_PATH, public: true, handle: (req, res) => this.serveToNode(req, res) },
      { method: 'PUT', path: NODE_IMAGE_ARCHIVES_PATH, public: true, handle: (req, res) => this.receiveFromNode(req, res) },
    ]
  }

  /** An `up/rpc-reply` for one of this module's calls: true when it was one (else it is another module's). */
  onReply(node: string, reply: RpcReply): boolean {
    const call = this.calls.get(reply.id)
    if (!call) return false
    if (call.node !== node) {
      this.log.warn({ node, id: reply.id, expected: call.node }, 'refused an image reply from a node the request was not made to')
      return true
    }
    this.calls.delete(reply.id)
    call.resolve(reply)
    return true
  }

  /** Ends every pending call (the hub is stopping). */
  close(): void {
    for (const [id, call] of [...this.calls]) {
      this.calls.delete(id)
      call.resolve({ id, ok: false, error: 'the hub is shutting down' })
    }
  }

  private archivePath(id: string): string {
    return join(this.o.dir, `${id}.tar`)
  }

  private async receiveChunk(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const { id, offset } = chunkQuery(req)
    if (offset === 0) await this.removeStale()
    const size = await this.appendChunk(req, id, offset)
    sendJson(res, 200, { archive: id, size })
  }

  /** Appends the request body at `offset` (0 starts the file again); returns the archive's size. */
  private async appendChunk(req: IncomingMessage, id: string, offset: number): Promise<number> {
    await mkdir(this.o.dir, { recursive: true, mode: 0o700 })
    const path = this.archivePath(id)
    const current = offset === 0 ? 0 : await stat(path).then((s) => s.size, () => -1)
    if (current !== offset) {
      throw new ApiError(409, 'Conflict', current < 0 ? `image archive ${id} has no upload under way; start again at offset 0` : `image archive ${id} holds ${current} bytes, not ${offset}; send from offset ${current}`)
    }
    const declared = Number(req.headers['content-length'] ?? NaN)
    if (offset + (Number.isFinite(declared) ? declared : 0) > this.maxBytes) throw tooBig(this.maxBytes)
    const out = createWriteStream(path, { flags: offset === 0 ? 'w' : 'a', mode: 0o600 })
    let written = offset
    try {
      await new Promise<void>((resolve, reject) => {
        req.on('data', (chunk: Buffer) => {
          written += chunk.length
          if (written > this.maxBytes) {
            req.pause()
            reject(tooBig(this.maxBytes))
            return
          }
          if (!out.write(chunk)) {
            req.pause()
            out.once('drain', () => req.resume())
          }
        })
        req.on('end', resolve)
        req.on('error', reject)
        req.on('aborted', () => reject(badRequest('the upload was cut off')))
      })
    } catch (err) {
      out.destroy()
      await rm(path, { force: true })
      throw err
    }
    await new Promise<void>((resolve, reject) => out.end((err?: Error | null) => (err ? reject(err) : resolve())))
    return written
  }

  private async load(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJson(await readBody(req)) as Record<string, unknown>
    if (!body || typeof body !== 'object') throw badRequest('the image load request must be a JSON object')
    if (!isArchiveId(body.archive)) throw badRequest('archive: must be the id the archive was uploaded under (16 to 64 lowercase hex digits)')
    if (typeof body.size !== 'number' || !Number.isInteger(body.size) || body.size < 0) throw badRequest('size: must be the archive size in bytes')
    const size = await stat(this.archivePath(body.archive)).then((s) => s.size, () => undefined)
    if (size === undefined) throw new ApiError(404, 'NotFound', `image archive ${body.archive} was not uploaded (or was already loaded)`)
    if (size !== body.size) throw new ApiError(409, 'Conflict', `image archive ${body.archive} holds ${size} bytes, not ${body.size}: finish the upload first`)
    const targets = this.targets(body.nodes, body.all, 'nodes')
    try {
      const results = await Promise.all(targets.map((node) => this.loadOn(node, body.archive as string)))
      sendJson(res, 200, { results } satisfies ImageLoadResponse)
    } finally {
      await rm(this.archivePath(body.archive), { force: true })
    }
  }

  private async copy(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = parseJson(await readBody(req)) as Record<string, unknown>
    if (!body || typeof body !== 'object') throw badRequest('the image copy request must be a JSON object')
    if (typeof body.image !== 'string' || body.image === '' || body.image.length > 512) throw badRequest('image: must name the image to copy')
    const [from] = this.targets(typeof body.from === 'string' ? [body.from] : body.from, false, 'from')
    const targets = this.targets(body.to, false, 'to')
    if (targets.includes(from)) throw badRequest(`to: node ${from} is the source; it already has the image`)
    sendJson(res, 200, { results: await this.copyImage(body.image, from, targets) } satisfies ImageLoadResponse)
  }

  /**
   * `image` from node `from` (docker save, uploaded to the hub) loaded on each target; the source's
   * failure comes first in the results, each target then saying it was not loaded.
   */
  async copyImage(image: string, from: string, targets: string[]): Promise<ImageNodeResult[]> {
    const archive = randomBytes(16).toString('hex')
    this.writers.set(archive, from)
    try {
      const saved = await this.call(from, 'image-save', { image, archive })
      if (!saved.ok) {
        return [{ node: from, ok: false, error: `could not save ${image}: ${saved.error ?? 'unknown error'}` }, ...targets.map((node) => ({ node, ok: false, error: `not loaded: the source node ${from} did not save the image` }))]
      }
      return await Promise.all(targets.map((node) => this.loadOn(node, archive)))
    } finally {
      this.writers.delete(archive)
      await rm(this.archivePath(archive), { force: true })
    }
  }

  /** Node names from a request field, each an existing Node; `all`: every Ready node. */
  private targets(names: unknown, all: unknown, field: string): string[] {
    const nodes = this.o.nodes.list()
    if (all === true) {
      if (names !== undefined) throw badRequest(`${field}: give node names or all, not both`)
      const ready = nodes.filter(isReady).map((n) => n.metadata.name!)
      if (ready.length === 0) throw badRequest('all: no node is Ready')
      return ready
    }
    if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string')) throw badRequest(`${field}: must name at least one node`)
    const known = new Set(nodes.map((n) => n.metadata.name))
    const unknown = names.filter((n) => !known.has(n))
    if (unknown.length > 0) throw new ApiError(404, 'NotFound', `${field}: no such node: ${unknown.join(', ')}`)
    return [...new Set(names as string[])]
  }

  private async loadOn(node: string, archive: string): Promise<ImageNodeResult> {
    const readers = this.readers.get(archive) ?? new Set<string>()
    readers.add(node)
    this.readers.set(archive, readers)
    try {
      const reply = await this.call(node, 'image-load', { archive, path: NODE_IMAGE_ARCHIVES_PATH })
      if (!reply.ok) return { node, ok: false, error: reply.error ?? 'unknown error' }
      const images = (reply.result as { images?: unknown })?.images
      this.log.info({ node, archive, images }, 'node loaded an image archive')
      return { node, ok: true, images: Array.isArray(images) ? images.map(String) : [] }
    } finally {
      readers.delete(node)
      if (readers.size === 0) this.readers.delete(archive)
    }
  }

  /** One request to a node and its single reply; a node that is not Ready, or does not answer in time, is a failed reply. */
  private call(node: string, method: 'image-load' | 'image-save', params: Record<string, unknown>): Promise<RpcReply> {
    const id = randomUUID()
    const current = this.o.nodes.get(node)
    if (!current || !isReady(current)) return Promise.resolve({ id, ok: false, error: `node ${node} is not Ready, so it cannot take the image now; try again once it is` })
    const request: RpcRequest = { id, replyTopic: upTopic(node, 'rpc-reply'), method, params }
    return new Promise<RpcReply>((resolve) => {
      const timer = this.o.clock.setTimeout(() => {
        if (this.calls.delete(id)) resolve({ id, ok: false, error: `node ${node} did not answer within ${Math.round(this.timeoutMs / 1000)}s; it may be offline` })
      }, this.timeoutMs)
      this.calls.set(id, {
        node,
        resolve: (reply) => {
          timer.cancel()
          resolve(reply)
        },
      })
      this.o.bus.publish(downTopic(node, 'rpc'), encodeMessage(request), DELIVERY.rpc).catch((err) => {
        if (this.calls.delete(id)) {
          timer.cancel()
          resolve({ id, ok: false, error: `could not reach node ${node}: ${(err as Error).message}` })
        }
      })
    })
  }

  private async serveToNode(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const node = this.nodeOf(req)
    const id = new URL(req.url ?? '/', 'https://bramble').searchParams.get('id')
    if (!isArchiveId(id) || !this.readers.get(id)?.has(node)) throw new ApiError(403, 'Forbidden', `node ${node} was not asked to load image archive ${id}`)
    const path = this.archivePath(id)
    const size = (await stat(path)).size
    res.writeHead(200, { 'Content-Type': 'application/x-tar', 'Content-Length': size })
    await new Promise<void>((resolve) => {
      const file = createReadStream(path)
      file.on('error', () => res.destroy())
      res.on('close', () => (file.destroy(), resolve()))
      file.pipe(res)
    })
  }

  private async receiveFromNode(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const node = this.nodeOf(req)
    const { id, offset } = chunkQuery(req)
    if (this.writers.get(id) !== node) throw new ApiError(403, 'Forbidden', `node ${node} was not asked to upload image archive ${id}`)
    const size = await this.appendChunk(req, id, offset)
    sendJson(res, 200, { archive: id, size })
  }

  /** The node a request authenticates as (HTTP Basic with its MQTT username and password). */
  private nodeOf(req: IncomingMessage): string {
    const match = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '')
    const text = match ? Buffer.from(match[1], 'base64').toString('utf8') : ''
    const colon = text.indexOf(':')
    const [username, password] = colon > 0 ? [text.slice(0, colon), text.slice(colon + 1)] : [undefined, undefined]
    if (!username || !this.o.credentials.verify(username, password)) {
      this.log.warn({ path: NODE_IMAGE_ARCHIVES_PATH, remote: req.socket.remoteAddress }, 'refused an image archive request: no valid node credentials')
      throw unauthorized()
    }
    return username
  }

  /** Uploads an hour old that nobody loaded (a client that went away) free their space. */
  private async removeStale(): Promise<void> {
    const now = this.o.clock.now()
    for (const name of await readdir(this.o.dir).catch(() => [] as string[])) {
      const id = name.replace(/\.tar$/, '')
      if (this.readers.has(id) || this.writers.has(id)) continue
      const s = await stat(join(this.o.dir, name)).catch(() => undefined)
      if (s && now - s.mtimeMs > STALE_UPLOAD_MS) await rm(join(this.o.dir, name), { force: true })
    }
  }
}

function chunkQuery(req: IncomingMessage): { id: string; offset: number } {
  const q = new URL(req.url ?? '/', 'https://bramble').searchParams
  const id = q.get('id')
  if (!isArchiveId(id)) throw badRequest('id: must be 16 to 64 lowercase hex digits')
  const offset = Number(q.get('offset') ?? '0')
  if (!Number.isInteger(offset) || offset < 0) throw badRequest('offset: must be a byte count (0 or more)')
  return { id, offset }
}

function tooBig(limit: number): ApiError {
  return new ApiError(413, 'RequestEntityTooLarge', `the image archive is larger than the hub keeps (${limit} bytes)`)
}

function isReady(node: KubeObject): boolean {
  return (node.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
}
