// What bench/fleet reads from the hub: its API over HTTPS with the admin token, as any client
// would, and its /metrics text, from which it takes counters and the heartbeat-lag histogram.
// Quantiles come from the histogram's buckets the way Prometheus's histogram_quantile() computes
// them (linear within the bucket), over the difference of two scrapes: the window between them.

import { Agent, request } from 'node:https'

export interface HubClient {
  json(method: string, path: string, body?: unknown): Promise<{ status: number; body: any }>
  text(path: string): Promise<string>
  close(): void
}

export function hubClient(server: string, token: string, ca: string): HubClient {
  const agent = new Agent({ ca, keepAlive: true, maxSockets: 8 })
  const call = (method: string, path: string, body?: string, contentType?: string) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request(new URL(path, server), { method, agent, timeout: 60_000, headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': contentType!, 'content-length': Buffer.byteLength(body) } : {}) } }, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }))
        res.on('error', reject)
      })
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: no answer within 60 s`)))
      req.on('error', reject)
      req.end(body)
    })
  return {
    async json(method, path, body) {
      const res = await call(method, path, body === undefined ? undefined : JSON.stringify(body), 'application/json')
      return { status: res.status, body: res.text ? JSON.parse(res.text) : undefined }
    },
    async text(path) {
      const res = await call('GET', path)
      if (res.status !== 200) throw new Error(`GET ${path}: HTTP ${res.status}: ${res.text.slice(0, 200)}`)
      return res.text
    },
    close: () => agent.destroy(),
  }
}

/** The sum of every sample of `name` whose labels include `labels` (0 when there is none). */
export function sampleSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let total = 0
  for (const { metric, labels: have, value } of samples(text)) {
    if (metric === name && Object.entries(labels).every(([k, v]) => have[k] === v)) total += value
  }
  return total
}

export interface Histogram {
  /** Cumulative counts by upper bound, ascending; the last bound is +Inf. */
  buckets: Array<{ le: number; count: number }>
  count: number
  sum: number
}

export function histogram(text: string, name: string): Histogram {
  const byBound = new Map<number, number>()
  for (const { metric, labels, value } of samples(text)) {
    if (metric === `${name}_bucket` && labels.le !== undefined) byBound.set(labels.le === '+Inf' ? Infinity : Number(labels.le), value)
  }
  const buckets = [...byBound].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le)
  return { buckets, count: sampleSum(text, `${name}_count`), sum: sampleSum(text, `${name}_sum`) }
}

/** What was observed between two scrapes of the same histogram. */
export function histogramDelta(before: Histogram, after: Histogram): Histogram {
  const earlier = new Map(before.buckets.map((b) => [b.le, b.count]))
  return {
    buckets: after.buckets.map((b) => ({ le: b.le, count: b.count - (earlier.get(b.le) ?? 0) })),
    count: after.count - before.count,
    sum: after.sum - before.sum,
  }
}

/** The q-quantile (0..1) as histogram_quantile() reads it; NaN with no observations. */
export function quantile(q: number, h: Histogram): number {
  const total = h.buckets.at(-1)?.count ?? 0
  if (total <= 0) return Number.NaN
  const rank = q * total
  let lower = 0
  let below = 0
  for (const { le, count } of h.buckets) {
    if (count >= rank) {
      // Past the last finite bound Prometheus answers that bound: the histogram knows no more.
      if (le === Infinity) return lower
      return lower + (le - lower) * ((rank - below) / Math.max(count - below, 1e-9))
    }
    lower = le
    below = count
  }
  return lower
}

function* samples(text: string): Generator<{ metric: string; labels: Record<string, string>; value: number }> {
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)/.exec(line)
    if (!m) continue
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => [l[1]!, l[2]!]))
    yield { metric: m[1]!, labels, value: Number(m[3]) }
  }
}
