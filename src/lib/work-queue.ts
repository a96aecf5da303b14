// A work queue of keys, not events (STYLE.md §1): adding a key twice before it runs runs it once;
// a key never runs twice at the same time (one added while running runs again afterwards); a
// failing handler requeues its key with per-key exponential back-off. Time comes from a Clock.

import type { Clock } from './clock.js'

export interface WorkQueueOptions {
  clock: Clock
  /** How many keys run at once. */
  workers?: number
  /** First rate-limited delay; doubles per consecutive failure of a key. */
  baseDelayMs?: number
  maxDelayMs?: number
  /** Called with a handler's error before the key is requeued. */
  onError?: (key: unknown, error: unknown) => void
}

export type WorkHandler<K> = (key: K) => Promise<void>

export class WorkQueue<K> {
  private readonly clock: Clock
  private readonly workers: number
  private readonly baseDelayMs: number
  private readonly maxDelayMs: number
  private readonly onError?: (key: unknown, error: unknown) => void

  /** Keys waiting to run, in order; `queued` mirrors it for dedupe. */
  private readonly order: K[] = []
  private readonly queued = new Set<K>()
  private readonly running = new Set<K>()
  /** Keys added while running: they go back in the queue when their run ends. */
  private readonly dirty = new Set<K>()
  private readonly timers = new Map<K, { at: number; cancel(): void }>()
  private readonly failures = new Map<K, number>()
  private handler?: WorkHandler<K>
  private stopped = false
  private idleWaiters: Array<() => void> = []

  constructor(options: WorkQueueOptions) {
    this.clock = options.clock
    this.workers = Math.max(1, options.workers ?? 1)
    this.baseDelayMs = options.baseDelayMs ?? 5
    this.maxDelayMs = options.maxDelayMs ?? 60_000
    this.onError = options.onError
  }

  /** Queues a key to run as soon as a worker is free (deduplicated). */
  add(key: K): void {
    if (this.stopped) return
    this.cancelTimer(key)
    if (this.running.has(key)) {
      this.dirty.add(key)
      return
    }
    if (this.queued.has(key)) return
    this.queued.add(key)
    this.order.push(key)
    this.pump()
  }

  /** Queues a key after a delay; an earlier pending delay for the key wins. */
  addAfter(key: K, ms: number): void {
    if (this.stopped) return
    if (ms <= 0) return this.add(key)
    const at = this.clock.monotonic() + ms
    const pending = this.timers.get(key)
    if (pending && pending.at <= at) return
    pending?.cancel()
    const timer = this.clock.setTimeout(() => {
      this.timers.delete(key)
      this.add(key)
    }, ms)
    this.timers.set(key, { at, cancel: () => timer.cancel() })
  }

  /** Queues a key after its back-off: base × 2^(failures so far), capped. */
  addRateLimited(key: K): void {
    const failures = this.failures.get(key) ?? 0
    this.failures.set(key, failures + 1)
    this.addAfter(key, this.delayFor(failures))
  }

  /** Forgets a key's failures, so its next rate-limited add waits the base delay. */
  forget(key: K): void {
    this.failures.delete(key)
  }

  /** How many consecutive failures the key has had. */
  failuresOf(key: K): number {
    return this.failures.get(key) ?? 0
  }

  get length(): number {
    return this.order.length
  }

  start(handler: WorkHandler<K>): void {
    if (this.handler) throw new Error('work queue already started')
    this.handler = handler
    this.pump()
  }

  /** Stops taking work, drops pending delays and waits for running keys to finish. */
  async stop(): Promise<void> {
    this.stopped = true
    for (const t of this.timers.values()) t.cancel()
    this.timers.clear()
    this.order.length = 0
    this.queued.clear()
    this.dirty.clear()
    await this.idle()
  }

  /** Resolves once no key is queued or running (delayed keys do not count). */
  idle(): Promise<void> {
    if (this.order.length === 0 && this.running.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  private delayFor(failures: number): number {
    return Math.min(this.maxDelayMs, this.baseDelayMs * 2 ** Math.min(failures, 52))
  }

  private cancelTimer(key: K): void {
    const t = this.timers.get(key)
    if (t) {
      t.cancel()
      this.timers.delete(key)
    }
  }

  private pump(): void {
    if (!this.handler || this.stopped) return
    while (this.running.size < this.workers && this.order.length > 0) {
      const key = this.order.shift() as K
      this.queued.delete(key)
      this.running.add(key)
      void this.run(key)
    }
  }

  private async run(key: K): Promise<void> {
    try {
      await this.handler!(key)
    } catch (error) {
      this.onError?.(key, error)
      this.running.delete(key)
      if (!this.dirty.delete(key)) this.addRateLimited(key)
      else this.add(key)
      this.afterRun()
      return
    }
    this.running.delete(key)
    if (this.dirty.delete(key)) this.add(key)
    this.afterRun()
  }

  private afterRun(): void {
    this.pump()
    if (this.order.length === 0 && this.running.size === 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const w of waiters) w()
    }
  }
}
