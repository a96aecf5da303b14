// What the agent does while its replica cannot be written (a full disk): it says so once per
// streak, not once per message; pods keep running from the replica as it was; and every retryMs it
// asks the hub again for what changed since the replica's revision, so the desired state lands
// as soon as there is room again, with no new message from the hub needed.

import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'

export const REPLICA_RETRY_MS = 5_000

export interface ReplicaWriteRetryOptions {
  clock: Clock
  logger: Logger
  /** Asks the hub for the desired state again (an `up/sync` with the replica's revision). */
  resync(): void
  retryMs?: number
}

export class ReplicaWriteRetry {
  private failing = false
  private failures = 0
  private timer: { cancel(): void } | undefined
  private stopped = false

  constructor(private readonly o: ReplicaWriteRetryOptions) {}

  get isFailing(): boolean {
    return this.failing
  }

  failed(err: Error): void {
    this.failures++
    if (!this.failing) this.o.logger.error({ err: err.message, code: (err as { code?: string }).code }, 'could not store desired state; pods keep running from the replica as it was; retrying')
    this.failing = true
    this.schedule()
  }

  succeeded(): void {
    if (this.failing) this.o.logger.info({ failedWrites: this.failures }, 'desired state stored again')
    this.failing = false
    this.failures = 0
    this.timer?.cancel()
    this.timer = undefined
  }

  stop(): void {
    this.stopped = true
    this.timer?.cancel()
  }

  private schedule(): void {
    if (this.timer || this.stopped) return
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined
      if (this.failing && !this.stopped) this.o.resync()
    }, this.o.retryMs ?? REPLICA_RETRY_MS)
  }
}
