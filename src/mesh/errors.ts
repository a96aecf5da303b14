// Typed errors of address management (ipam.ts): a bad CIDR, a range with nothing left, an
// address or block that cannot be claimed. Each carries a stable code and what it is about.

export class CidrInvalidError extends Error {
  override readonly name = 'CidrInvalidError'
  readonly code = 'BRAMBLE_IPAM_CIDR_INVALID'
  /** What the value was for (`--cluster-cidr`, `spec.podCIDR`), so the message names it. */
  readonly field: string
  readonly value: string
  constructor(field: string, value: string, reason: string) {
    super(`${field} ${reason}`)
    this.field = field
    this.value = value
  }
}

export class IpamExhaustedError extends Error {
  override readonly name = 'IpamExhaustedError'
  readonly code = 'BRAMBLE_IPAM_EXHAUSTED'
  readonly range: string
  constructor(range: string, what: string) {
    super(`no free ${what} left in ${range}; free some or use a larger range`)
    this.range = range
  }
}

export class IpamConflictError extends Error {
  override readonly name = 'IpamConflictError'
  readonly code = 'BRAMBLE_IPAM_CONFLICT'
  readonly value: string
  constructor(value: string, reason: string) {
    super(`${value} ${reason}`)
    this.value = value
  }
}
