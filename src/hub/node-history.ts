// The last hour of each node's heartbeats (CPU, memory, temperature), for the dashboard's charts.
// Memory only and bounded: a fixed ring of samples per node, one per step (windowMs / capacity),
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

/** A fixed-size ring of one node's samples; `count` heartbeats were averaged into the newest. */
class SampleRing {
  private readonly slots: Array<NodeSample | undefined>
  private start = 0
  private length = 0
  /** Heartbeats averaged into the newest sample (its temperature average counts only those that had one). */
  newestCount = 0
  newestTemperatureCount = 0

  constructor(capacity: number) {
    this.slots = new Array(capacity)
  }

  newest(): NodeSample | undefined {
    return this.length === 0 ? undefined : this.slots[(this.start + this.length - 1) % this.slots.length]
  }

  push(sample: NodeSample): void {
    if (this.length < this.slots.length) this.length++
    else this.start = (this.start + 1) % this.slots.length
    this.slots[(this.start + this.length - 1) % this.slots.length] = sample
  }

  /** Drops samples older than `oldestMs` from the front. */
  dropBefore(oldestMs: number): void {
    while (this.length > 0 && this.slots[this.start]!.atMs < oldestMs) {
      this.slots[this.start] = undefined
      this.start = (this.start + 1) % this.slots.length
      this.length--
    }
  }

  toArray(): NodeSample[] {
    const out: NodeSample[] = []
    for (let i = 0; i < this.length; i++) out.push({ ...this.slots[(this.start + i) % this.slots.length]! })
    return out
  }
}

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
  record(node: string, figures: { cpu: number; memory: number; temperature?: number }, atMs: number): void {
    let ring = this.rings.get(node)
    if (!ring) this.rings.set(node, (ring = new SampleRing(this.capacity)))
    const newest = ring.newest()
    if (newest && atMs - newest.atMs < this.stepMs) {
      // Same step: a running average, so a burst of heartbeats neither floods the ring nor hides a spike's level.
      const n = ++ring.newestCount
      newest.cpu += (figures.cpu - newest.cpu) / n
      newest.memory += (figures.memory - newest.memory) / n
      if (figures.temperature !== undefined) {
        const m = ++ring.newestTemperatureCount
        newest.temperature = newest.temperature === undefined ? figures.temperature : newest.temperature + (figures.temperature - newest.temperature) / m
      }
    } else {
      ring.push({ atMs, cpu: figures.cpu, memory: figures.memory, ...(figures.temperature === undefined ? {} : { temperature: figures.temperature }) })
      ring.newestCount = 1
      ring.newestTemperatureCount = figures.temperature === undefined ? 0 : 1
    }
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
