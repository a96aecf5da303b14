// A SPDY/3.1 connection as kubectl opens it to the API server for port-forward and (before
// kubectl 1.30) exec: the server's side of the subset Kubernetes uses. SYN_STREAM is answered with
// SYN_REPLY, DATA (with FIN) carries each stream's bytes, RST_STREAM ends one stream, PING is
// echoed, GOAWAY ends the connection; header blocks are zlib with the SPDY/3 dictionary, one
// compression context per direction for the whole connection (draft-mbelshe-httpbis-spdy-00).
// Flow control is left to the relay's window (pod-streams.ts) and the transport's back-pressure.

import { constants, createDeflate, createInflate, type Deflate, type Inflate } from 'node:zlib'
import type { Duplex } from 'node:stream'
import type { WebSocket } from 'ws'
import type { Logger } from '../lib/logger.js'
import { InputQueue } from './client-input.js'

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

/** The server's callbacks for what the client does. */
export interface SpdyStreamHandler {
  /** The client opened a stream (already answered with SYN_REPLY). */
  stream(id: number, headers: Record<string, string>): void
  data(id: number, payload: Buffer, fin: boolean): void
  reset(id: number): void
  closed(): void
}

export class SpdyServerConnection {
  /** The client's data, relayed in order; the transport is not read while it waits. */
  readonly input: InputQueue
  private readonly inflater = new HeaderCodec(createInflate({ dictionary: SPDY_DICTIONARY }))
  private readonly deflater = new HeaderCodec(createDeflate({ dictionary: SPDY_DICTIONARY }))
  private pending: Buffer = Buffer.alloc(0)
  // Frames are handled one after another: a header block must be inflated before the next one.
  private frames: Promise<void> = Promise.resolve()
  private closed = false

  constructor(
    private readonly transport: SpdyTransport,
    private readonly handler: SpdyStreamHandler,
    private readonly log: Logger,
  ) {
    this.input = new InputQueue(transport)
    transport.onData((data) => this.receive(data))
    transport.onClose(() => {
      this.closed = true
      handler.closed()
    })
  }

  /** Writes `data` on a stream; `done` once the last of it is written out. */
  write(id: number, data: Buffer, done?: () => void): void {
    if (data.length === 0) return void done?.()
    for (let at = 0; at < data.length; at += MAX_DATA_BYTES) {
      const last = at + MAX_DATA_BYTES >= data.length
      this.transport.write(dataFrame(id, 0, data.subarray(at, at + MAX_DATA_BYTES)), last ? done : undefined)
    }
  }

  /** No more data from the server on this stream. */
  finish(id: number, done?: () => void): void {
    this.transport.write(dataFrame(id, FLAG_FIN, Buffer.alloc(0)), done)
  }

  reset(id: number): void {
    this.transport.write(controlFrame(RST_STREAM, 0, Buffer.concat([u32(id), u32(1)])))
  }

  fail(reason: string): void {
    if (this.closed) return
    this.closed = true
    this.log.info({ reason }, 'closed a SPDY connection')
    this.transport.close(reason)
  }

  private receive(data: Buffer): void {
    this.pending = this.pending.length ? Buffer.concat([this.pending, data]) : data
    while (this.pending.length >= 8) {
      const length = this.pending.readUInt32BE(4) & 0xffffff
      if (this.pending.length < 8 + length) break
      const frame = this.pending.subarray(0, 8 + length)
      this.pending = this.pending.subarray(8 + length)
      this.frames = this.frames.then(() => this.handleFrame(frame)).catch((err) => this.fail(`a malformed SPDY frame: ${(err as Error).message}`))
    }
  }

  private async handleFrame(frame: Buffer): Promise<void> {
    if (!(frame[0] & 0x80)) return this.handler.data(frame.readUInt32BE(0) & 0x7fffffff, frame.subarray(8), (frame[4] & FLAG_FIN) !== 0)
    const type = frame.readUInt16BE(2)
    const body = frame.subarray(8)
    if (type === SYN_STREAM) {
      const id = body.readUInt32BE(0) & 0x7fffffff
      const headers = decodeHeaderBlock(await this.inflater.run(body.subarray(10)))
      this.transport.write(controlFrame(SYN_REPLY, 0, Buffer.concat([u32(id), await this.deflater.run(encodeHeaderBlock({}))])))
      return this.handler.stream(id, headers)
    }
    if (type === PING) return this.transport.write(frame)
    if (type === GOAWAY) return this.fail('the client went away')
    if (type === RST_STREAM) return this.handler.reset(body.readUInt32BE(0) & 0x7fffffff)
  }
}
