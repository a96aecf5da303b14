// A Clock whose time moves only when a test says so.

import type { Clock } from '../../src/lib/clock.js'

export class FakeClock implements Clock {
  private t: number
  private timers: Array<{ at: number; fn: () => void; id: number }> = []
  private nextId = 0

  constructor(start = Date.parse('2026-01-01T00:00:00Z')) {
    this.t = start
  }

  now(): number {
    return this.t
  }

  monotonic(): number {
    return this.t
  }

  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const id = this.nextId++
    this.timers.push({ at: this.t + Math.max(0, ms), fn, id })
    return { cancel: () => void (this.timers = this.timers.filter((x) => x.id !== id)) }
  }

  get pendingTimers(): number {
    return this.timers.length
  }

  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.id - b.id)
      const next = this.timers[0]
      if (!next || next.at > end) break
      this.timers.shift()
      this.t = next.at
      next.fn()
    }
    this.t = end
  }
}
