// Parsers for flag values: sizes, durations, CPU amounts, ports, names. Each throws FlagReason,
// which the config schema (config.ts) turns into a ConfigError naming the flag.

/** Thrown by a parse function; resolveFlags turns it into a ConfigError naming the flag. */
export class FlagReason extends Error {
  override readonly name = 'FlagReason'
}

/** A host name as a node name: lower case, dots and odd characters to '-', at most 63. */
export function hostnameAsNodeName(host: string): string {
  const name = host.toLowerCase().split('.')[0].replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63).replace(/-+$/, '')
  return name || 'node'
}

/** `100m`, `0.5`, `2` → millicores. */
export function parseMilliCpu(raw: string): number {
  const m = /^(\d+)m$/.exec(raw.trim())
  const value = m ? Number(m[1]) : /^\d+(\.\d{1,3})?$/.test(raw.trim()) ? Math.round(Number(raw.trim()) * 1000) : NaN
  if (!Number.isSafeInteger(value)) throw new FlagReason(`must be a CPU amount such as 100m or 0.5, got "${raw}"`)
  return value
}

export function parseInteger(raw: string, min: number, max: number, what: string): number {
  const n = /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new FlagReason(`must be ${what}, got "${raw}"`)
  return n
}

/** A plain decimal number (`0.55`, `2`) within (min, max]: min itself is refused. */
export function parseDecimal(raw: string, min: number, max: number, what: string): number {
  const n = /^\d+(\.\d+)?$/.test(raw.trim()) ? Number(raw.trim()) : NaN
  if (!Number.isFinite(n) || n <= min || n > max) throw new FlagReason(`must be ${what}, got "${raw}"`)
  return n
}

const BYTE_UNITS: Record<string, number> = { '': 1, k: 1e3, m: 1e6, g: 1e9, t: 1e12, ki: 1024, mi: 1024 ** 2, gi: 1024 ** 3, ti: 1024 ** 4 }

/** `1073741824`, `512Mi`, `2Gi`, `1G` (also with a trailing `B`) → bytes; at least 1 MiB. */
export function parseByteSize(raw: string): number {
  const m = /^(\d+)\s*([kmgt]i?)?b?$/i.exec(raw.trim())
  const bytes = m ? Number(m[1]) * BYTE_UNITS[(m[2] ?? '').toLowerCase()] : NaN
  if (!Number.isSafeInteger(bytes) || bytes < 1024 ** 2) throw new FlagReason(`must be a size of at least 1Mi (bytes, or with a unit: 512Mi, 2Gi), got "${raw}"`)
  return bytes
}

const DURATION_UNITS_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** `90s`, `15m`, `24h`, `1h30m`, `7d` → milliseconds (greater than zero). */
export function parseDurationMs(raw: string): number {
  const text = raw.trim()
  const parts = [...text.matchAll(/(\d+)(ms|s|m|h|d)/g)]
  const total = parts.reduce((sum, p) => sum + Number(p[1]) * DURATION_UNITS_MS[p[2]], 0)
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== text || total <= 0) {
    throw new FlagReason(`must be a duration such as 30m, 24h or 7d, got "${raw}"`)
  }
  return total
}

export function isDnsName(name: string): boolean {
  return name.length <= 253 && name.split('.').every((label) => /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/i.test(label))
}
