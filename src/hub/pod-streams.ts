// The hub's side of exec and port-forward sessions: it opens one on the pod's node with an
// `exec` or `port-forward` rpc, relays the client's input down as `stream` requests and the
// node's output up from `up/rpc-reply`, in order and within a window each way
// (src/lib/stream-window.ts; the node's side: src/agent/pod-streams-rpc.ts). MQTT carries it
// because it is the one link a node keeps to the hub, also behind NAT where the hub cannot dial it.

import { randomUUID } from 'node:crypto'
import { DELIVERY, downTopic, encodeMessage, upTopic, type RpcReply, type RpcRequest } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { AckCounter, InOrder, KEEPALIVE_MS, SendWindow, SILENCE_LIMIT_MS } from '../lib/stream-window.js'
import { ApiError, badRequest } from './api-errors.js'

/** Input bytes per message: about 11 KiB once base64, inside the 16 KiB limit of `down/rpc`. */
const CHUNK_BYTES = 8 * 1024
export const DEFAULT_OPEN_TIMEOUT_MS = 10_000

export interface StreamHandlers {
  /** Output on `channel` (1 stdout, 2 stderr); call `passedOn` once it is written to the client. */
  output(channel: number, data: Buffer, passedOn: () => void): void
  /** Once: the process exited (exitCode), the connection closed, or the session failed (error). */
  end(result: { exitCode?: number; error?: string }): void
}

export interface PodStreamsOptions {
  bus: Bus
  clock: Clock
  logger: Logger
  /** How long the node has to start the process or make the connection. */
  openTimeoutMs?: number
  /** How often an open session is pinged (default KEEPALIVE_MS); one silent for three times that ends. */
  keepaliveMs?: number
}

export class StreamSession {
  private seq = 0
  private readonly window = new SendWindow()
  readonly acks = new AckCounter()
  ended = false

  constructor(
    readonly id: string,
    readonly node: string,
    private readonly publish: (params: Record<string, unknown>) => void,
  ) {}

  /** Sends input; resolves once the window has room for more. */
  async send(channel: number, data: Buffer): Promise<void> {
    for (let at = 0; at < data.length && !this.ended; at += CHUNK_BYTES) {
      await this.window.whenOpen()
      const part = data.subarray(at, at + CHUNK_BYTES)
      this.window.sending(part.length)
      this.publish({ seq: this.seq++, channel, data: part.toString('base64') })
    }
    await this.window.whenOpen()
  }

  /** No more input. */
  endInput(): void {
    if (!this.ended) this.publish({ seq: this.seq++, eof: true })
  }

  resize(width: number, height: number): void {
    if (!this.ended) this.publish({ seq: this.seq++, resize: { width, height } })
  }

  /** The node passed on `total` bytes of input. */
  acknowledged(total: number): void {
    this.window.acknowledged(total)
  }

  ack(total: number): void {
    if (!this.ended) this.publish({ ack: total })
  }

  ping(): void {
    if (!this.ended) this.publish({ ping: true })
  }
}

interface Pending {
  session: StreamSession
  handlers: StreamHandlers
  inbox: InOrder<RpcReply>
  opened: boolean
  timer?: { cancel(): void }
  keepalive?: { cancel(): void }
  /** When the node last said anything about this session (monotonic ms). */
  heard: number
  cancel(): void
}

export class PodStreams {
  private readonly pending = new Map<string, Pending>()
  private readonly log: Logger

  constructor(private readonly o: PodStreamsOptions) {
    this.log = o.logger.child({ component: 'pod-streams' })
  }

  owns(id: string): boolean {
    return this.pending.has(id)
  }

  /**
   * Opens a session on the pod's node. Throws an ApiError when the pod is not on a node or the
   * hub cannot reach the broker; later failures come to `handlers.end`.
   */
  open(pod: KubeObject, method: 'exec' | 'port-forward', params: Record<string, unknown>, handlers: StreamHandlers): StreamSession {
    const node = pod.spec?.nodeName as string | undefined
    const name = pod.metadata.name!
    if (!node) throw badRequest(`pod ${name} is not bound to a node yet; wait until it runs`)
    const phase = (pod.status as { phase?: string } | undefined)?.phase
    if (phase === 'Succeeded' || phase === 'Failed') throw badRequest(`cannot ${method === 'exec' ? 'exec into' : 'forward ports to'} a container in a completed pod; current phase is ${phase}`)
    if (!this.o.bus.connected) throw new ApiError(503, 'ServiceUnavailable', `the hub is not connected to its MQTT broker, so it cannot reach node ${node}; try again shortly`)
    const id = randomUUID()
    const replyTopic = upTopic(node, 'rpc-reply')
    const publishRpc = (request: RpcRequest) =>
      this.o.bus.publish(downTopic(node, 'rpc'), encodeMessage(request), DELIVERY.rpc).catch((err) => this.finish(id, { error: `could not reach node ${node}: ${(err as Error).message}` }))
    const session = new StreamSession(id, node, (p) => void publishRpc({ id: randomUUID(), replyTopic, method: 'stream', params: { session: id, ...p } }))
    const entry: Pending = {
      session,
      handlers,
      inbox: new InOrder((reply) => this.deliver(entry, reply)),
      opened: false,
      heard: this.o.clock.monotonic(),
      cancel: () => {
        if (!this.pending.delete(id)) return
        entry.timer?.cancel()
        entry.keepalive?.cancel()
        session.ended = true
        void publishRpc({ id: randomUUID(), replyTopic, method: 'stream', params: { session: id, close: true } })
      },
    }
    this.pending.set(id, entry)
    const timeoutMs = this.o.openTimeoutMs ?? DEFAULT_OPEN_TIMEOUT_MS
    entry.timer = this.o.clock.setTimeout(() => this.finish(id, { error: `node ${node} did not answer within ${timeoutMs / 1000}s; it may be offline` }), timeoutMs)
    void publishRpc({ id, replyTopic, method, params: { namespace: pod.metadata.namespace, name, uid: pod.metadata.uid, ...params } })
    this.keepAlive(entry)
    return session
  }

  /** The client went away: the node drops the session. */
  cancel(session: StreamSession): void {
    this.pending.get(session.id)?.cancel()
  }

  /** An `up/rpc-reply` for a session; replies from another node than the pod's are refused. */
  onReply(node: string, reply: RpcReply): void {
    const entry = this.pending.get(reply.id)
    if (!entry) return
    if (entry.session.node !== node) return void this.log.warn({ node, expected: entry.session.node }, 'refused a stream reply from a node the session was not opened on')
    entry.heard = this.o.clock.monotonic()
    if (typeof reply.ack === 'number') return entry.session.acknowledged(reply.ack)
    if (typeof reply.seq !== 'number' || !entry.inbox.push(reply.seq, reply)) this.finish(reply.id, { error: `the stream from node ${node} lost messages` })
  }

  /** Ends every session (the hub is stopping). */
  close(): void {
    for (const id of [...this.pending.keys()]) this.finish(id, { error: 'the hub is shutting down' })
  }

  /** Pings the node while the session is open; a node silent past the limit (restarted, cut off) ends it. */
  private keepAlive(entry: Pending): void {
    const every = this.o.keepaliveMs ?? KEEPALIVE_MS
    const limit = this.o.keepaliveMs ? 3 * this.o.keepaliveMs : SILENCE_LIMIT_MS
    entry.keepalive = this.o.clock.setTimeout(() => {
      if (!this.pending.has(entry.session.id)) return
      if (this.o.clock.monotonic() - entry.heard > limit) return this.finish(entry.session.id, { error: `node ${entry.session.node} stopped answering for this session; it may have restarted or lost its link` })
      entry.session.ping()
      this.keepAlive(entry)
    }, every)
  }

  private deliver(entry: Pending, reply: RpcReply): void {
    const id = entry.session.id
    if (!reply.ok) return this.finish(id, { error: reply.error ?? 'the node gave no reason' })
    if (reply.done) {
      const exitCode = (reply.result as { exitCode?: unknown } | undefined)?.exitCode
      return this.finish(id, typeof exitCode === 'number' ? { exitCode } : {})
    }
    // The first message but the end says the process runs or the connection is made.
    if (!entry.opened) {
      entry.opened = true
      entry.timer?.cancel()
    }
    if (reply.chunk === undefined) return
    const data = Buffer.from(reply.chunk, 'base64')
    const session = entry.session
    entry.handlers.output(reply.channel ?? 1, data, () => {
      const total = session.acks.passedOn(data.length, true)
      if (total !== undefined) session.ack(total)
    })
  }

  private finish(id: string, result: { exitCode?: number; error?: string }): void {
    const entry = this.pending.get(id)
    if (!entry) return
    this.pending.delete(id)
    entry.timer?.cancel()
    entry.keepalive?.cancel()
    entry.session.ended = true
    entry.handlers.end(result)
  }
}
