// Random hex strings cut from a pool refilled 4 KiB at a time. Event names take one each, and the
// hub records an Event per binding and per agent report: a randomBytes call apiece cost more than
// the rest of the name.

import { randomBytes } from 'node:crypto'

const POOL_BYTES = 4096

export class RandomHex {
  private pool = Buffer.alloc(0)
  private offset = 0

  /** Each string holds `bytes` random bytes (twice as many hex digits). */
  constructor(private readonly bytes: number) {
    if (!Number.isInteger(bytes) || bytes < 1 || bytes > POOL_BYTES) throw new RangeError(`bytes must be a whole number from 1 to ${POOL_BYTES}, got ${bytes}`)
  }

  next(): string {
    if (this.offset + this.bytes > this.pool.length) {
      this.pool = randomBytes(POOL_BYTES)
      this.offset = 0
    }
    const hex = this.pool.toString('hex', this.offset, this.offset + this.bytes)
    this.offset += this.bytes
    return hex
  }
}
