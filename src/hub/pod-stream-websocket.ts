// `pods/NAME/exec` and `pods/NAME/portforward` as kubectl (1.30 and later) and `bramble` speak
// them: a WebSocket whose binary messages start with a channel byte (Kubernetes' channel
// protocol). exec, `v5.channel.k8s.io` or `v4.channel.k8s.io`: 0 stdin, 1 stdout, 2 stderr,
// 3 the final Status (its ExitCode cause carries a non-zero exit code), 4 terminal resize
// (`{"Width":W,"Height":H}`), and in v5 `[255, 0]` closes stdin. portforward,
// `v4.channel.k8s.io`: channel 2i carries the data of the i-th port and 2i+1 its errors, each
// first sent the port (uint16, little endian); `[255, 2i]` half-closes the connection (as v5).
// kubectl's port-forward speaks SPDY instead, tunneled in the WebSocket or (before 1.31) on the
// upgraded connection itself (spdy-portforward.ts); kubectl before 1.30 execs over SPDY (spdy-exec.ts).
// Each exec or forwarded port is one session relayed through the pod's node (pod-streams.ts).

import type { IncomingMessage } from 'node:http'
import type { Duplex } from 'node:stream'
import { WebSocketServer, type WebSocket } from 'ws'
import type { KubeObject } from '../api/types.js'
import type { Logger } from '../lib/logger.js'
import { badRequest } from './api-errors.js'
import { execStatus, parseExecQuery, parsePorts, type ExecOptions } from './pod-stream-requests.js'
import type { PodStreams, StreamHandlers, StreamSession } from './pod-streams.js'
import { socketTransport, webSocketTransport } from './spdy-connection.js'
import { serveSpdyExec } from './spdy-exec.js'
import { serveSpdyPortForward, SPDY_TUNNEL_PROTOCOL } from './spdy-portforward.js'
import { InputQueue } from './client-input.js'

export const EXEC_PROTOCOLS = ['v5.channel.k8s.io', 'v4.channel.k8s.io'] as const
export const PORT_FORWARD_PROTOCOLS = [SPDY_TUNNEL_PROTOCOL, 'v4.channel.k8s.io'] as const
const STDIN = 0
const ERROR = 3
const RESIZE = 4
const CLOSE = 255

export class PodStreamWebSockets {
  /** The subprotocol chosen for each request, answered by handleProtocols. */
  private readonly chosen = new WeakMap<IncomingMessage, string>()
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024, perMessageDeflate: false, handleProtocols: (_offered, req) => this.chosen.get(req) ?? false })
  private readonly log: Logger

  constructor(private readonly streams: PodStreams, logger: Logger) {
    this.log = logger.child({ component: 'pod-stream-websocket' })
  }

  /** Checks the request, then upgrades it; throws an ApiError (not yet upgraded) when it cannot be served. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, pod: KubeObject, subresource: 'exec' | 'portforward', q: URLSearchParams): void {
    if (String(req.headers.upgrade ?? '').toLowerCase() === 'spdy/3.1') return this.spdy(req, socket, head, pod, subresource, q)
    const offered = String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim()).filter(Boolean)
    const supported: readonly string[] = subresource === 'exec' ? EXEC_PROTOCOLS : PORT_FORWARD_PROTOCOLS
    const protocol = supported.find((p) => offered.includes(p))
    if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      throw badRequest(`${subresource} takes a WebSocket or SPDY/3.1 upgrade (kubectl, or bramble ${subresource === 'exec' ? 'exec' : 'port-forward'}); this request asked for "${req.headers.upgrade ?? 'no upgrade'}"`)
    }
    if (!protocol) throw badRequest(`${subresource} needs one of the WebSocket subprotocols ${supported.join(', ')}; the request offered ${offered.length ? offered.join(', ') : 'none'}`)
    // `ws` refuses a subprotocol with a `/` (not an RFC 6455 token), as kubectl's SPDY tunnel has:
    // the choice is made here and handed back through handleProtocols.
    this.chosen.set(req, protocol)
    req.headers['sec-websocket-protocol'] = 'bramble-chosen'
    if (subresource === 'exec') {
      const options = parseExecQuery(q, pod)
      this.wss.handleUpgrade(req, socket, head, (ws) => this.exec(ws, protocol, pod, options))
    } else {
      // Tunneled SPDY names its ports in each stream's headers; the channel protocol in the query.
      if (protocol === SPDY_TUNNEL_PROTOCOL) return void this.wss.handleUpgrade(req, socket, head, (ws) => serveSpdyPortForward(webSocketTransport(ws, this.log), pod, this.streams, this.log))
      const ports = parsePorts(q)
      this.wss.handleUpgrade(req, socket, head, (ws) => this.portForward(ws, pod, ports))
    }
  }

  /** kubectl before 1.31 (port-forward) and 1.30 (exec): the HTTP connection itself becomes a SPDY connection. */
  private spdy(req: IncomingMessage, socket: Duplex, head: Buffer, pod: KubeObject, subresource: 'exec' | 'portforward', q: URLSearchParams): void {
    const version = subresource === 'exec' ? 'v4.channel.k8s.io' : 'portforward.k8s.io'
    const offered = String(req.headers['x-stream-protocol-version'] ?? '').split(',').map((v) => v.trim())
    if (!offered.includes(version)) throw badRequest(`${subresource} over SPDY needs X-Stream-Protocol-Version ${version}; the request offered ${offered.filter(Boolean).join(', ') || 'none'}`)
    const options = subresource === 'exec' ? parseExecQuery(q, pod) : undefined
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${version}\r\n\r\n`)
    if (head.length > 0) socket.unshift(head)
    const transport = socketTransport(socket, this.log)
    if (options) serveSpdyExec(transport, pod, options, this.streams, this.log)
    else serveSpdyPortForward(transport, pod, this.streams, this.log)
  }

  private exec(ws: WebSocket, protocol: string, pod: KubeObject, options: ExecOptions): void {
    const input = new InputQueue(ws)
    let session: StreamSession | undefined
    const handlers: StreamHandlers = {
      output: (channel, data, passedOn) => sendChannel(ws, channel, data, passedOn),
      end: (result) => {
        sendChannel(ws, ERROR, execStatus(result, options.command), () => ws.close(1000))
      },
    }
    try {
      session = this.streams.open(pod, 'exec', { container: options.container, command: options.command, stdin: options.stdin, tty: options.tty }, handlers)
    } catch (err) {
      return handlers.end({ error: (err as Error).message })
    }
    const open = session
    ws.on('message', (data: Buffer) => {
      if (data.length === 0) return
      const channel = data[0]
      if (channel === STDIN && options.stdin) input.push(() => open.send(STDIN, data.subarray(1)))
      else if (channel === RESIZE) {
        const size = parseResize(data.subarray(1))
        if (size) input.push(async () => open.resize(size.width, size.height))
      } else if (channel === CLOSE && protocol.startsWith('v5.') && data[1] === STDIN) input.push(async () => open.endInput())
    })
    ws.on('close', () => this.streams.cancel(open))
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'exec websocket failed'))
  }

  private portForward(ws: WebSocket, pod: KubeObject, ports: number[]): void {
    const sessions: StreamSession[] = []
    const input = new InputQueue(ws)
    let open = ports.length
    const closeOne = () => {
      if (--open === 0) ws.close(1000)
    }
    ports.forEach((port, i) => {
      const prefix = Buffer.alloc(2)
      prefix.writeUInt16LE(port)
      sendChannel(ws, 2 * i, prefix)
      sendChannel(ws, 2 * i + 1, prefix)
      const handlers: StreamHandlers = {
        output: (_channel, data, passedOn) => sendChannel(ws, 2 * i, data, passedOn),
        end: (result) => {
          if (result.error) sendChannel(ws, 2 * i + 1, Buffer.from(result.error), closeOne)
          else closeOne()
        },
      }
      try {
        sessions[i] = this.streams.open(pod, 'port-forward', { port }, handlers)
      } catch (err) {
        handlers.end({ error: (err as Error).message })
      }
    })
    ws.on('message', (data: Buffer) => {
      if (data.length === 0) return
      const session = sessions[data[0] / 2]
      if (data[0] % 2 === 0 && session) input.push(() => session.send(1, data.subarray(1)))
      else if (data[0] === CLOSE && data.length > 1 && data[1] % 2 === 0) {
        const closing = sessions[data[1] / 2]
        if (closing) input.push(async () => closing.endInput())
      }
    })
    ws.on('close', () => sessions.forEach((s) => s && this.streams.cancel(s)))
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'port-forward websocket failed'))
  }
}

export function sendChannel(ws: WebSocket, channel: number, data: Buffer, done?: () => void): void {
  if (ws.readyState !== ws.OPEN) return void done?.()
  ws.send(Buffer.concat([Buffer.from([channel]), data]), { binary: true }, () => done?.())
}

function parseResize(data: Buffer): { width: number; height: number } | undefined {
  try {
    const size = JSON.parse(data.toString('utf8')) as { Width?: unknown; Height?: unknown }
    if (typeof size.Width === 'number' && typeof size.Height === 'number') return { width: size.Width, height: size.Height }
  } catch {}
  return undefined
}
