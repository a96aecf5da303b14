// IPv4 addresses and CIDR ranges as numbers: parsing, printing, normalising. No domain knowledge:
// the config schema validates its CIDR flags with it and src/mesh allocates from the ranges.

export interface Cidr {
  /** As written, normalised: `10.43.0.0/16`. */
  text: string
  /** The network address as an unsigned 32-bit number. */
  base: number
  prefix: number
  /** How many addresses the range spans, network and broadcast included. */
  size: number
}

/** `10.43.0.0/16` → a Cidr with a prefix of /8 to /30; throws a TypeError naming what is wrong. */
export function parseCidr(text: string): Cidr {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(text.trim())
  const address = m ? ipToNumber(m[1]!) : undefined
  if (!m || address === undefined) throw new TypeError(`must be an IPv4 CIDR such as 10.43.0.0/16, got "${text}"`)
  const prefix = Number(m[2])
  if (prefix < 8 || prefix > 30) throw new TypeError(`must have a prefix length between /8 and /30, got /${prefix}`)
  const size = 2 ** (32 - prefix)
  const base = address - (address % size)
  if (base !== address) throw new TypeError(`has host bits set in "${text}": did you mean ${numberToIp(base)}/${prefix}?`)
  return { text: `${numberToIp(base)}/${prefix}`, base, prefix, size }
}

/** `10.43.0.1` → 170590209; undefined for anything that is not a dotted IPv4 address. */
export function ipToNumber(ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let n = 0
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined
    n = n * 256 + Number(p)
  }
  return n
}

export function numberToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.')
}
