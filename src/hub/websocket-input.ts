// A WebSocket client's input to a pod stream, relayed in arrival order. The socket is not read
// while input waits for the node's window (pod-streams.ts), so a client that sends faster than the
// pod takes it cannot make the hub buffer more than that window.

import type { WebSocket } from 'ws'

export class InputQueue {
  private chain: Promise<void> = Promise.resolve()
  private queued = 0

  constructor(private readonly ws: WebSocket) {}

  push(step: () => Promise<void>): void {
    if (this.queued++ === 0) this.ws.pause()
    this.chain = this.chain
      .then(step)
      .catch(() => {})
      .finally(() => {
        if (--this.queued === 0) this.ws.resume()
      })
  }
}

