// Service addresses: which addresses of the service CIDR a Service may hold, and the lowest free
// address or node port given the ones taken. Pure: the hub keeps the leases (service-allocations.ts).

import { NODE_PORT_MAX, NODE_PORT_MIN } from '../api/validate-service.js'
import { ipToNumber, numberToIp, type Cidr } from '../lib/ipv4-cidr.js'

/** The NodePort range Kubernetes uses by default. */
export const NODE_PORT_RANGE = { min: NODE_PORT_MIN, max: NODE_PORT_MAX } as const

/** Whether `ip` is an address a Service may hold in `cidr`: inside it, neither network nor broadcast address. */
export function isAssignable(cidr: Cidr, ip: string): boolean {
  const n = ipToNumber(ip)
  return n !== undefined && n > cidr.base && n < cidr.base + cidr.size - 1
}

/** How many addresses of the range Services may hold. */
export function assignableCount(cidr: Cidr): number {
  return cidr.size - 2
}

/** The lowest assignable address not in `taken`, or undefined when the range is full. */
export function firstFreeIp(cidr: Cidr, taken: ReadonlySet<string>): string | undefined {
  for (let n = cidr.base + 1; n < cidr.base + cidr.size - 1; n++) {
    const ip = numberToIp(n)
    if (!taken.has(ip)) return ip
  }
  return undefined
}

/** The lowest port of the NodePort range not in `taken`, or undefined when it is full. */
export function firstFreeNodePort(taken: ReadonlySet<number>): number | undefined {
  for (let p = NODE_PORT_RANGE.min; p <= NODE_PORT_RANGE.max; p++) if (!taken.has(p)) return p
  return undefined
}
