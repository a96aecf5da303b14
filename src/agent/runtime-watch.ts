// The pod loop's watch on the container engine: its event stream says which pod to look at again.
// When the stream ends or the engine does not answer, the engine is unavailable (said to the node's
// Ready condition through onChange) and is watched for again with capped back-off; every pod is
// resynced once it answers again, and on a timer while it does.

import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { LABELS, type ContainerRuntime } from './container-runtime.js'

export interface RuntimeWatchOptions {
  runtime: ContainerRuntime
  clusterId: string
  clock: Clock
  logger: Logger
  /** Back-off between attempts to watch the engine's events again after it went away. */
  rewatch?: { minMs: number; maxMs: number }
  /** Every pod is looked at again this often, whatever the engine says (default 10 s). */
  resyncMs?: number
  /** A container of the pod started, stopped or went away: look at the pod again. */
  onPodEvent: (uid: string) => void
  /** Queues every pod; throws when the engine does not answer. */
  resync: () => Promise<void>
}

const DEFAULT_REWATCH = { minMs: 500, maxMs: 4_000 }
const POD_ACTIONS = new Set(['start', 'die', 'oom', 'destroy', 'stop', 'kill'])

export class RuntimeWatch {
  private watch?: { close(): void }
  private resyncTimer?: { cancel(): void }
  private rewatchTimer?: { cancel(): void }
  private rewatchAttempt = 0
  private stopped = false
  /** Why the engine cannot run pods now: its event stream is down, or it did not answer a resync. */
  private problem: string | undefined
  private readonly listeners = new Set<(problem: string | undefined) => void>()

  constructor(private readonly o: RuntimeWatchOptions) {}

  /** Watches the engine; one that does not answer yet is watched for until it does. */
  async start(): Promise<void> {
    await this.watchRuntime()
    this.scheduleResync()
  }

  stop(): void {
    this.stopped = true
    this.resyncTimer?.cancel()
    this.rewatchTimer?.cancel()
    this.watch?.close()
  }

  /** Why the container runtime cannot run pods now; undefined while it answers and its events flow. */
  unavailable(): string | undefined {
    return this.problem
  }

  /** Calls `cb` whenever unavailable() changes; returns a function that stops it. */
  onChange(cb: (problem: string | undefined) => void): () => void {
    this.listeners.add(cb)
    return () => this.listeners.delete(cb)
  }

  /** Opens the engine's event stream, then resyncs every pod (events were missed while it was down). */
  private async watchRuntime(): Promise<void> {
    if (this.stopped) return
    try {
      this.watch = await this.o.runtime.watchEvents(
        { [LABELS.cluster]: this.o.clusterId },
        (e) => {
          const uid = e.labels[LABELS.podUid]
          if (uid && POD_ACTIONS.has(e.action)) this.o.onPodEvent(uid)
        },
        (err) => this.lost(`its event stream ended${err ? `: ${err.message}` : ''}`),
      )
      await this.o.resync()
    } catch (err) {
      this.watch?.close()
      this.watch = undefined
      this.lost(`it does not answer: ${messageOf(err)}`)
      return
    }
    this.rewatchAttempt = 0
    this.setProblem(undefined)
  }

  private lost(why: string): void {
    if (this.stopped) return
    this.watch?.close()
    this.watch = undefined
    this.setProblem(`container runtime is down: ${why}`)
    if (this.rewatchTimer) return
    const { minMs, maxMs } = this.o.rewatch ?? DEFAULT_REWATCH
    const delay = Math.min(maxMs, minMs * 2 ** Math.min(this.rewatchAttempt++, 20))
    this.rewatchTimer = this.o.clock.setTimeout(() => {
      this.rewatchTimer = undefined
      void this.watchRuntime()
    }, delay)
  }

  private setProblem(problem: string | undefined): void {
    if (problem === this.problem) return
    const was = this.problem
    this.problem = problem
    if (problem && !was) this.o.logger.warn({ component: 'pod-reconciler', problem }, 'the container runtime is unavailable; pods wait for it')
    else if (!problem) this.o.logger.info({ component: 'pod-reconciler' }, 'the container runtime answers again')
    for (const cb of [...this.listeners]) cb(problem)
  }

  private scheduleResync(): void {
    if (this.stopped) return
    this.resyncTimer = this.o.clock.setTimeout(() => {
      // With the stream down, the rewatch resyncs once the engine is back.
      if (this.watch) void this.o.resync().catch((err) => this.lost(`it does not answer: ${messageOf(err)}`))
      this.scheduleResync()
    }, this.o.resyncMs ?? 10_000)
  }
}

function messageOf(err: unknown): string {
  return (err as Error)?.message ?? String(err)
}
