// Spreads a burst of synchronous work over turns of the event loop: take() resolves at once while
// this turn has run for less than its budget of milliseconds (counted from the turn's first take),
// else on a later turn (setImmediate, after the loop has polled for I/O). A burst of thousands of
// decisions no longer holds the thread for seconds while sockets wait (at 10,000 nodes, heartbeats
// queued behind the scheduler), and cheap work still runs hundreds of items per turn.

import { performance } from 'node:perf_hooks'

export class TurnBudget {
  /** When this turn's first take ran; undefined until one runs. */
  private turnStart: number | undefined
  private nextTurn: Promise<void> | undefined

  constructor(
    private readonly msPerTurn: number,
    private readonly now: () => number = () => performance.now(),
  ) {}

  async take(): Promise<void> {
    for (;;) {
      if (this.turnStart === undefined) {
        this.turnStart = this.now()
        setImmediate(() => (this.turnStart = undefined))
        return
      }
      if (this.now() - this.turnStart < this.msPerTurn) return
      this.nextTurn ??= new Promise<void>((resolve) =>
        setImmediate(() => {
          this.nextTurn = undefined
          resolve()
        }),
      )
      await this.nextTurn
    }
  }
}
