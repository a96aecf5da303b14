// Time as a port, so tests and the work queue can run on a fake clock.

export interface Clock {
  /** Wall time in ms since the epoch: for timestamps people read. */
  now(): number
  /** Monotonic ms: for durations, immune to wall-clock jumps. */
  monotonic(): number
  setTimeout(fn: () => void, ms: number): { cancel(): void }
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms)
    t.unref?.()
    return { cancel: () => clearTimeout(t) }
  },
}
