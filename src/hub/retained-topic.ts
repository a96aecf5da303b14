// A cluster-wide topic whose latest value the broker keeps retained (the mesh, the service
// catalog), so an agent gets the whole value whenever it subscribes. Changes within a short window
// go out as one message, an unchanged value is not sent again, and everything goes out again on
// each new broker session: a restarted broker has lost its retained messages.

import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'

export interface RetainedTopicOptions<T> {
  bus: Bus
  topic: string
  clock: Clock
  log: Logger
  /** Changes within this window go out as one message. */
  coalesceMs: number
  /** The value now and its payload; undefined when it must not go out (the builder says why). */
  build(): { value: T; payload: string } | undefined
  same(a: T, b: T): boolean
  /** What the value is, for log lines ("the mesh"). */
  what: string
  /** Called after each message the broker took. */
  onPublished?(value: T): void
}

export class RetainedTopic<T> {
  private published: T | undefined
  private timer: { cancel(): void } | undefined
  private sending: Promise<void> = Promise.resolve()
  private stopConnectionWatch: (() => void) | undefined
  private stopped = false

  constructor(private readonly o: RetainedTopicOptions<T>) {}

  /** Call once the bus is connected and the informers the value comes from have synced. */
  start(): void {
    this.stopConnectionWatch = this.o.bus.onConnectionChange((up) => {
      if (!up) return
      this.published = undefined
      this.changed()
    })
    this.changed()
  }

  /** The value may have changed: publish it after the coalescing window. */
  changed(): void {
    if (this.stopped || this.timer) return
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined
      this.sending = this.sending.then(() => this.publish())
    }, this.o.coalesceMs)
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.timer?.cancel()
    this.stopConnectionWatch?.()
    await this.sending
  }

  /** Resolves once the latest value is published (for tests). */
  async idle(): Promise<void> {
    while (this.timer) await new Promise((r) => setTimeout(r, 10))
    await this.sending
  }

  private async publish(): Promise<void> {
    const next = this.o.build()
    if (!next || (this.published !== undefined && this.o.same(next.value, this.published))) return
    try {
      await this.o.bus.publish(this.o.topic, next.payload, { qos: 1, retain: true })
      this.published = next.value
      this.o.onPublished?.(next.value)
    } catch (err) {
      this.o.log.warn({ err: (err as Error).message }, `could not publish ${this.o.what}; trying again at the next change or reconnect`)
    }
  }
}
