// Spreads a burst of synchronous work over turns of the event loop: take() resolves at once while
// this turn's budget lasts, else on a later turn (setImmediate, after the loop has polled for I/O),
// when the budget is whole again. A burst of thousands of decisions no longer holds the thread for
// seconds while sockets wait (at 10,000 nodes, heartbeats queued behind the scheduler).

export class TurnBudget {
  private used = 0
  private nextTurn: Promise<void> | undefined

  constructor(private readonly perTurn: number) {}

  async take(): Promise<void> {
    while (this.used >= this.perTurn) {
      this.nextTurn ??= new Promise<void>((resolve) =>
        setImmediate(() => {
          this.used = 0
          this.nextTurn = undefined
          resolve()
        }),
      )
      await this.nextTurn
    }
    this.used++
    // A turn that ends with budget to spare starts the next one whole.
    if (this.used === 1) setImmediate(() => (this.used = 0))
  }
}
