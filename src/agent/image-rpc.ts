// The hub's `image-load` and `image-save` requests (src/api/image-transfer.ts has the flow):
// load fetches an archive from the hub over HTTPS (the hub's CA, the node's own MQTT credentials
// as HTTP Basic) straight into `docker load`; save streams `docker save` of an image up to the hub
// in chunks. Each request gets one reply: `{ok: true, result: {images}}` or `{ok: false, error}`.

import { request as httpsRequest } from 'node:https'
import type { IncomingMessage } from 'node:http'
import type { Readable } from 'node:stream'
import { IMAGE_CHUNK_BYTES, NODE_IMAGE_ARCHIVES_PATH, isArchiveId } from '../api/image-transfer.js'
import type { RpcReply, RpcRequest } from '../api/protocol.js'
import type { Logger } from '../lib/logger.js'
import type { ImageEngine } from './image-engine.js'

export interface HubEndpoint {
  /** https://host:port of the hub's API; with highly available hubs, each of them, tried in turn. */
  apiServers: string[]
  /** The hub's CA, PEM. */
  ca: string
  username: string
  password: string
}

export interface ImageRpcOptions {
  images: ImageEngine
  hub: () => HubEndpoint
  logger: Logger
  reply: (replyTopic: string, reply: RpcReply) => Promise<void>
  /** Images were loaded: pods waiting for them look again, the node status lists them. */
  onLoaded?: () => void
}

export class ImageRpc {
  private readonly log: Logger

  constructor(private readonly o: ImageRpcOptions) {
    this.log = o.logger.child({ component: 'image-rpc' })
  }

  /** Serves one request; never throws (failures become `{ok: false}` replies). */
  async handle(req: RpcRequest): Promise<void> {
    const send = (r: Omit<RpcReply, 'id'>) => this.o.reply(req.replyTopic, { id: req.id, ...r })
    try {
      const archive = req.params.archive
      if (!isArchiveId(archive)) throw new Error(`${req.method} needs params.archive (an archive id)`)
      if (req.method === 'image-load') {
        const images = await this.load(archive)
        this.log.info({ archive, images }, 'loaded an image archive from the hub')
        this.o.onLoaded?.()
        await send({ ok: true, result: { images } })
      } else if (req.method === 'image-save') {
        const image = req.params.image
        if (typeof image !== 'string' || image === '') throw new Error('image-save needs params.image')
        const size = await this.save(image, archive)
        this.log.info({ archive, image, size }, 'saved an image to the hub')
        await send({ ok: true, result: { images: [image], size } })
      } else {
        throw new Error(`unknown image method ${req.method}`)
      }
    } catch (err) {
      this.log.warn({ method: req.method, err: (err as Error).message }, 'image request failed')
      await send({ ok: false, error: (err as Error).message }).catch(() => {})
    }
  }

  private async load(archive: string): Promise<string[]> {
    const res = await this.request('GET', archive)
    if (res.statusCode !== 200) throw new Error(`the hub refused the archive download: ${res.statusCode} ${await textOf(res)}`)
    return this.o.images.load(res)
  }

  /** Streams `docker save` up in chunks; returns the bytes sent. */
  private async save(image: string, archive: string): Promise<number> {
    const stream = await this.o.images.save(image)
    let offset = 0
    let pending: Buffer[] = []
    let pendingBytes = 0
    const flush = async () => {
      const body = Buffer.concat(pending)
      pending = []
      pendingBytes = 0
      const res = await this.request('PUT', archive, offset, body)
      const text = await textOf(res)
      if (res.statusCode !== 200) throw new Error(`the hub refused the archive upload at byte ${offset}: ${res.statusCode} ${text}`)
      offset += body.length
    }
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      pending.push(chunk)
      pendingBytes += chunk.length
      if (pendingBytes >= IMAGE_CHUNK_BYTES) await flush()
    }
    if (pendingBytes > 0 || offset === 0) await flush()
    return offset
  }

  /** One request to the first hub that can be reached (the archive is on the leading hub). */
  private async request(method: 'GET' | 'PUT', archive: string, offset?: number, body?: Buffer): Promise<IncomingMessage> {
    const hub = this.o.hub()
    let failure: Error | undefined
    for (const apiServer of hub.apiServers) {
      try {
        return await this.requestTo(apiServer, hub, method, archive, offset, body)
      } catch (err) {
        failure = err as Error
        this.log.warn({ hub: apiServer, err: failure.message }, 'image transfer: hub unreachable; trying the next')
      }
    }
    throw failure ?? new Error('no hub API address is known')
  }

  private requestTo(apiServer: string, hub: HubEndpoint, method: 'GET' | 'PUT', archive: string, offset?: number, body?: Buffer): Promise<IncomingMessage> {
    const url = new URL(NODE_IMAGE_ARCHIVES_PATH, apiServer)
    url.searchParams.set('id', archive)
    if (offset !== undefined) url.searchParams.set('offset', String(offset))
    const auth = Buffer.from(`${hub.username}:${hub.password}`).toString('base64')
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method, ca: hub.ca, headers: { Authorization: `Basic ${auth}`, ...(body ? { 'Content-Type': 'application/x-tar', 'Content-Length': body.length } : {}) } }, resolve)
      req.on('error', (err) => reject(new Error(`could not reach the hub at ${apiServer}: ${err.message}`, { cause: err })))
      req.end(body)
    })
  }
}

async function textOf(res: Readable): Promise<string> {
  let text = ''
  for await (const chunk of res) if (text.length < 2000) text += chunk.toString()
  try {
    return JSON.parse(text).message ?? text
  } catch {
    return text
  }
}
