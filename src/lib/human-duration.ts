// Ages as kubectl prints them (Kubernetes' duration.HumanDuration): `45s`, `3m20s`, `5h`, `3d4h`.
// The hub's tables and the client's describe both use it.

/** How long ago `timestamp` (RFC 3339) was at `now` (ms since the epoch); `<unknown>` when unreadable. */
export function humanAge(timestamp: string | undefined, now: number): string {
  if (!timestamp) return '<unknown>'
  const ms = now - Date.parse(timestamp)
  return Number.isNaN(ms) ? '<unknown>' : humanDuration(Math.max(0, ms))
}

export function humanDuration(ms: number): string {
  const s = Math.floor(ms / 1000)
  if (s < 120) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 10) return s % 60 ? `${m}m${s % 60}s` : `${m}m`
  if (m < 180) return `${m}m`
  const h = Math.floor(m / 60)
  if (h < 48) return m % 60 && h < 8 ? `${h}h${m % 60}m` : `${h}h`
  const d = Math.floor(h / 24)
  if (d < 8) return h % 24 ? `${d}d${h % 24}h` : `${d}d`
  if (d < 365 * 2) return `${d}d`
  return `${Math.floor(d / 365)}y`
}
