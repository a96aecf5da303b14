// Spreads a burst of work over turns of the event loop. Work asks to start (enter) and says when
// it is done (the release it was given); a start is granted while fewer than `maxInFlight` are
// running and this turn has run for less than its budget of milliseconds (counted from the turn's
// first start), else on a later turn (setImmediate, after the loop has polled for I/O). A burst of
// thousands of decisions or writes no longer holds the thread for seconds while sockets wait (at
// 10,000 nodes, heartbeats queued behind the scheduler and the node intake), and cheap work still
// runs hundreds of items per turn.
//
// The budget is judged when the next start is granted, after what was granted before has run:
// a grant waits for a release (or a free slot), so the time work takes is on the clock by then.
// Checking the clock when work *asks* to start would not do: a burst asks all at once, before any
// of it has run, and every ask would find the turn still fresh.

import { performance } from 'node:perf_hooks'

/** Ends a granted start; calling it again does nothing. */
export type Release = () => void

export class TurnBudget {
  /** When this turn's first start was granted; undefined until one is. */
  private turnStart: number | undefined
  private inFlight = 0
  private readonly waiting: Array<(release: Release) => void> = []
  private wakeQueued = false

  constructor(
    private readonly msPerTurn: number,
    private readonly maxInFlight = 1,
    private readonly now: () => number = () => performance.now(),
  ) {
    if (!(maxInFlight >= 1)) throw new RangeError(`maxInFlight must be at least 1, got ${maxInFlight}`)
  }

  /** Resolves when the work may start; call the release it gives once the work is done. */
  enter(): Promise<Release> {
    return new Promise((resolve) => {
      this.waiting.push(resolve)
      this.grant()
    })
  }

  /** Runs `work` once granted, and releases when it settles. */
  async run<T>(work: () => Promise<T> | T): Promise<T> {
    const release = await this.enter()
    try {
      return await work()
    } finally {
      release()
    }
  }

  private grant(): void {
    while (this.waiting.length > 0 && this.inFlight < this.maxInFlight) {
      const now = this.now()
      if (this.turnStart === undefined) {
        this.turnStart = now
        setImmediate(() => (this.turnStart = undefined))
      } else if (now - this.turnStart >= this.msPerTurn) {
        return this.wakeNextTurn()
      }
      this.inFlight++
      let released = false
      this.waiting.shift()!(() => {
        if (released) return
        released = true
        this.inFlight--
        this.grant()
      })
    }
  }

  /** Queued after the turn's reset, so the next turn starts whole. */
  private wakeNextTurn(): void {
    if (this.wakeQueued) return
    this.wakeQueued = true
    setImmediate(() => {
      this.wakeQueued = false
      this.grant()
    })
  }
}
