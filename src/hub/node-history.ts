// The last hour of each node's heartbeats (CPU, memory, temperature), for the dashboard's charts.
// Memory only and bounded: a ring of samples per node, one per step (windowMs / capacity),
// heartbeats within a step averaged into one sample; never persisted (DESIGN.md keeps hot data
// off the SD card), so a restarted hub starts with empty charts. Times are the hub's monotonic
// clock, so a wall clock set late by NTP on a board without an RTC does not bend the charts.

export interface NodeSample {
  /** Monotonic ms when the sample's step began. */
  atMs: number
  /** Fraction of all cores, 0..1. */
  cpu: number
  /** Bytes in use. */
  memory: number
  /** °C, where the board reports it. */
  temperature?: number
}

export interface NodeHistoryOptions {
  /** How far back samples are kept (default one hour). */
  windowMs?: number
  /** Samples per node at most (default 720: one per 5 s over an hour). */
  capacity?: number
}

const DEFAULT_WINDOW_MS = 3_600_000
const DEFAULT_CAPACITY = 720

/** Samples a ring holds before it first grows (it doubles as it fills, up to its capacity). */
const INITIAL_SLOTS = 16

/**
 * One node's samples in a ring of number arrays, not an object per sample: at 10,000 nodes an hour
 * of objects is 7.2 million of them for the garbage collector to walk, kept for an hour. It grows
 * as it fills, so a node that joined a minute ago holds a minute's worth.
 */
class SampleRing {
  private atMs: Float64Array = new Float64Array(0)
  private cpu: Float64Array = new Float64Array(0)
  private memory: Float64Array = new Float64Array(0)
  /** NaN: the heartbeats of that step carried none. */
  private temperature: Float64Array = new Float64Array(0)
  private start = 0
  private length = 0
  /** Heartbeats averaged into the newest sample (its temperature average counts only those that had one). */
  private newestCount = 0
  private newestTemperatureCount = 0

  constructor(private readonly capacity: number) {
    this.resize(Math.min(capacity, INITIAL_SLOTS))
  }

  /** When the newest sample's step began, if there is one. */
  newestAtMs(): number | undefined {
    return this.length === 0 ? undefined : this.atMs[this.slot(this.length - 1)]
  }

  /** A new step's first heartbeat. */
  push(atMs: number, figures: Figures): void {
    if (this.length === this.atMs.length && this.length < this.capacity) this.resize(Math.min(this.capacity, this.length * 2))
    if (this.length < this.atMs.length) this.length++
    else this.start = (this.start + 1) % this.atMs.length
    const i = this.slot(this.length - 1)
    this.atMs[i] = atMs
    this.cpu[i] = figures.cpu
    this.memory[i] = figures.memory
    this.temperature[i] = figures.temperature ?? Number.NaN
    this.newestCount = 1
    this.newestTemperatureCount = figures.temperature === undefined ? 0 : 1
  }

  /** Another heartbeat within the newest sample's step: a running average. */
  average(figures: Figures): void {
    const i = this.slot(this.length - 1)
    const n = ++this.newestCount
    this.cpu[i]! += (figures.cpu - this.cpu[i]!) / n
    this.memory[i]! += (figures.memory - this.memory[i]!) / n
    if (figures.temperature !== undefined) {
      const m = ++this.newestTemperatureCount
      const before = this.temperature[i]!
      this.temperature[i] = Number.isNaN(before) ? figures.temperature : before + (figures.temperature - before) / m
    }
  }

  /** Drops samples older than `oldestMs` from the front. */
  dropBefore(oldestMs: number): void {
    while (this.length > 0 && this.atMs[this.start]! < oldestMs) {
      this.start = (this.start + 1) % this.atMs.length
      this.length--
    }
  }

  toArray(): NodeSample[] {
    const out: NodeSample[] = []
    for (let k = 0; k < this.length; k++) {
      const i = this.slot(k)
      const temperature = this.temperature[i]!
      out.push({ atMs: this.atMs[i]!, cpu: this.cpu[i]!, memory: this.memory[i]!, ...(Number.isNaN(temperature) ? {} : { temperature }) })
    }
    return out
  }

  /** Where the `k`th oldest sample is. */
  private slot(k: number): number {
    return (this.start + k) % this.atMs.length
  }

  /** New arrays of `size` slots holding the samples oldest first. */
  private resize(size: number): void {
    const grown = (old: Float64Array): Float64Array => {
      const next = new Float64Array(size)
      for (let k = 0; k < this.length; k++) next[k] = old[(this.start + k) % old.length]!
      return next
    }
    this.atMs = grown(this.atMs)
    this.cpu = grown(this.cpu)
    this.memory = grown(this.memory)
    this.temperature = grown(this.temperature)
    this.start = 0
  }
}

/** One heartbeat's figures: a sample without its time. */
type Figures = Omit<NodeSample, 'atMs'>

export class NodeHistory {
  readonly windowMs: number
  readonly capacity: number
  private readonly stepMs: number
  private readonly rings = new Map<string, SampleRing>()

  constructor(options: NodeHistoryOptions = {}) {
    this.windowMs = options.windowMs ?? DEFAULT_WINDOW_MS
    this.capacity = options.capacity ?? DEFAULT_CAPACITY
    if (!Number.isInteger(this.capacity) || this.capacity < 1) throw new RangeError(`NodeHistory capacity must be a positive integer, got ${options.capacity}`)
    if (!(this.windowMs > 0)) throw new RangeError(`NodeHistory windowMs must be positive, got ${options.windowMs}`)
    this.stepMs = this.windowMs / this.capacity
  }

  /** One heartbeat's figures, received at monotonic `atMs`. */
  record(node: string, figures: Figures, atMs: number): void {
    let ring = this.rings.get(node)
    if (!ring) this.rings.set(node, (ring = new SampleRing(this.capacity)))
    const newest = ring.newestAtMs()
    // Same step: a running average, so a burst of heartbeats neither floods the ring nor hides a spike's level.
    if (newest !== undefined && atMs - newest < this.stepMs) ring.average(figures)
    else ring.push(atMs, figures)
    ring.dropBefore(atMs - this.windowMs)
  }

  /** The node's samples within the window before `nowMs`, oldest first (copies). */
  samples(node: string, nowMs: number): NodeSample[] {
    const ring = this.rings.get(node)
    if (!ring) return []
    ring.dropBefore(nowMs - this.windowMs)
    return ring.toArray()
  }

  nodeNames(): string[] {
    return [...this.rings.keys()]
  }

  forget(node: string): void {
    this.rings.delete(node)
  }
}
