// The `logs` request from the hub: a container's output streamed back as `up/rpc-reply` chunks,
// `{id, ok: true, chunk, done: false}` ... `{id, ok: true, done: true}`, or one `{ok: false, error}`.
// A follow ends when the container stops, after a bound (so a forgotten `logs -f` cannot stream
// for ever), or when the hub sends `{method: 'logs', params: {cancel: <id>}}`.

import { StringDecoder } from 'node:string_decoder'
import type { Readable } from 'node:stream'
import type { RpcReply, RpcRequest } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { LABELS, type ContainerInfo, type ContainerRuntime } from './container-runtime.js'
import { attemptOf } from './pod-planner.js'

/** Characters per chunk: well inside the 256 KiB rpc-reply limit once JSON-escaped. */
const CHUNK_CHARS = 48 * 1024
const MAX_STREAMS = 16

export interface LogsRpcOptions {
  runtime: ContainerRuntime
  clusterId: string
  clock: Clock
  logger: Logger
  /** Publishes one reply to the request's reply topic; resolves once the broker has it. */
  reply: (replyTopic: string, reply: RpcReply) => Promise<void>
  followMaxMs: number
}

interface LogsParams {
  namespace?: unknown
  name?: unknown
  container?: unknown
  tailLines?: unknown
  follow?: unknown
  timestamps?: unknown
  cancel?: unknown
}

export class LogsRpc {
  private readonly streams = new Map<string, Readable>()

  constructor(private readonly o: LogsRpcOptions) {}

  /** Serves one request; never throws (failures become `{ok: false}` replies). */
  async handle(req: RpcRequest): Promise<void> {
    const p = req.params as LogsParams
    const send = (r: Omit<RpcReply, 'id'>) => this.o.reply(req.replyTopic, { id: req.id, ...r })
    try {
      if (typeof p.cancel === 'string') {
        this.streams.get(p.cancel)?.destroy()
        await send({ ok: true, done: true })
        return
      }
      if (typeof p.namespace !== 'string' || typeof p.name !== 'string') throw new Error('logs needs params.namespace and params.name')
      if (this.streams.size >= MAX_STREAMS) throw new Error(`this node already streams ${MAX_STREAMS} logs; try again later`)
      const container = await this.findContainer(p.namespace, p.name, typeof p.container === 'string' ? p.container : undefined)
      const tail = typeof p.tailLines === 'number' && p.tailLines >= 0 ? Math.floor(p.tailLines) : undefined
      const stream = await this.o.runtime.logs(container.id, { follow: p.follow === true, timestamps: p.timestamps === true, ...(tail !== undefined ? { tail } : {}) })
      await this.pump(req, stream, p.follow === true, send)
    } catch (err) {
      await send({ ok: false, error: (err as Error).message }).catch(() => {})
    }
  }

  /** Ends every stream (the agent is closing). */
  closeAll(): void {
    for (const s of this.streams.values()) s.destroy()
  }

  private async pump(req: RpcRequest, stream: Readable, follow: boolean, send: (r: Omit<RpcReply, 'id'>) => Promise<void>): Promise<void> {
    this.streams.set(req.id, stream)
    const bound = follow ? this.o.clock.setTimeout(() => stream.destroy(), this.o.followMaxMs) : undefined
    const decoder = new StringDecoder('utf8')
    let pending = ''
    const flush = async (all: boolean) => {
      while (pending.length >= CHUNK_CHARS || (all && pending.length > 0)) {
        const chunk = pending.slice(0, CHUNK_CHARS)
        pending = pending.slice(chunk.length)
        await send({ ok: true, chunk, done: false })
      }
    }
    try {
      for await (const data of stream) {
        pending += typeof data === 'string' ? data : decoder.write(data as Buffer)
        // Send what has arrived once nothing more is waiting: a tail goes in few messages, a
        // follow line by line as it comes.
        await flush(stream.readableLength === 0)
      }
    } catch (err) {
      if (!stream.destroyed) throw err
    } finally {
      bound?.cancel()
      this.streams.delete(req.id)
    }
    pending += decoder.end()
    await flush(true)
    await send({ ok: true, done: true })
  }

  private async findContainer(namespace: string, name: string, container: string | undefined): Promise<ContainerInfo> {
    const all = await this.o.runtime.list({ [LABELS.cluster]: this.o.clusterId, [LABELS.podNamespace]: namespace, [LABELS.podName]: name })
    const apps = all.filter((c) => c.labels[LABELS.role] !== 'sandbox')
    if (apps.length === 0) throw new Error(`pod "${name}" in namespace "${namespace}" has no containers on this node`)
    const names = [...new Set(apps.map((c) => c.labels[LABELS.containerName]))].sort()
    const wanted = container ?? (names.length === 1 ? names[0] : undefined)
    if (wanted === undefined) {
      throw new Error(`a container name must be specified for pod ${name}, choose one of: [${names.join(' ')}]`)
    }
    const latest = apps.filter((c) => c.labels[LABELS.containerName] === wanted).sort((a, b) => attemptOf(b) - attemptOf(a))[0]
    if (!latest) throw new Error(`container ${wanted} is not valid for pod ${name}`)
    return latest
  }
}
