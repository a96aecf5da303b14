// Watch fan-out for the LMDB store (nothing here is LMDB-specific). Every watcher keeps a cursor
// (the last revision it has seen); one pump reads the log once past the slowest cursor up to the newest durable revision
// and hands each entry to the watchers still behind it. Replay and live delivery are the same
// loop, so an event written while a replay runs is delivered once, in order, never skipped.

import type { Logger } from '../lib/logger.js'
import type { ListScope, ObjectKey, StoreEvent, StoreEventType, Watch } from './store.js'
import type { KubeObject } from '../api/types.js'

export interface LogEntry {
  type: StoreEventType
  key: ObjectKey
  object: KubeObject
}

/** A log entry as a pump reads it; `own`: the object its writer holds too (a write of this process), never handed to a receiver that may change it. */
export interface LogRead {
  revision: number
  entry: LogEntry
  own?: boolean
}

interface Watcher {
  scope: ListScope
  cursor: number
  onEvent: (event: StoreEvent) => void
  stopped: boolean
  /** Never changes what it is handed (WatchOptions.readOnly). */
  readOnly: boolean
}

export function inScope(scope: ListScope, key: ObjectKey): boolean {
  return key.resource === scope.resource && (scope.namespace === undefined || key.namespace === scope.namespace)
}

export class StoreWatchers {
  private readonly watchers = new Set<Watcher>()
  private pumping = false
  private pumpAgain = false
  private scheduled = false

  constructor(
    /**
     * Log entries with revision in (after, upTo], ascending; those whose key `wanted` refuses may
     * be left out (no watcher behind would receive them).
     */
    private readonly readLog: (after: number, upTo: number, wanted: (key: ObjectKey) => boolean) => Iterable<LogRead>,
    /** The newest revision known durable: watchers never see anything beyond it. */
    private readonly durableRevision: () => number,
    private readonly logger: Logger,
    /** Deep-freeze what read-only receivers share (LmdbStoreOptions.freezeShared: a check for tests). */
    private readonly freezeShared = false,
  ) {}

  add(scope: ListScope, fromRevision: number, onEvent: (event: StoreEvent) => void, readOnly = false): Watch {
    const watcher: Watcher = { scope: { ...scope }, cursor: fromRevision, onEvent, stopped: false, readOnly }
    this.watchers.add(watcher)
    // Deliver the replay on a later turn: the caller has not got its Watch handle yet.
    this.schedule()
    return {
      stop: () => {
        watcher.stopped = true
        this.watchers.delete(watcher)
      },
    }
  }

  /** The oldest revision some watcher still needs the log after; compaction must not pass it. */
  oldestCursor(): number {
    let oldest = Infinity
    for (const w of this.watchers) oldest = Math.min(oldest, w.cursor)
    return oldest
  }

  get size(): number {
    return this.watchers.size
  }

  stopAll(): void {
    for (const w of this.watchers) w.stopped = true
    this.watchers.clear()
  }

  schedule(): void {
    if (this.scheduled) return
    this.scheduled = true
    setImmediate(() => {
      this.scheduled = false
      this.pump()
    })
  }

  /** Brings every watcher up to the durable revision. Safe to call from inside onEvent. */
  pump(): void {
    if (this.pumping) {
      this.pumpAgain = true
      return
    }
    this.pumping = true
    try {
      do {
        this.pumpAgain = false
        this.pumpOnce()
      } while (this.pumpAgain)
    } finally {
      this.pumping = false
    }
  }

  private pumpOnce(): void {
    const target = this.durableRevision()
    const behind = [...this.watchers].filter((w) => w.cursor < target)
    if (behind.length === 0) return
    const from = Math.min(...behind.map((w) => w.cursor))
    const wanted = (key: ObjectKey) => behind.some((w) => !w.stopped && inScope(w.scope, key))
    for (const { revision, entry, own } of this.readLog(from, target, wanted)) {
      const receivers: Watcher[] = []
      for (const w of behind) {
        if (w.stopped || w.cursor >= revision) continue
        w.cursor = revision
        if (inScope(w.scope, entry.key)) receivers.push(w)
      }
      // A receiver that may change its object gets its own copy, made before any delivery; the
      // read-only ones share the object read from the log, or, with none, the last one takes it
      // (unless its writer holds it too).
      const shared = own === true || receivers.some((w) => w.readOnly)
      if (this.freezeShared && shared) deepFreeze(entry.object)
      const objects = receivers.map((w, i) => (w.readOnly || (!shared && i === receivers.length - 1) ? entry.object : structuredClone(entry.object)))
      receivers.forEach((w, i) => {
        if (w.stopped) return
        try {
          w.onEvent({ type: entry.type, key: { ...entry.key }, object: objects[i]!, revision })
        } catch (error) {
          this.logger.error({ err: error, revision }, 'watch handler threw; event skipped for it')
        }
      })
    }
    for (const w of behind) if (w.cursor < target) w.cursor = target
  }
}

/** Freezes `value` and everything it reaches; parts already frozen are taken as frozen throughout. */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value) || ArrayBuffer.isView(value)) return value
  Object.freeze(value)
  for (const v of Object.values(value)) deepFreeze(v)
  return value
}
