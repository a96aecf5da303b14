// kubectl port-forward over SPDY/3.1: since kubectl 1.31 tunneled in a WebSocket (the subprotocol
// `SPDY/3.1+portforward.k8s.io` carries the connection's bytes as binary messages), before that
// (and in 1.30 by default) on the HTTP connection itself upgraded to `SPDY/3.1`. Per forwarded connection kubectl opens two
// streams with the headers `streamtype` (error or data), `port` and `requestid`; the data stream
// is the connection, the error stream carries a failure's text. The subset served here: SYN_STREAM
// (answered with SYN_REPLY), DATA (with FIN), RST_STREAM, PING (echoed), GOAWAY; header blocks are
// zlib with the SPDY/3 dictionary, one compression context per direction for the connection.
// Flow control is the relay's window (pod-streams.ts) and the WebSocket's own back-pressure.

import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { KubeObject } from '../api/types.js'
import type { Logger } from '../lib/logger.js'
import type { PodStreams, StreamSession } from './pod-streams.js'
import { InputQueue } from './websocket-input.js'

export const SPDY_TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io'

const SYN_STREAM = 1
const SYN_REPLY = 2
const RST_STREAM = 3
const PING = 6
const GOAWAY = 7
const FLAG_FIN = 0x01
const MAX_DATA_BYTES = 32 * 1024

const DICTIONARY_WORDS = [
  'options', 'head', 'post', 'put', 'delete', 'trace', 'accept', 'accept-charset', 'accept-encoding', 'accept-language', 'accept-ranges', 'age', 'allow',
  'authorization', 'cache-control', 'connection', 'content-base', 'content-encoding', 'content-language', 'content-length', 'content-location', 'content-md5',
  'content-range', 'content-type', 'date', 'etag', 'expect', 'expires', 'from', 'host', 'if-match', 'if-modified-since', 'if-none-match', 'if-range',
  'if-unmodified-since', 'last-modified', 'location', 'max-forwards', 'pragma', 'proxy-authenticate', 'proxy-authorization', 'range', 'referer', 'retry-after',
  'server', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'user-agent', 'vary', 'via', 'warning', 'www-authenticate', 'method', 'get', 'status', '200 OK',
  'version', 'HTTP/1.1', 'url', 'public', 'set-cookie', 'keep-alive', 'origin',
]
const DICTIONARY_TAIL =
  '100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505' +
  '203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized403 Forbidden404 Not Found' +
  '500 Internal Server Error501 Not Implemented503 Service Unavailable' +
  'Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT' +
  'chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,public' +
  'privatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.'

/** The SPDY/3 header compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1): length-prefixed words, then text. */
export const SPDY_DICTIONARY = Buffer.concat([
  ...DICTIONARY_WORDS.flatMap((w) => {
    const length = Buffer.alloc(4)
    length.writeUInt32BE(w.length)
    return [length, Buffer.from(w, 'latin1')]
  }),
  Buffer.from(DICTIONARY_TAIL, 'latin1'),
])

/** One zlib context for a connection's header blocks, each block ended with a sync flush. */
class HeaderCodec {
  private readonly chunks: Buffer[] = []

  constructor(private readonly z: Inflate | Deflate) {
    z.on('data', (c: Buffer) => this.chunks.push(c))
    z.on('error', () => {})
  }

  run(block: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.z.write(block)
      this.z.flush(constants.Z_SYNC_FLUSH, () => {
        const out = Buffer.concat(this.chunks.splice(0))
        if (this.z.destroyed) reject(new Error('the header block could not be decompressed'))
        else resolve(out)
      })
    })
  }
}

export function encodeHeaderBlock(headers: Record<string, string>): Buffer {
  const parts: Buffer[] = [u32(Object.keys(headers).length)]
  for (const [name, value] of Object.entries(headers)) parts.push(u32(Buffer.byteLength(name)), Buffer.from(name), u32(Buffer.byteLength(value)), Buffer.from(value))
  return Buffer.concat(parts)
}

export function decodeHeaderBlock(block: Buffer): Record<string, string> {
  const headers: Record<string, string> = {}
  let at = 4
  const count = block.readUInt32BE(0)
  for (let i = 0; i < count; i++) {
    const nameLength = block.readUInt32BE(at)
    const name = block.subarray(at + 4, at + 4 + nameLength).toString()
    at += 4 + nameLength
    const valueLength = block.readUInt32BE(at)
    // Several values of one name are joined by NUL; the first serves here.
    headers[name.toLowerCase()] = block.subarray(at + 4, at + 4 + valueLength).toString().split('\0')[0]
    at += 4 + valueLength
  }
  return headers
}

export function controlFrame(type: number, flags: number, body: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt16BE(0x8000 | 3, 0)
  head.writeUInt16BE(type, 2)
  head.writeUInt32BE(body.length, 4)
  head[4] = flags
  return Buffer.concat([head, body])
}

export function dataFrame(streamId: number, flags: number, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(streamId & 0x7fffffff, 0)
  head.writeUInt32BE(data.length, 4)
  head[4] = flags
  return Buffer.concat([head, data])
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n)
  return b
}

/** The bytes of one SPDY connection, whatever carries them. */
export interface SpdyTransport {
  write(data: Buffer, done?: () => void): void
  close(reason: string): void
  pause(): void
  resume(): void
  onData(fn: (data: Buffer) => void): void
  onClose(fn: () => void): void
}

export function webSocketTransport(ws: WebSocket, log: Logger): SpdyTransport {
  ws.on('error', (err) => log.debug({ err: err.message }, 'port-forward websocket failed'))
  return {
    write: (data, done) => (ws.readyState === ws.OPEN ? ws.send(data, { binary: true }, () => done?.()) : done?.()),
    close: (reason) => ws.close(1002, reason.slice(0, 120)),
    pause: () => ws.pause(),
    resume: () => ws.resume(),
    onData: (fn) => ws.on('message', fn),
    onClose: (fn) => ws.on('close', fn),
  }
}

export function socketTransport(socket: Duplex, log: Logger): SpdyTransport {
  socket.on('error', (err) => log.debug({ err: err.message }, 'port-forward connection failed'))
  return {
    write: (data, done) => (socket.writable ? void socket.write(data, () => done?.()) : done?.()),
    close: () => socket.destroy(),
    pause: () => socket.pause(),
    resume: () => socket.resume(),
    onData: (fn) => socket.on('data', fn),
    onClose: (fn) => socket.on('close', fn),
  }
}

interface Forward {
  port: number
  dataStream?: number
  errorStream?: number
  session?: StreamSession
  finished: boolean
}

/** Serves one tunneled SPDY connection: each request id's stream pair is one connection to the pod's port. */
export function serveSpdyPortForward(connection: SpdyTransport, pod: KubeObject, streams: PodStreams, log: Logger): void {
  const inflater = new HeaderCodec(createInflate({ dictionary: SPDY_DICTIONARY }))
  const deflater = new HeaderCodec(createDeflate({ dictionary: SPDY_DICTIONARY }))
  const input = new InputQueue(connection)
  const forwards = new Map<string, Forward>()
  const byStream = new Map<number, { forward: Forward; type: string }>()
  let pending = Buffer.alloc(0) as Buffer
  // Frames are handled one after another: a header block must be inflated before the next one.
  let frames: Promise<void> = Promise.resolve()
  let closed = false

  const send = (frame: Buffer, done?: () => void) => connection.write(frame, done)
  const fail = (reason: string) => {
    if (closed) return
    closed = true
    log.info({ pod: pod.metadata.name, reason }, 'closed a kubectl port-forward connection')
    connection.close(reason)
  }

  const finish = (forward: Forward, error?: string) => {
    if (forward.finished) return
    forward.finished = true
    if (forward.errorStream !== undefined) {
      if (error) send(dataFrame(forward.errorStream, 0, Buffer.from(error)))
      send(dataFrame(forward.errorStream, FLAG_FIN, Buffer.alloc(0)))
    }
    if (forward.dataStream !== undefined) send(dataFrame(forward.dataStream, FLAG_FIN, Buffer.alloc(0)))
  }

  const start = (forward: Forward) => {
    if (forward.session || forward.dataStream === undefined) return
    const dataStream = forward.dataStream
    try {
      forward.session = streams.open(pod, 'port-forward', { port: forward.port }, {
        opened: () => {},
        output: (_channel, data, passedOn) => {
          for (let at = 0; at < data.length; at += MAX_DATA_BYTES) {
            const last = at + MAX_DATA_BYTES >= data.length
            send(dataFrame(dataStream, 0, data.subarray(at, at + MAX_DATA_BYTES)), last ? passedOn : undefined)
          }
        },
        end: (result) => finish(forward, result.error),
      })
    } catch (err) {
      finish(forward, (err as Error).message)
    }
  }

  const synStream = async (body: Buffer) => {
    const streamId = body.readUInt32BE(0) & 0x7fffffff
    const headers = decodeHeaderBlock(await inflater.run(body.subarray(10)))
    send(controlFrame(SYN_REPLY, 0, Buffer.concat([u32(streamId), await deflater.run(encodeHeaderBlock({}))])))
    const port = Number(headers.port)
    const type = headers.streamtype
    const requestId = headers.requestid ?? String(streamId)
    if (!Number.isInteger(port) || port < 1 || port > 65535 || (type !== 'data' && type !== 'error')) {
      send(controlFrame(RST_STREAM, 0, Buffer.concat([u32(streamId), u32(1)])))
      return
    }
    const forward = forwards.get(requestId) ?? { port, finished: false }
    forwards.set(requestId, forward)
    byStream.set(streamId, { forward, type })
    if (type === 'data') forward.dataStream = streamId
    else forward.errorStream = streamId
    start(forward)
  }

  const handleFrame = async (frame: Buffer) => {
    if (frame[0] & 0x80) {
      const type = frame.readUInt16BE(2)
      const body = frame.subarray(8)
      if (type === SYN_STREAM) return synStream(body)
      if (type === PING) return send(frame)
      if (type === GOAWAY) return fail('the client went away')
      if (type === RST_STREAM) {
        const stream = byStream.get(body.readUInt32BE(0) & 0x7fffffff)
        if (stream?.type === 'data' && stream.forward.session) streams.cancel(stream.forward.session)
        if (stream) stream.forward.finished = true
      }
      return
    }
    const stream = byStream.get(frame.readUInt32BE(0) & 0x7fffffff)
    if (!stream || stream.type !== 'data') return
    const session = stream.forward.session
    const payload = frame.subarray(8)
    if (!session) return
    if (payload.length > 0) input.push(() => session.send(1, payload))
    if (frame[4] & FLAG_FIN) input.push(async () => session.endInput())
  }

  connection.onData((data: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, data]) : data
    while (pending.length >= 8) {
      const length = pending.readUInt32BE(4) & 0xffffff
      if (pending.length < 8 + length) break
      const frame = pending.subarray(0, 8 + length)
      pending = pending.subarray(8 + length)
      frames = frames.then(() => handleFrame(frame)).catch((err) => fail(`a malformed SPDY frame: ${(err as Error).message}`))
    }
  })
  connection.onClose(() => {
    closed = true
    for (const forward of forwards.values()) if (forward.session) streams.cancel(forward.session)
  })
}
