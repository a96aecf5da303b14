// Kubernetes resource quantities (`500m`, `1.5`, `128Mi`, `1G`, `1e3`), with exact arithmetic.
// A quantity is held as an integer count of nano-units (BigInt): Kubernetes keeps nano precision
// and rounds anything finer up, so every quantity it accepts is exact here and sums never drift.

import { QuantityError } from './errors.js'

/** How a quantity is written back, taken from the suffix it was parsed with (as Kubernetes does). */
export type QuantityFormat = 'DecimalSI' | 'BinarySI' | 'DecimalExponent'

const NANO = 1_000_000_000n
const MAX_INPUT_LENGTH = 128
/** Bounds on the decimal exponent, so that `1e999999999` is refused instead of allocating forever. */
const MAX_EXPONENT = 64

const DECIMAL_SUFFIXES: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 }
const BINARY_SUFFIXES: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 }
const DECIMAL_BY_EXPONENT = new Map(Object.entries(DECIMAL_SUFFIXES).map(([s, e]) => [e, s]))
const BINARY_BY_EXPONENT = new Map(Object.entries(BINARY_SUFFIXES).map(([s, e]) => [e, s]))

const NUMBER = /^([+-]?)([0-9]*)(?:\.([0-9]*))?(.*)$/

export class Quantity {
  private constructor(
    /** The amount in nano-units. */
    readonly nanos: bigint,
    readonly format: QuantityFormat,
  ) {}

  /** Parses a quantity; throws QuantityError saying what is wrong. */
  static parse(input: string | number): Quantity {
    if (typeof input === 'number') {
      if (!Number.isFinite(input)) throw new QuantityError(String(input), 'not a finite number')
      return Quantity.parse(String(input))
    }
    if (typeof input !== 'string') throw new QuantityError(String(input), 'not a string or number')
    if (input.length === 0) throw new QuantityError(input, 'empty')
    if (input.length > MAX_INPUT_LENGTH) throw new QuantityError(input.slice(0, 32) + '...', `longer than ${MAX_INPUT_LENGTH} characters`)
    const m = NUMBER.exec(input)
    if (!m) throw new QuantityError(input, 'not a number')
    const [, sign, whole, frac = '', suffix] = m
    if (whole.length === 0 && frac.length === 0) throw new QuantityError(input, 'no digits before the suffix')
    const { base, exponent, format } = parseSuffix(input, suffix)
    const digits = BigInt(whole + frac || '0')
    // value = digits × 10^(-frac.length) × base^exponent, expressed in nanos and rounded up
    let num = digits * NANO
    let den = 10n ** BigInt(frac.length)
    if (exponent >= 0) num *= base ** BigInt(exponent)
    else den *= base ** BigInt(-exponent)
    let nanos = ceilDiv(num, den)
    if (sign === '-') nanos = -nanos
    return new Quantity(nanos, format)
  }

  /** Like parse, but answers undefined instead of throwing. */
  static tryParse(input: unknown): Quantity | undefined {
    if (typeof input !== 'string' && typeof input !== 'number') return undefined
    try {
      return Quantity.parse(input)
    } catch {
      return undefined
    }
  }

  static fromMilli(milli: bigint, format: QuantityFormat = 'DecimalSI'): Quantity {
    return new Quantity(milli * 1_000_000n, format)
  }

  static fromInt(value: bigint | number, format: QuantityFormat = 'DecimalSI'): Quantity {
    return new Quantity(BigInt(value) * NANO, format)
  }

  static zero(format: QuantityFormat = 'DecimalSI'): Quantity {
    return new Quantity(0n, format)
  }

  /** The amount in thousandths, rounded up (away from zero) as Kubernetes' MilliValue. */
  milliValue(): bigint {
    return roundAway(this.nanos, 1_000_000n)
  }

  /** The amount in whole units, rounded up (away from zero) as Kubernetes' Value. */
  value(): bigint {
    return roundAway(this.nanos, NANO)
  }

  /** The sum, in this quantity's format (Kubernetes keeps the receiver's). */
  add(other: Quantity): Quantity {
    return new Quantity(this.nanos + other.nanos, this.nanos === 0n && this.format === 'DecimalSI' ? other.format : this.format)
  }

  sub(other: Quantity): Quantity {
    return new Quantity(this.nanos - other.nanos, this.format)
  }

  /** -1, 0 or 1 as this is less than, equal to or greater than other. */
  cmp(other: Quantity): -1 | 0 | 1 {
    return this.nanos < other.nanos ? -1 : this.nanos > other.nanos ? 1 : 0
  }

  isZero(): boolean {
    return this.nanos === 0n
  }

  /** The canonical form, as Kubernetes' CanonicalizeBytes: `1.5` → `1500m`, `1024Mi` → `1Gi`. */
  toString(): string {
    if (this.nanos === 0n) return '0'
    const negative = this.nanos < 0n
    const abs = negative ? -this.nanos : this.nanos
    const sign = negative ? '-' : ''
    // Binary form only for whole amounts of at least 1024: below that, or with a fraction, decimal reads better.
    if (this.format === 'BinarySI' && abs % NANO === 0n && abs >= 1024n * NANO) {
      let amount = abs / NANO
      let exponent = 0
      while (exponent < 60 && amount % 1024n === 0n) {
        amount /= 1024n
        exponent += 10
      }
      return `${sign}${amount}${BINARY_BY_EXPONENT.get(exponent) ?? ''}`
    }
    let mantissa = abs
    let exponent = -9
    while (exponent < 18 && mantissa % 1000n === 0n) {
      mantissa /= 1000n
      exponent += 3
    }
    if (this.format === 'DecimalExponent') return `${sign}${mantissa}${exponent === 0 ? '' : `e${exponent}`}`
    return `${sign}${mantissa}${DECIMAL_BY_EXPONENT.get(exponent) ?? ''}`
  }

  toJSON(): string {
    return this.toString()
  }
}

function parseSuffix(input: string, suffix: string): { base: bigint; exponent: number; format: QuantityFormat } {
  if (Object.prototype.hasOwnProperty.call(DECIMAL_SUFFIXES, suffix)) return { base: 10n, exponent: DECIMAL_SUFFIXES[suffix], format: 'DecimalSI' }
  if (Object.prototype.hasOwnProperty.call(BINARY_SUFFIXES, suffix)) return { base: 2n, exponent: BINARY_SUFFIXES[suffix], format: 'BinarySI' }
  const e = /^[eE]([+-]?[0-9]+)$/.exec(suffix)
  if (e) {
    const exponent = Number(e[1])
    if (Math.abs(exponent) > MAX_EXPONENT) throw new QuantityError(input, `exponent ${e[1]} is out of range (at most ${MAX_EXPONENT} either way)`)
    return { base: 10n, exponent, format: 'DecimalExponent' }
  }
  throw new QuantityError(input, `unknown suffix "${suffix}" (use m, k, M, G, T, P, E, Ki, Mi, Gi, Ti, Pi, Ei or an exponent like e3)`)
}

function ceilDiv(num: bigint, den: bigint): bigint {
  return (num + den - 1n) / den
}

function roundAway(value: bigint, unit: bigint): bigint {
  if (value >= 0n) return ceilDiv(value, unit)
  return -ceilDiv(-value, unit)
}

/** Sums quantities exactly; the empty sum is zero. */
export function sumQuantities(quantities: Iterable<Quantity>): Quantity {
  let total = Quantity.zero()
  for (const q of quantities) total = total.add(q)
  return total
}
