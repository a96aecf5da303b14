// The Store port on LMDB (lmdb-js), in the layout of lmdb-layout.ts: objects, a change log and
// meta numbers in one environment.
// Every write runs as an lmdb-js async transaction callback: the check (exists? expected
// resourceVersion?) and the write happen inside one write transaction, so concurrent callers can
// never lose an update, and callbacks queued in the same event turn share one commit (group
// commit). A write resolves only after LMDB reports the commit flushed to disk (`env.flushed`).

import { randomUUID } from 'node:crypto'
import { asBinary, open, type Database, type RootDatabase } from 'lmdb'
import type { KubeObject } from '../api/types.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { explainCommitFailure, LMDB_WRITE_OPTIONS } from '../lib/lmdb-commit.js'
import { ensureOwnerOnlyDir, restrictFilesIn } from '../lib/owner-only.js'
import { silentLogger, type Logger } from '../lib/logger.js'
import { StoreClosedError, StoreCompactedError, StoreConflictError, StoreExistsError, StoreFullError, StoreNotFoundError } from './errors.js'
import { deepFreeze, StoreWatchers, type LogEntry, type LogRead } from './lmdb-watchers.js'
import { DATABASES, encodeKey, logEntryOf, scopeRange, storedLogEntry, type StoredLogEntry } from './lmdb-layout.js'
import type { ListResult, ListScope, ObjectKey, Store, StoreEvent, Watch, WatchOptions, WriteOptions } from './store.js'

export interface LmdbStoreOptions {
  /** Directory of the LMDB environment (created if missing). */
  path: string
  logger?: Logger
  clock?: Clock
  /**
   * Cap on the space the store's data may occupy, in bytes (default 1 GiB). lmdb-js grows its
   * memory map by itself, so the cap is enforced here: past it, creates and updates fail with
   * StoreFullError while reads and deletes keep working.
   */
  mapSizeBytes?: number
  /** Change-log entries kept for watches (default 10,000); older ones are compacted automatically. */
  retainRevisions?: number
  /**
   * A check for tests: deep-freezes each object a write returns (its caller's object shares its
   * parts) and each object handed to read-only watchers, so that code changing an object it shares
   * with the informers' caches throws a TypeError instead of changing what they hold. Off by
   * default: it walks every object written.
   */
  freezeShared?: boolean
}

const DEFAULT_MAP_SIZE_BYTES = 1024 * 1024 * 1024

const DEFAULT_RETAIN_REVISIONS = 10_000

export async function openLmdbStore(options: LmdbStoreOptions): Promise<Store> {
  ensureOwnerOnlyDir(options.path)
  const env = open({
    path: options.path,
    // Commit, then flush, inside the write lock: the commit promise means durable, and the
    // strace test shows the fdatasync between the data-file write and the acknowledgment.
    overlappingSync: false,
    noSync: false,
    noMetaSync: false,
    maxDbs: 4,
    ...LMDB_WRITE_OPTIONS,
  })
  restrictFilesIn(options.path)
  return new LmdbStore(env, options)
}

/** RFC 3339 at second precision, as Kubernetes writes timestamps. */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

/**
 * The object as the store writes and returns it: its own top level and metadata, which the store
 * stamps (the caller's object is left as it was), sharing the rest with the caller's object. No
 * deep copy: what is stored is its encoding, and every read or watch decodes a fresh object.
 */
function stamped(object: KubeObject): KubeObject {
  return { ...object, metadata: { ...object.metadata } }
}

type Outcome<T> = { ok: T; revision: number; entry: LogEntry } | { error: Error }

class LmdbStore implements Store {
  private readonly objects: Database<KubeObject, string>
  private readonly log: Database<StoredLogEntry, number>
  private readonly meta: Database<number, string>
  private readonly logger: Logger
  private readonly clock: Clock
  private readonly capBytes: number
  private readonly retain: number
  private readonly watchers: StoreWatchers
  private readonly inFlight = new Set<Promise<unknown>>()
  /** Log entries of revisions written since the store opened that a pump has yet to pass (see readLog). */
  private readonly written = new Map<number, LogEntry>()
  /** Newest revision known flushed; watchers see nothing beyond it. */
  private durable: number
  /** Mirrors meta 'compacted'; raised inside the compacting transaction callback. */
  private compacted: number
  private readonly path: string
  private full = false
  /** A write failed for want of disk space and none has succeeded since: said once per streak. */
  private outOfDisk = false
  private compacting = false
  private closed = false
  private readonly freezeShared: boolean

  constructor(
    private readonly env: RootDatabase,
    options: LmdbStoreOptions,
  ) {
    this.path = options.path
    this.freezeShared = options.freezeShared === true
    this.objects = env.openDB<KubeObject, string>(DATABASES.objects)
    this.log = env.openDB<StoredLogEntry, number>(DATABASES.log)
    this.meta = env.openDB<number, string>(DATABASES.meta)
    this.logger = (options.logger ?? silentLogger()).child({ component: 'lmdb-store' })
    this.clock = options.clock ?? systemClock
    this.capBytes = options.mapSizeBytes ?? DEFAULT_MAP_SIZE_BYTES
    this.retain = Math.max(1, options.retainRevisions ?? DEFAULT_RETAIN_REVISIONS)
    this.durable = this.meta.get('revision') ?? 0
    this.compacted = this.meta.get('compacted') ?? 0
    this.watchers = new StoreWatchers(
      (after, upTo, wanted) => this.readLog(after, upTo, wanted),
      () => this.durable,
      this.logger,
      options.freezeShared === true,
    )
    this.measure()
    this.logger.info({ path: options.path, revision: this.durable, compacted: this.compacted }, 'store opened')
  }

  async create(key: ObjectKey, object: KubeObject): Promise<KubeObject> {
    this.assertWritable(true)
    const next = stamped(object)
    return this.write((revision) => {
      const k = encodeKey(key)
      if (this.objects.get(k) !== undefined) return { error: new StoreExistsError(key) }
      const rev = revision()
      next.metadata.uid ??= randomUUID()
      next.metadata.creationTimestamp ??= timestamp(this.clock.now())
      next.metadata.resourceVersion = String(rev)
      const entry: LogEntry = { type: 'ADDED', key: { ...key }, object: next }
      this.putObject(rev, k, entry)
      return { ok: next, revision: rev, entry }
    })
  }

  async get(key: ObjectKey): Promise<KubeObject | undefined> {
    this.assertOpen()
    return this.objects.get(encodeKey(key))
  }

  async list(scope: ListScope): Promise<ListResult> {
    this.assertOpen()
    const txn = this.env.useReadTransaction()
    try {
      const items = [...this.objects.getRange({ ...scopeRange(scope), transaction: txn }).map(({ value }) => value)]
      return { items, revision: this.meta.get('revision', { transaction: txn }) ?? 0 }
    } finally {
      txn.done()
    }
  }

  async update(key: ObjectKey, object: KubeObject, options: WriteOptions = {}): Promise<KubeObject> {
    this.assertWritable(true)
    const next = stamped(object)
    return this.write((revision) => {
      const k = encodeKey(key)
      const old = this.objects.get(k)
      if (old === undefined) return { error: new StoreNotFoundError(key) }
      const conflict = this.conflict(key, old, options)
      if (conflict) return { error: conflict }
      const rev = revision()
      // uid and creationTimestamp are set once, at create, as Kubernetes does.
      next.metadata.uid = old.metadata.uid
      next.metadata.creationTimestamp = old.metadata.creationTimestamp
      next.metadata.resourceVersion = String(rev)
      const entry: LogEntry = { type: 'MODIFIED', key: { ...key }, object: next }
      this.putObject(rev, k, entry)
      return { ok: next, revision: rev, entry }
    })
  }

  async delete(key: ObjectKey, options: WriteOptions = {}): Promise<KubeObject> {
    this.assertWritable(false)
    return this.write((revision) => {
      const k = encodeKey(key)
      const old = this.objects.get(k)
      if (old === undefined) return { error: new StoreNotFoundError(key) }
      const conflict = this.conflict(key, old, options)
      if (conflict) return { error: conflict }
      const rev = revision()
      old.metadata.resourceVersion = String(rev)
      this.objects.removeSync(k)
      const entry: LogEntry = { type: 'DELETED', key: { ...key }, object: old }
      this.log.putSync(rev, storedLogEntry(this.objects, entry))
      return { ok: old, revision: rev, entry }
    })
  }

  /** Throws StoreCompactedError synchronously when `fromRevision` is older than the retained log. */
  watch(scope: ListScope, fromRevision: number, onEvent: (event: StoreEvent) => void, options: WatchOptions = {}): Watch {
    this.assertOpen()
    if (fromRevision < this.compacted) throw new StoreCompactedError(fromRevision, this.compacted)
    return this.watchers.add(scope, fromRevision, onEvent, options.readOnly === true)
  }

  async revision(): Promise<number> {
    this.assertOpen()
    return this.meta.get('revision') ?? 0
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen()
    return this.compacted
  }

  /**
   * Drops change-log entries at or below `revision`. Never compacts past the newest revision, nor
   * past what a running watch has yet to receive.
   */
  async compact(revision: number): Promise<void> {
    this.assertOpen()
    const done = this.env.transaction(() => {
      const newest = this.meta.get('revision') ?? 0
      const target = Math.min(revision, newest, this.watchers.oldestCursor())
      const from = this.meta.get('compacted') ?? 0
      if (target <= from) return
      for (const rev of this.log.getKeys({ start: from + 1, end: target + 1 })) this.log.removeSync(rev)
      this.meta.putSync('compacted', target)
      this.compacted = Math.max(this.compacted, target)
    })
    this.track(done)
    try {
      await done
      await this.env.flushed
    } catch (error) {
      throw await this.translate(error)
    }
    if (!this.closed) this.measure()
  }

  async copyTo(dir: string): Promise<number> {
    this.assertOpen()
    ensureOwnerOnlyDir(dir)
    // mdb_env_copy2 reads through one read transaction: the copy is one revision, never half a write.
    await this.env.backup(dir, true)
    restrictFilesIn(dir)
    const copy = open({ path: dir, readOnly: true, maxDbs: 4 })
    try {
      return copy.openDB<number, string>(DATABASES.meta).get('revision') ?? 0
    } finally {
      await copy.close()
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.watchers.stopAll()
    await Promise.allSettled([...this.inFlight])
    await this.env.flushed
    await this.env.close()
    this.logger.info({ revision: this.durable }, 'store closed')
  }

  /**
   * Runs `body` inside a write transaction. `body` must decide before writing anything: it
   * returns an error (nothing written) or its result with the revision it took.
   */
  private async write(body: (nextRevision: () => number) => Outcome<KubeObject>): Promise<KubeObject> {
    const committed = this.env.transaction(() =>
      body(() => {
        const next = (this.meta.get('revision') ?? 0) + 1
        this.meta.putSync('revision', next)
        return next
      }),
    )
    this.track(committed)
    let outcome: Outcome<KubeObject>
    try {
      outcome = await committed
      // With overlappingSync off a commit is flushed before it resolves; awaiting `flushed` keeps
      // the guarantee should that default ever change.
      await this.env.flushed
    } catch (error) {
      throw await this.translate(error)
    }
    if ('error' in outcome) throw outcome.error
    // Not when a pump already passed it (a later write of the same commit got there first).
    if (this.watchers.size > 0 && outcome.revision > this.durable) this.written.set(outcome.revision, outcome.entry)
    if (this.freezeShared) deepFreeze(outcome.ok)
    if (this.outOfDisk) this.logger.info('writes succeed again: the disk has room')
    this.outOfDisk = false
    this.afterWrite(outcome.revision)
    return outcome.ok
  }

  private afterWrite(revision: number): void {
    if (revision > this.durable) {
      this.durable = revision
      this.watchers.pump()
    }
    this.measureSoon()
    // Compact in slices of a tenth of the retained window, not on every write.
    const slack = Math.max(1, Math.ceil(this.retain / 10))
    if (!this.compacting && !this.closed && revision - this.compacted >= this.retain + slack) {
      this.compacting = true
      this.compact(revision - this.retain)
        .catch((error) => this.logger.warn({ err: error }, 'automatic compaction failed'))
        .finally(() => (this.compacting = false))
    }
  }

  /**
   * The log entries in (after, upTo] that `wanted` may want. An entry written by this process is
   * handed over as it was written, not read back and decoded (the object is the one the write
   * returned, so it is marked `own`: read-only receivers share it, the others get copies), or
   * skipped when its key is not wanted (most writes, Events above all, have no watch in scope).
   * Others are read from the log. A pump passes every watch beyond what it reads, so the entries
   * it passes are forgotten.
   */
  private *readLog(after: number, upTo: number, wanted: (key: ObjectKey) => boolean): Iterable<LogRead> {
    for (let revision = after + 1; revision <= upTo; revision++) {
      const written = this.written.get(revision)
      if (written !== undefined) {
        this.written.delete(revision)
        if (wanted(written.key)) yield { revision, entry: written, own: true }
        continue
      }
      const stored = this.log.get(revision)
      if (stored !== undefined) yield { revision, entry: logEntryOf(this.objects, stored) }
    }
  }

  /**
   * Inside a write transaction: the object under `k` and its log entry at `revision`, from one
   * encoding. The encoder saves a shape it meets first in this transaction; the bytes it returns
   * stay valid (it writes the next value after them, not over them).
   */
  private putObject(revision: number, k: string, entry: LogEntry): void {
    const stored = storedLogEntry(this.objects, entry)
    // asBinary: stored as these bytes, not encoded again (lmdb's types want the object type).
    this.objects.putSync(k, asBinary(stored.encoded!) as unknown as KubeObject)
    this.log.putSync(revision, stored)
  }

  private conflict(key: ObjectKey, stored: KubeObject, options: WriteOptions): StoreConflictError | undefined {
    const expected = options.expectedResourceVersion
    if (expected === undefined || expected === '') return undefined
    const actual = stored.metadata.resourceVersion ?? ''
    return expected === actual ? undefined : new StoreConflictError(key, expected, actual)
  }

  private track(promise: Promise<unknown>): void {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    )
    this.inFlight.add(settled)
    void settled.then(() => this.inFlight.delete(settled))
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.path)
  }

  private assertWritable(grows: boolean): void {
    this.assertOpen()
    if (grows && this.full) throw new StoreFullError(this.path)
  }

  private measureScheduled = false

  /** Re-measures usage once per burst of commits, not once per write. */
  private measureSoon(): void {
    if (this.measureScheduled) return
    this.measureScheduled = true
    setImmediate(() => {
      this.measureScheduled = false
      if (!this.closed) this.measure()
    })
  }

  /** Pages in use by the store's data (not the file's high-water mark, so deletes free room). */
  private measure(): void {
    let pages = 0
    for (const db of [this.objects, this.log, this.meta]) {
      const s = db.getStats() as { treeBranchPageCount: number; treeLeafPageCount: number; overflowPages: number; pageSize: number }
      pages += s.treeBranchPageCount + s.treeLeafPageCount + s.overflowPages
    }
    const pageSize = (this.env.getStats() as { pageSize: number }).pageSize
    const wasFull = this.full
    this.full = pages * pageSize >= this.capBytes
    if (this.full && !wasFull) this.logger.error({ usedBytes: pages * pageSize, capBytes: this.capBytes }, 'store is full')
  }

  /**
   * After a failed commit. A shape first met in it had its structure saved in it, so not in the
   * file; the encoders read the saved structures again before they next encode, instead of
   * naming one that was never stored (values that would not decode after a restart).
   */
  private reloadStructures(): void {
    for (const db of [this.objects, this.log]) {
      const structures = (db as unknown as { encoder?: { structures?: { uninitialized?: boolean } } }).encoder?.structures
      if (structures) structures.uninitialized = true
    }
  }

  /** A failed commit for want of room (a full disk) is a StoreFullError naming the free bytes; nothing was written. */
  private async translate(error: unknown): Promise<Error> {
    this.reloadStructures()
    const failure = await explainCommitFailure(error, this.path)
    if (!failure.noSpace) return failure.cause
    if (!this.outOfDisk) this.logger.error({ err: failure.cause.message, freeBytes: failure.freeBytes }, 'writes fail: the disk is full; reads go on; free space on it')
    this.outOfDisk = true
    return new StoreFullError(this.path, { cause: failure.cause, ...(failure.freeBytes !== undefined ? { freeBytes: failure.freeBytes } : {}) })
  }
}
