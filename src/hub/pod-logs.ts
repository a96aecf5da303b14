// `GET .../pods/NAME/log` through the node: the hub asks the pod's node over `down/rpc` and streams
// the `up/rpc-reply` chunks into the HTTP response. A node that does not answer in time is a 504;
// a client that goes away cancels a follow on the node.

import { randomUUID } from 'node:crypto'
import type { ServerResponse } from 'node:http'
import { DELIVERY, downTopic, encodeMessage, upTopic, type RpcReply, type RpcRequest } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { ApiError, badRequest } from './api-errors.js'
import type { PodLogOptions, PodLogs } from './api-server.js'

export const DEFAULT_RPC_TIMEOUT_MS = 10_000
/** Log text a client may leave unread before its stream is cut off. */
export const MAX_UNREAD_LOG_BYTES = 8 * 1024 * 1024

export interface PodLogsOptions {
  bus: Bus
  clock: Clock
  logger: Logger
  /** How long the node has to answer (and, for a log that does not follow, between chunks). */
  timeoutMs?: number
}

interface Call {
  node: string
  pod: string
  follow: boolean
  res: ServerResponse
  started: boolean
  timer?: { cancel(): void }
  finish(err?: ApiError): void
}

export class PodLogsRpc {
  private readonly calls = new Map<string, Call>()
  private readonly log: Logger
  private readonly timeoutMs: number

  constructor(private readonly o: PodLogsOptions) {
    this.log = o.logger.child({ component: 'pod-logs' })
    this.timeoutMs = o.timeoutMs ?? DEFAULT_RPC_TIMEOUT_MS
  }

  /** The API server's `podLogs` hook. */
  readonly podLogs: PodLogs = (pod, options, res, onClose) => this.stream(pod, options, res, onClose)

  /** An `up/rpc-reply` from `node`; replies to calls made to another node are refused. */
  onReply(node: string, reply: RpcReply): void {
    const call = this.calls.get(reply.id)
    if (!call) return void this.log.debug({ node, id: reply.id }, 'reply to no pending call (finished or cancelled); dropped')
    if (call.node !== node) return void this.log.warn({ node, id: reply.id, expected: call.node }, 'refused an rpc reply from a node the call was not made to')
    if (!reply.ok) {
      const message = `node ${node} could not read the logs of pod ${call.pod}: ${reply.error ?? 'unknown error'}`
      return call.finish(new ApiError(500, 'InternalError', message))
    }
    this.begin(call)
    const text = reply.chunk ?? (typeof reply.result === 'string' ? reply.result : undefined)
    if (text) call.res.write(text)
    // A client that stops reading a followed log is cut off (the close cancels it on the node), not buffered for.
    if (call.res.writableLength > MAX_UNREAD_LOG_BYTES) return void call.res.destroy()
    if (reply.done !== false) return call.finish()
    this.armTimer(reply.id, call)
  }

  /** Ends every pending call (the hub is stopping). */
  close(): void {
    for (const call of [...this.calls.values()]) call.finish(new ApiError(503, 'ServiceUnavailable', 'the hub is shutting down'))
  }

  private async stream(pod: KubeObject, options: PodLogOptions, res: ServerResponse, onClose: (fn: () => void) => void): Promise<void> {
    const node = pod.spec?.nodeName as string | undefined
    const name = `${pod.metadata.namespace}/${pod.metadata.name}`
    if (!node) throw badRequest(`pod has not been scheduled: pod "${pod.metadata.name}" is not bound to a node yet, so it has no logs`)
    if (!this.o.bus.connected) throw new ApiError(503, 'ServiceUnavailable', `the hub is not connected to its MQTT broker, so it cannot reach node ${node}; try again shortly`)

    const id = randomUUID()
    const request: RpcRequest = {
      id,
      replyTopic: upTopic(node, 'rpc-reply'),
      method: 'logs',
      params: {
        namespace: pod.metadata.namespace,
        name: pod.metadata.name,
        uid: pod.metadata.uid,
        ...(options.container ? { container: options.container } : {}),
        ...(options.tailLines === undefined ? {} : { tailLines: options.tailLines }),
        follow: options.follow,
        timestamps: options.timestamps,
      },
    }

    await new Promise<void>((resolve) => {
      const call: Call = {
        node,
        pod: name,
        follow: options.follow,
        res,
        started: false,
        finish: (err) => {
          if (!this.calls.delete(id)) return
          call.timer?.cancel()
          if (err && !call.started) {
            const status = err.toStatus()
            const body = JSON.stringify(status)
            if (!res.headersSent) res.writeHead(err.httpStatus, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) })
            res.end(body)
          } else if (err) {
            this.log.warn({ node, pod: name, err: err.message }, 'log stream ended early')
            res.end()
          } else {
            this.begin(call)
            res.end()
          }
          resolve()
        },
      }
      this.calls.set(id, call)
      this.armTimer(id, call)
      onClose(() => {
        if (!this.calls.has(id)) return
        this.calls.delete(id)
        call.timer?.cancel()
        this.cancelOnNode(node, id)
        resolve()
      })
      this.o.bus.publish(downTopic(node, 'rpc'), encodeMessage(request), DELIVERY.rpc).catch((err) => {
        call.finish(new ApiError(503, 'ServiceUnavailable', `could not send the log request to node ${node}: ${(err as Error).message}`))
      })
    })
  }

  private begin(call: Call): void {
    if (call.started) return
    call.started = true
    call.res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Cache-Control': 'no-cache', 'X-Content-Type-Options': 'nosniff' })
    call.res.flushHeaders()
  }

  /** Before the first reply, and between chunks of a log that does not follow, silence is a timeout. */
  private armTimer(id: string, call: Call): void {
    call.timer?.cancel()
    call.timer = undefined
    if (call.started && call.follow) return
    call.timer = this.o.clock.setTimeout(() => {
      const seconds = Math.round(this.timeoutMs / 100) / 10
      call.finish(new ApiError(504, 'Timeout', `node ${call.node} did not answer the log request for pod ${call.pod} within ${seconds}s; the node may be offline`))
      if (this.calls.has(id)) this.calls.delete(id)
    }, this.timeoutMs)
  }

  private cancelOnNode(node: string, id: string): void {
    const cancel: RpcRequest = { id: randomUUID(), replyTopic: upTopic(node, 'rpc-reply'), method: 'logs', params: { cancel: id } }
    this.o.bus.publish(downTopic(node, 'rpc'), encodeMessage(cancel), DELIVERY.rpc).catch((err) => {
      this.log.debug({ node, id, err: (err as Error).message }, 'could not cancel a log stream on the node')
    })
  }
}
