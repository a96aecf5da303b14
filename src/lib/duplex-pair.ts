// Two in-memory streams joined end to end: what one end writes, the other reads. A client and a
// server in one process (the hub's own MQTT connection to its embedded broker) talk through it
// without TCP or TLS: on a loopback TLS socket every node message was encrypted and decrypted twice
// more inside the hub, and queued in the kernel between the broker and the hub's client.
//
// Writes are handed over on the next turn of the event loop (setImmediate), never inside the
// writer's own call: the broker delivering a message must not find itself running the client's
// handler, and the handler's replies, in the middle of its own work. What one end writes while a
// hand-over is pending goes with it (writev), so a busy writer costs one turn per batch, not per
// message. A reader that falls behind holds the writer back (its buffer past the high-water mark
// keeps the writer's callback until it reads), as a socket would.

import { Duplex } from 'node:stream'

export function duplexPair(): [Duplex, Duplex] {
  const a = new PairEnd()
  const b = new PairEnd()
  a.peer = b
  b.peer = a
  return [a, b]
}

class PairEnd extends Duplex {
  peer!: PairEnd
  /** The callback of a batch the peer has not made room for yet. */
  private held: ((error?: Error | null) => void) | undefined

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    setImmediate(() => {
      if (this.peer.destroyed) return callback()
      // One chunk for the batch: the reader parses it in one go.
      const room = this.peer.push(chunks.length === 1 ? chunks[0]!.chunk : Buffer.concat(chunks.map((c) => c.chunk)))
      if (room) callback()
      else this.held = callback
    })
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback)
  }

  /** The peer reads again: a batch held back may go on. */
  override _read(): void {
    const held = this.peer.held
    this.peer.held = undefined
    held?.()
  }

  /** This end will write no more: the peer reads its end once what is pending has arrived. */
  override _final(callback: (error?: Error | null) => void): void {
    setImmediate(() => {
      if (!this.peer.destroyed) this.peer.push(null)
      callback()
    })
  }

  /** Like a socket: one end gone closes the other. */
  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const held = this.held
    this.held = undefined
    held?.()
    if (!this.peer.destroyed) this.peer.destroy()
    callback(error)
  }
}
