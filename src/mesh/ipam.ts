// IPv4 address management, pure: CIDR parsing (with typed errors naming the field) and arithmetic
// over src/lib/ipv4-cidr.ts's address numbers, and an allocator of equal blocks
// of a range (a /24 per node out of the cluster CIDR, a single address per Service out of the
// service CIDR) that skips reserved addresses. The allocator keeps its state in memory; callers
// rebuild it from what the store holds (claim) and write what it hands out.

import { ipToNumber, numberToIp, type Cidr } from '../lib/ipv4-cidr.js'
import { CidrInvalidError, IpamConflictError, IpamExhaustedError } from './errors.js'

export type { Cidr }

function cidrOf(base: number, prefix: number): Cidr {
  return { text: `${numberToIp(base)}/${prefix}`, base, prefix, size: 2 ** (32 - prefix) }
}

/**
 * `10.42.0.0/16` → a Cidr. Throws CidrInvalidError naming `field` for anything else: not IPv4,
 * a prefix outside minPrefix..maxPrefix, or host bits set (with the CIDR that was meant).
 */
export function parseCidr(text: string, field = 'CIDR', limits: { minPrefix?: number; maxPrefix?: number } = {}): Cidr {
  const { minPrefix = 0, maxPrefix = 32 } = limits
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(String(text).trim())
  const address = m ? ipToNumber(m[1]!) : undefined
  if (!m || address === undefined || Number(m[2]) > 32) throw new CidrInvalidError(field, String(text), `must be an IPv4 CIDR such as 10.42.0.0/16, got "${text}"`)
  const prefix = Number(m[2])
  if (prefix < minPrefix || prefix > maxPrefix) throw new CidrInvalidError(field, String(text), `must have a prefix length between /${minPrefix} and /${maxPrefix}, got /${prefix}`)
  const size = 2 ** (32 - prefix)
  const base = address - (address % size)
  if (base !== address) throw new CidrInvalidError(field, String(text), `has host bits set: did you mean ${numberToIp(base)}/${prefix}?`)
  return cidrOf(base, prefix)
}

export function containsIp(cidr: Cidr, ip: string | number): boolean {
  const n = typeof ip === 'number' ? ip : ipToNumber(ip)
  return n !== undefined && n >= cidr.base && n < cidr.base + cidr.size
}

/** Whether `inner` lies wholly inside `outer`. */
export function containsCidr(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && containsIp(outer, inner.base)
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + b.size && b.base < a.base + a.size
}

/** How many /blockPrefix blocks `range` holds. */
export function blockCount(range: Cidr, blockPrefix: number): number {
  return blockPrefix < range.prefix ? 0 : 2 ** (blockPrefix - range.prefix)
}

/** The `index`th /blockPrefix block of `range` (0 is the first). */
export function nthBlock(range: Cidr, blockPrefix: number, index: number): Cidr {
  if (!Number.isInteger(index) || index < 0 || index >= blockCount(range, blockPrefix)) throw new RangeError(`${range.text} has no /${blockPrefix} block number ${index}`)
  return cidrOf(range.base + index * 2 ** (32 - blockPrefix), blockPrefix)
}

/** The address `offset` places into the CIDR (1: the first host, the usual gateway). */
export function addressAt(cidr: Cidr, offset: number): string {
  if (!Number.isInteger(offset) || offset < 0 || offset >= cidr.size) throw new RangeError(`${cidr.text} has no address at offset ${offset}`)
  return numberToIp(cidr.base + offset)
}

export interface CidrAllocatorOptions {
  /** The range blocks come from: `10.42.0.0/16`. */
  range: string | Cidr
  /** Size of each block: 24 for node subnets, 32 for single addresses. */
  blockPrefix: number
  /**
   * Addresses or CIDRs never handed out; a block touching one is skipped. With single addresses
   * (/32) the range's network and broadcast addresses are reserved as well.
   */
  reserved?: string[]
  /** What a block is, for messages: `pod subnet`, `cluster IP`. */
  what?: string
}

/**
 * Hands out the lowest free block of a range; a block is written as a CIDR (`10.42.3.0/24`), a
 * single address (/32) as the bare address (`10.43.0.10`). Synchronous, so two callers in one
 * process never get the same block.
 */
export class CidrAllocator {
  readonly range: Cidr
  readonly blockPrefix: number
  private readonly blocks: number
  private readonly what: string
  /** Block index → holder (any string the caller chooses: a node name, a Service's uid). */
  private readonly held = new Map<number, string>()
  private readonly reserved = new Set<number>()

  constructor(o: CidrAllocatorOptions) {
    this.range = typeof o.range === 'string' ? parseCidr(o.range, 'range') : o.range
    if (!Number.isInteger(o.blockPrefix) || o.blockPrefix < this.range.prefix || o.blockPrefix > 32) {
      throw new CidrInvalidError('block size', `/${o.blockPrefix}`, `must be between /${this.range.prefix} (the range's own) and /32, got /${o.blockPrefix}`)
    }
    this.blockPrefix = o.blockPrefix
    this.blocks = blockCount(this.range, o.blockPrefix)
    this.what = o.what ?? (o.blockPrefix === 32 ? 'address' : `/${o.blockPrefix} block`)
    const reserved = [...(o.reserved ?? [])]
    if (o.blockPrefix === 32 && this.range.size > 2) reserved.push(numberToIp(this.range.base), numberToIp(this.range.base + this.range.size - 1))
    for (const r of reserved) {
      const cidr = r.includes('/') ? parseCidr(r, 'reserved') : parseCidr(`${r}/32`, 'reserved')
      if (!overlaps(cidr, this.range)) continue
      const first = Math.max(cidr.base, this.range.base)
      const last = Math.min(cidr.base + cidr.size, this.range.base + this.range.size) - 1
      for (let i = this.indexOf(first); i <= this.indexOf(last); i++) this.reserved.add(i)
    }
  }

  /** The lowest free block, now held by `holder`. Throws IpamExhaustedError when none is left. */
  allocate(holder: string): string {
    for (let i = 0; i < this.blocks; i++) {
      if (this.held.has(i) || this.reserved.has(i)) continue
      this.held.set(i, holder)
      return this.format(i)
    }
    throw new IpamExhaustedError(this.range.text, this.what)
  }

  /**
   * Marks a block (one handed out before, read back from the store) as held by `holder`.
   * Claiming what the same holder already holds is fine; throws IpamConflictError for a block
   * outside the range, not aligned to the block size, reserved, or held by another holder.
   */
  claim(block: string, holder: string): void {
    const i = this.indexOfBlock(block)
    const other = this.held.get(i)
    if (other !== undefined && other !== holder) throw new IpamConflictError(block, `is already held by ${other}`)
    if (this.reserved.has(i)) throw new IpamConflictError(block, `is reserved in ${this.range.text}`)
    this.held.set(i, holder)
  }

  /** Frees a block; false when it was not held (or is not a block of this range). */
  release(block: string): boolean {
    let i: number
    try {
      i = this.indexOfBlock(block)
    } catch {
      return false
    }
    return this.held.delete(i)
  }

  /** Who holds a block, if anyone. */
  holderOf(block: string): string | undefined {
    try {
      return this.held.get(this.indexOfBlock(block))
    } catch {
      return undefined
    }
  }

  /** Blocks handed out or claimed. */
  get used(): number {
    return this.held.size
  }

  /** Blocks that could still be handed out. */
  get free(): number {
    return this.blocks - this.reserved.size - this.held.size
  }

  private indexOf(address: number): number {
    return Math.floor((address - this.range.base) / 2 ** (32 - this.blockPrefix))
  }

  private format(index: number): string {
    const block = nthBlock(this.range, this.blockPrefix, index)
    return this.blockPrefix === 32 ? numberToIp(block.base) : block.text
  }

  private indexOfBlock(block: string): number {
    const text = String(block)
    const cidr = parseCidr(text.includes('/') ? text : `${text}/32`, this.what)
    if (cidr.prefix !== this.blockPrefix) throw new IpamConflictError(text, `is not a /${this.blockPrefix} ${this.what}`)
    if (!containsCidr(this.range, cidr)) throw new IpamConflictError(text, `is outside ${this.range.text}`)
    return this.indexOf(cidr.base)
  }
}
