// A client's input to a pod stream (from a WebSocket or an upgraded socket), relayed in arrival
// order. The connection is not read while input waits for the node's window (pod-streams.ts), so a
// client that sends faster than the pod takes it cannot make the hub buffer more than that window.

export class InputQueue {
  private chain: Promise<void> = Promise.resolve()
  private queued = 0

  constructor(private readonly connection: { pause(): void; resume(): void }) {}

  push(step: () => Promise<void>): void {
    if (this.queued++ === 0) this.connection.pause()
    this.chain = this.chain
      .then(step)
      .catch(() => {})
      .finally(() => {
        if (--this.queued === 0) this.connection.resume()
      })
  }
}

