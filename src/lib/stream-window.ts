// Ordering and back-pressure for a byte stream relayed as MQTT messages (pod exec and
// port-forward, hub ↔ node). Every message of a stream carries a sequence number: QoS 1 may
// deliver one twice, so the receiver hands each on once and in order. The receiver acknowledges
// the bytes it has passed on (written to its client or its container); the sender stops reading
// its source while WINDOW_BYTES are sent and not yet acknowledged. Neither side then buffers more
// than a window per stream, however slow the other end reads.

/** Bytes a sender may have in flight per stream. */
export const WINDOW_BYTES = 256 * 1024
/** The receiver acknowledges after this many bytes passed on, or when its sink has caught up. */
export const ACK_EVERY_BYTES = 32 * 1024
/** The hub pings each session this often, the node answers; either side ends a session silent for SILENCE_LIMIT_MS (the other end restarted or lost the link). */
export const KEEPALIVE_MS = 30_000
export const SILENCE_LIMIT_MS = 3 * KEEPALIVE_MS
/** Messages that may arrive ahead of a missing one before the stream counts as broken. */
const MAX_EARLY = 256

/** Hands messages on in sequence order, each once. */
export class InOrder<T> {
  private next = 0
  private readonly early = new Map<number, T>()

  constructor(private readonly deliver: (message: T) => void) {}

  /** False when too many arrived ahead of a missing one: the stream is broken and must end. */
  push(seq: number, message: T): boolean {
    if (seq < this.next || this.early.has(seq)) return true
    this.early.set(seq, message)
    if (this.early.size > MAX_EARLY) return false
    while (this.early.has(this.next)) {
      const m = this.early.get(this.next) as T
      this.early.delete(this.next)
      this.next++
      this.deliver(m)
    }
    return true
  }
}

/** The sender's side of the window. */
export class SendWindow {
  private sent = 0
  private acked = 0
  private waiters: Array<() => void> = []

  constructor(private readonly windowBytes = WINDOW_BYTES) {}

  /** True while more may be sent. */
  get open(): boolean {
    return this.sent - this.acked < this.windowBytes
  }

  sending(bytes: number): void {
    this.sent += bytes
  }

  /** The receiver has passed on `total` bytes of this stream so far. */
  acknowledged(total: number): void {
    if (total <= this.acked || total > this.sent) return
    this.acked = total
    if (!this.open) return
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  /** Resolves once the window is open (at once when it is). */
  whenOpen(): Promise<void> {
    return this.open ? Promise.resolve() : new Promise((resolve) => this.waiters.push(resolve))
  }
}

/** The receiver's side: counts bytes passed on and says when to acknowledge them. */
export class AckCounter {
  private passed = 0
  private told = 0

  /** Every byte passed on so far (what a keepalive answer acknowledges). */
  get total(): number {
    return this.passed
  }

  /** `bytes` were passed on; returns the total to acknowledge now, or undefined to wait for more. */
  passedOn(bytes: number, sinkIdle: boolean): number | undefined {
    this.passed += bytes
    if (this.passed === this.told) return undefined
    if (this.passed - this.told < ACK_EVERY_BYTES && !sinkIdle) return undefined
    this.told = this.passed
    return this.passed
  }
}
