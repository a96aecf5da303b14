// The Store port on etcd (the etcd3 client), for hubs that share one etcd cluster. Keys live under
// a prefix (default `/bramble/`):
//   PREFIX o/resource\0namespace\0name   → the object as JSON, without its resourceVersion
//   PREFIX meta/revision-offset          → added to every etcd revision (set once, by migrate-store)
//   PREFIX meta/compacted                → the newest revision compacted away (store terms)
// etcd's own revision is the store revision (plus the offset): an object's resourceVersion is its
// key's mod revision, stamped on the way out, so a write never has to know its revision before it
// commits. Conditional writes are transactions comparing the key's create or mod revision; watches
// are etcd watches from a revision, with the previous value for deletes. etcd acknowledges a write
// once a quorum has it in its fsynced log: durable, as the Store port asks.

import { randomUUID } from 'node:crypto'
import type { Etcd3, IKeyValue, IWatchResponse, Watcher } from 'etcd3'
import type { KubeObject } from '../api/types.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { silentLogger, type Logger } from '../lib/logger.js'
import { connectEtcd, prefixEnd, type EtcdClientOptions } from './etcd-client.js'
import { EtcdKeyspace } from './etcd-keys.js'
import { deliverWatchResponse, type EtcdWatcher } from './etcd-watch-events.js'
import { StoreClosedError, StoreCompactedError, StoreConflictError, StoreExistsError, StoreFencedError, StoreFullError, StoreNotFoundError, StoreUnavailableError } from './errors.js'
import type { ListResult, ListScope, ObjectKey, Store, StoreEvent, Watch, WatchOptions, WriteOptions } from './store.js'

export interface EtcdStoreOptions extends EtcdClientOptions {
  logger?: Logger
  clock?: Clock
  /** Revisions kept for watches (default 10,000); older ones are compacted automatically. */
  retainRevisions?: number
}

/**
 * A leader's term (leader-election.ts): the election key and the create revision it had when this
 * hub won it. A write fenced by it commits only while the key is still that one.
 */
export interface EtcdFence {
  key: string
  createRevision: string
}

/** The etcd store, plus views of it whose writes are fenced by a leader's term. */
export interface FenceableStore extends Store {
  /** The same store, but every create, update and delete fails with StoreFencedError once the term is over. */
  fenced(fence: EtcdFence): Store
}

const DEFAULT_RETAIN_REVISIONS = 10_000
const ETCD_FULL_ADVICE =
  "etcd reached its space quota: delete objects, then compact and defragment etcd (etcdctl defrag) and clear its alarm (etcdctl alarm disarm), or raise etcd's --quota-backend-bytes"
/** An optimistic update retries when another writer got in between; past this many, it gives up. */
const MAX_WRITE_ATTEMPTS = 100

/** Opens the store; fails with StoreUnavailableError when no member answers. */
export async function openEtcdStore(options: EtcdStoreOptions): Promise<FenceableStore> {
  const { client, prefix, where } = connectEtcd(options)
  try {
    const meta = await client.kv.range({ key: Buffer.from(`${prefix}meta/`), range_end: prefixEnd(`${prefix}meta/`) })
    const value = (name: string) => Number(meta.kvs.find((kv) => kv.key.toString() === `${prefix}meta/${name}`)?.value.toString() ?? 0)
    return new EtcdStore(client, prefix, where, value('revision-offset'), value('compacted'), options)
  } catch (error) {
    client.close()
    throw new StoreUnavailableError(where, { cause: error })
  }
}

/** RFC 3339 at second precision, as Kubernetes writes timestamps. */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

class EtcdStore implements FenceableStore {
  private readonly logger: Logger
  private readonly clock: Clock
  private readonly retain: number
  private readonly keys: EtcdKeyspace
  private readonly watchers = new Set<EtcdWatcher>()
  private readonly inFlight = new Set<Promise<unknown>>()
  /** The newest revision compacted away, as far as this process knows. */
  private compacted: number
  private compacting = false
  private closed = false
  /** Follows `meta/compacted`, so a compaction by another hub on the same etcd is known here at once. */
  private readonly compactedWatch: Watcher

  constructor(
    private readonly client: Etcd3,
    prefix: string,
    private readonly where: string,
    /** Store revision = etcd revision + offset (a migrated store goes on above its old revisions). */
    offset: number,
    compacted: number,
    options: EtcdStoreOptions,
  ) {
    this.logger = (options.logger ?? silentLogger()).child({ component: 'etcd-store' })
    this.clock = options.clock ?? systemClock
    this.retain = Math.max(1, options.retainRevisions ?? DEFAULT_RETAIN_REVISIONS)
    this.keys = new EtcdKeyspace(prefix, where, offset)
    // History before the offset (an LMDB store's, before migration) is not here to replay.
    this.compacted = Math.max(offset, compacted)
    this.compactedWatch = client.watch().key(this.keys.metaKey('compacted')).watcher()
    this.compactedWatch.on('put', (kv: IKeyValue) => (this.compacted = Math.max(this.compacted, Number(kv.value.toString()))))
    this.compactedWatch.on('error', (error: Error) => this.logger.warn({ err: error.message }, 'lost sight of compactions by other hubs'))
    this.logger.info({ store: where, offset, compacted: this.compacted }, 'store opened')
  }

  fenced(fence: EtcdFence): Store {
    return {
      create: (key, object) => this.create(key, object, fence),
      get: (key) => this.get(key),
      list: (scope) => this.list(scope),
      update: (key, object, options) => this.update(key, object, options, fence),
      delete: (key, options) => this.delete(key, options, fence),
      watch: (scope, fromRevision, onEvent, options) => this.watch(scope, fromRevision, onEvent, options),
      revision: () => this.revision(),
      compactedRevision: () => this.compactedRevision(),
      compact: (revision) => this.compact(revision),
      copyTo: () => this.copyTo(),
      // The store itself stays open: its owner closes it.
      close: async () => undefined,
    }
  }

  async create(key: ObjectKey, object: KubeObject, fence?: EtcdFence): Promise<KubeObject> {
    this.assertOpen()
    const next: KubeObject = { ...object, metadata: { ...object.metadata } }
    next.metadata.uid ??= randomUUID()
    next.metadata.creationTimestamp ??= timestamp(this.clock.now())
    delete next.metadata.resourceVersion
    const k = this.keys.objectKey(key)
    const value = Buffer.from(JSON.stringify(next))
    let result: Awaited<ReturnType<EtcdStore['txn']>>
    try {
      result = await this.txn([{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }], [{ request_put: { key: k, value } }], fence)
    } catch (error) {
      return this.written(next, (await this.appliedThoughFull(error, key, value)).mod_revision)
    }
    if (result.succeeded) return this.written(next, result.header.revision)
    // The client sends a call again when the connection broke, also after etcd committed it: then
    // the key holds exactly these bytes (a fresh uid among them), and the create was this one.
    const current = await this.readOne(key)
    if (current?.value.equals(value)) return this.written(next, current.mod_revision)
    throw new StoreExistsError(key)
  }

  async get(key: ObjectKey): Promise<KubeObject | undefined> {
    this.assertOpen()
    const kv = await this.readOne(key)
    return kv === undefined ? undefined : this.keys.decode(kv)
  }

  async list(scope: ListScope): Promise<ListResult> {
    this.assertOpen()
    const start = this.keys.scopePrefix(scope)
    const result = await this.track(this.client.kv.range({ key: Buffer.from(start), range_end: prefixEnd(start) }))
    return { items: result.kvs.map((kv) => this.keys.decode(kv)), revision: this.keys.toStore(result.header.revision) }
  }

  async update(key: ObjectKey, object: KubeObject, options: WriteOptions = {}, fence?: EtcdFence): Promise<KubeObject> {
    this.assertOpen()
    const next: KubeObject = { ...object, metadata: { ...object.metadata } }
    delete next.metadata.resourceVersion
    return this.replace(key, options, (old, k, modRevision) => {
      // uid and creationTimestamp are set once, at create, as Kubernetes does.
      next.metadata.uid = old.metadata.uid
      next.metadata.creationTimestamp = old.metadata.creationTimestamp
      const value = Buffer.from(JSON.stringify(next))
      return {
        compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: modRevision }],
        success: [{ request_put: { key: k, value } }],
        result: next,
        value,
      }
    }, fence)
  }

  async delete(key: ObjectKey, options: WriteOptions = {}, fence?: EtcdFence): Promise<KubeObject> {
    this.assertOpen()
    return this.replace(key, options, (old, k, modRevision) => ({
      compare: [{ key: k, target: 'Mod', result: 'Equal', mod_revision: modRevision }],
      success: [{ request_delete_range: { key: k } }],
      result: old,
    }), fence)
  }

  /** Throws StoreCompactedError synchronously when `fromRevision` is older than the retained history. */
  watch(scope: ListScope, fromRevision: number, onEvent: (event: StoreEvent) => void, options: WatchOptions = {}): Watch {
    this.assertOpen()
    if (fromRevision < this.compacted) throw new StoreCompactedError(fromRevision, this.compacted)
    const state: EtcdWatcher = { scope: { ...scope }, cursor: fromRevision, stopped: false }
    this.watchers.add(state)
    const start = this.keys.scopePrefix(scope)
    const watcher = (state.etcd = this.client
      .watch()
      .prefix(start)
      .withPreviousKV()
      .startRevision(String(this.keys.toEtcd(fromRevision) + 1))
      .watcher())
    // The client resumes a broken stream from the newest revision in a response's header, which
    // may lie past events a long replay has yet to send; resume from what was delivered instead.
    const resumeFromCursor = () => {
      watcher.request.start_revision = String(this.keys.toEtcd(state.cursor) + 1)
    }
    watcher.on('connected', resumeFromCursor)
    watcher.on('data', (response: IWatchResponse) => {
      if (!state.stopped) deliverWatchResponse(this.keys, this.logger, state, response, onEvent)
      resumeFromCursor()
    })
    watcher.on('disconnected', (error: Error) => {
      if (!state.stopped) this.logger.warn({ err: error.message, scope, cursor: state.cursor }, 'watch lost its etcd stream; resuming')
    })
    watcher.on('error', (error: Error) => {
      if (state.stopped) return
      // etcd cancels a watch whose next revision was compacted away by another client: nothing
      // more can arrive on it.
      this.logger.error({ err: error.message, scope, cursor: state.cursor }, 'etcd ended a watch; it receives nothing more')
      state.stopped = true
      this.watchers.delete(state)
      options.onEnd?.(new StoreCompactedError(state.cursor, Math.max(this.compacted, state.cursor + 1)))
    })
    return {
      stop: () => {
        if (state.stopped) return
        state.stopped = true
        this.watchers.delete(state)
        watcher.cancel().catch((error: unknown) => this.logger.debug({ err: error }, 'cancelling an etcd watch failed'))
      },
    }
  }

  async revision(): Promise<number> {
    this.assertOpen()
    const result = await this.track(this.client.kv.range({ key: this.keys.metaKey('compacted'), count_only: true }))
    return this.keys.toStore(result.header.revision)
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen()
    // Another hub on the same etcd may have compacted since.
    const result = await this.track(this.client.kv.range({ key: this.keys.metaKey('compacted') }))
    const stored = Number(result.kvs[0]?.value.toString() ?? 0)
    this.compacted = Math.max(this.compacted, stored)
    return this.compacted
  }

  /**
   * Drops history at or below `revision`. Never past the newest revision, nor past what a running
   * watch of this store has yet to receive. The compacted revision is recorded first, so a crash in
   * between leaves watches refused that etcd could still serve, never the reverse.
   */
  async compact(revision: number): Promise<void> {
    this.assertOpen()
    const newest = await this.revision()
    let oldestCursor = Infinity
    for (const w of this.watchers) oldestCursor = Math.min(oldestCursor, w.cursor)
    const target = Math.min(revision, newest, oldestCursor)
    if (target <= this.compacted) return
    await this.track(this.client.kv.put({ key: this.keys.metaKey('compacted'), value: Buffer.from(String(target)) }))
    this.compacted = Math.max(this.compacted, target)
    try {
      // etcd keeps its compaction revision itself: a watch may start there, not below.
      await this.track(this.client.kv.compact({ revision: this.keys.toEtcd(target) + 1 }))
    } catch (error) {
      if (!/compacted/.test(String((error as Error).message))) throw error
    }
  }

  /** A copy of an etcd store is etcd's own snapshot (`etcdctl snapshot save`); this store makes none. */
  async copyTo(): Promise<number> {
    throw new Error(`backups of ${this.where} are etcd snapshots: run "etcdctl snapshot save FILE" against a member`)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    const watchers = [this.compactedWatch, ...[...this.watchers].map((w) => w.etcd!)]
    for (const w of this.watchers) w.stopped = true
    this.watchers.clear()
    await Promise.allSettled([...this.inFlight])
    // Cancelled watches leave the client nothing to reconnect; a stalled cancel does not hold close up.
    await Promise.race([Promise.allSettled(watchers.map((w) => w.cancel())), new Promise((resolve) => setTimeout(resolve, 2000).unref())])
    this.client.close()
    this.logger.info({ store: this.where }, 'store closed')
  }

  /**
   * An update or delete: read the object, check the expected resourceVersion, then write only if
   * the key is still at the revision read. Losing that race to another writer is a conflict when
   * the caller expected a resourceVersion, else a reason to read again.
   */
  private async replace(
    key: ObjectKey,
    options: WriteOptions,
    plan: (old: KubeObject, k: Buffer, modRevision: string) => { compare: object[]; success: object[]; result: KubeObject; value?: Buffer },
    fence?: EtcdFence,
  ): Promise<KubeObject> {
    const expected = options.expectedResourceVersion
    const k = this.keys.objectKey(key)
    let attempted: { result: KubeObject; value?: Buffer } | undefined
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await this.readOne(key)
      // A put the client sent again after a broken connection may have committed the first time:
      // the key then holds exactly the bytes of the last attempt, and that write was this one.
      if (current !== undefined && attempted?.value?.equals(current.value)) return this.written(attempted.result, current.mod_revision)
      if (current === undefined) throw new StoreNotFoundError(key)
      const old = this.keys.decode(current)
      const actual = old.metadata.resourceVersion!
      if (expected !== undefined && expected !== '' && expected !== actual) throw new StoreConflictError(key, expected, actual)
      const { compare, success, result, value } = plan(old, k, current.mod_revision)
      attempted = { result, value }
      let outcome: Awaited<ReturnType<EtcdStore['txn']>>
      try {
        outcome = await this.txn(compare, success, fence)
      } catch (error) {
        return this.written(result, (await this.appliedThoughFull(error, key, value, current.mod_revision)).mod_revision)
      }
      if (outcome.succeeded) return this.written(result, outcome.header.revision)
    }
    throw new StoreConflictError(key, expected ?? '', 'changing too fast to update')
  }

  /**
   * One write transaction. A fenced one also compares the election key's create revision with the
   * term's, and on failure reads the key back to tell a lost term from a lost race.
   */
  private async txn(compare: object[], success: object[], fence: EtcdFence | undefined): Promise<Awaited<ReturnType<Etcd3['kv']['txn']>>> {
    type Request = Parameters<Etcd3['kv']['txn']>[0]
    const send = (request: Request) =>
      this.track(
        this.client.kv.txn(request).catch((error: Error) => {
          // etcd past its --quota-backend-bytes raises its NOSPACE alarm: reads and deletes go on.
          if (!/database space exceeded/.test(error.message)) throw error
          throw new StoreFullError(this.where, { cause: error, advice: ETCD_FULL_ADVICE })
        }),
      )
    if (fence === undefined) return send({ compare, success } as Request)
    const fenceKey = Buffer.from(fence.key)
    const outcome = await send({
      compare: [...compare, { key: fenceKey, target: 'Create', result: 'Equal', create_revision: fence.createRevision }],
      success,
      failure: [{ request_range: { key: fenceKey } }],
    } as Request)
    if (!outcome.succeeded && outcome.responses[0]?.response_range?.kvs[0]?.create_revision !== fence.createRevision) throw new StoreFencedError(this.where, fence.key)
    return outcome
  }

  /** Stamps the revision a write took and starts automatic compaction when the history is long. */
  private written(object: KubeObject, etcdRevision: string): KubeObject {
    const revision = this.keys.toStore(etcdRevision)
    object.metadata.resourceVersion = String(revision)
    // Compact in slices of a tenth of the retained window, not on every write.
    const slack = Math.max(1, Math.ceil(this.retain / 10))
    if (!this.compacting && !this.closed && revision - this.compacted >= this.retain + slack) {
      this.compacting = true
      this.compact(revision - this.retain)
        .catch((error) => this.logger.warn({ err: error }, 'automatic compaction failed'))
        .finally(() => (this.compacting = false))
    }
    return object
  }

  /**
   * etcd checks its space quota as it takes a write and again as it applies it; a write that
   * crosses the quota in between (another write committed meanwhile) is applied and still answered
   * "database space exceeded". So a StoreFullError is only a refusal when the key does not hold
   * the bytes written (a create's carry a fresh uid) at a revision after `before`, the one the
   * write compared against; then `error` is rethrown. Anything but a StoreFullError is rethrown.
   */
  private async appliedThoughFull(error: unknown, key: ObjectKey, value: Buffer | undefined, before?: string): Promise<IKeyValue> {
    if (!(error instanceof StoreFullError) || value === undefined) throw error
    const current = await this.readOne(key)
    if (current === undefined || !current.value.equals(value) || current.mod_revision === before) throw error
    return current
  }

  private async readOne(key: ObjectKey): Promise<IKeyValue | undefined> {
    const result = await this.track(this.client.kv.range({ key: this.keys.objectKey(key) }))
    return result.kvs[0]
  }

  private track<T>(promise: Promise<T>): Promise<T> {
    const settled = promise.then(
      () => undefined,
      () => undefined,
    )
    this.inFlight.add(settled)
    void settled.then(() => this.inFlight.delete(settled))
    return promise
  }

  private assertOpen(): void {
    if (this.closed) throw new StoreClosedError(this.where)
  }
}
