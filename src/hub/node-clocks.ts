// How far each node's wall clock is from the hub's, learned from the time its heartbeats carry.
// Times a node writes into what it reports (its events, its pods' status) are moved by that much,
// so a node whose clock is minutes off still shows times that read right beside the hub's. Nothing
// is judged by a node's clock: liveness is the hub's monotonic time (heartbeats.ts).
//
// The kept offset moves only when a new reading differs from it by more than the tolerance, and
// in whole seconds: message latency must not make the same pod status differ from one report to
// the next (each difference would be a store write).

/** Offsets within this are network latency and ordinary drift, not worth correcting. */
export const SKEW_TOLERANCE_MS = 2_000

const EPOCH_2000 = Date.UTC(2000, 0, 1)
/** Fields of a pod status or an event that hold a node's RFC 3339 time. */
const TIME_FIELDS = new Set(['startTime', 'startedAt', 'finishedAt', 'lastTransitionTime', 'lastProbeTime', 'firstTimestamp', 'lastTimestamp'])

export class NodeClocks {
  private readonly offsets = new Map<string, number>()

  /**
   * A reading: the node's wall clock said `nodeNowMs` when the hub's said `hubNowMs`. Returns the
   * offset (hub minus node) when it changed, else undefined.
   */
  observe(node: string, nodeNowMs: number, hubNowMs: number): number | undefined {
    const measured = hubNowMs - nodeNowMs
    const kept = this.offsets.get(node) ?? 0
    if (Math.abs(measured - kept) <= SKEW_TOLERANCE_MS) return undefined
    const offset = Math.abs(measured) <= SKEW_TOLERANCE_MS ? 0 : Math.round(measured / 1000) * 1000
    this.offsets.set(node, offset)
    return offset
  }

  /** What to add to the node's times to make them the hub's (0 when unknown or within tolerance). */
  offsetMs(node: string): number {
    return this.offsets.get(node) ?? 0
  }

  forget(node: string): void {
    this.offsets.delete(node)
  }
}

/** A copy of `value` with every node time in it (TIME_FIELDS, at any depth) moved by `offsetMs`. */
export function shiftNodeTimes<T>(value: T, offsetMs: number): T {
  if (offsetMs === 0) return value
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk)
    if (typeof v !== 'object' || v === null) return v
    const out: Record<string, unknown> = {}
    for (const [k, inner] of Object.entries(v)) {
      const ms = TIME_FIELDS.has(k) && typeof inner === 'string' ? Date.parse(inner) : Number.NaN
      // Not a time: what does not parse, and the engine's zero time (0001-01-01) for "never".
      out[k] = Number.isNaN(ms) || ms < EPOCH_2000 ? walk(inner) : new Date(ms + offsetMs).toISOString().replace(/\.\d{3}Z$/, 'Z')
    }
    return out
  }
  return walk(value) as T
}

/** `7m5s ahead of` / `30s behind`: a skew as a sentence fragment. */
export function describeSkew(offsetMs: number): string {
  const seconds = Math.round(Math.abs(offsetMs) / 1000)
  const text = seconds >= 60 ? `${Math.floor(seconds / 60)}m${seconds % 60 ? `${seconds % 60}s` : ''}` : `${seconds}s`
  // offset = hub − node: a negative offset means the node's clock is ahead.
  return `${text} ${offsetMs < 0 ? 'ahead of' : 'behind'}`
}
