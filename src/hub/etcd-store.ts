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
import { readFileSync } from 'node:fs'
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel'
import { Etcd3, GRPCUnavailableError, type IKeyValue, type IOptions, type IWatchResponse, type Watcher } from 'etcd3'
import { apiVersionOf, KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { silentLogger, type Logger } from '../lib/logger.js'
import { DEFAULT_STORE_PREFIX, storeUrl, type EtcdTlsFiles } from '../lib/store-url.js'
import { StoreClosedError, StoreCompactedError, StoreConflictError, StoreExistsError, StoreFencedError, StoreFullError, StoreNotFoundError, StoreUnavailableError } from './errors.js'
import { inScope } from './lmdb-watchers.js'
import { resourceOf, type ListResult, type ListScope, type ObjectKey, type Store, type StoreEvent, type Watch, type WatchOptions, type WriteOptions } from './store.js'

export interface EtcdStoreOptions {
  /** Client URLs of the etcd members (`http://10.0.0.5:2379`). */
  endpoints: string[]
  /** Every key of this store starts with it (default `/bramble/`). */
  prefix?: string
  logger?: Logger
  clock?: Clock
  /** Revisions kept for watches (default 10,000); older ones are compacted automatically. */
  retainRevisions?: number
  /** Deadline of each etcd call (default 30 s): without a quorum a write fails instead of hanging. */
  callTimeoutMs?: number
  /** TLS files for https endpoints (`etcds://`). */
  tls?: EtcdTlsFiles
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
const DEFAULT_CALL_TIMEOUT_MS = 30_000
const ETCD_FULL_ADVICE =
  "etcd reached its space quota: delete objects, then compact and defragment etcd (etcdctl defrag) and clear its alarm (etcdctl alarm disarm), or raise etcd's --quota-backend-bytes"
/** An optimistic update retries when another writer got in between; past this many, it gives up. */
const MAX_WRITE_ATTEMPTS = 100

/** A client for the store's members, with the store's deadlines and message limits. */
export function connectEtcd(options: EtcdStoreOptions): { client: Etcd3; prefix: string; where: string } {
  const prefix = options.prefix ?? DEFAULT_STORE_PREFIX
  const timeout = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  // Only a member that cannot be reached (UNAVAILABLE: down, or between leaders) is a reason to
  // try again or, with several members, to rest it and ask another. The client's own defaults also
  // count errors of the whole cluster (a full quota) against a member, and then refuse even reads
  // for seconds; and they let a broken watch stream wait up to 30 s before it resumes.
  const unreachable = handleWhen((error) => error instanceof GRPCUnavailableError)
  const client = new Etcd3({
    hosts: options.endpoints,
    credentials: etcdCredentials(options.tls),
    dialTimeout: timeout,
    // A list of every pod can be large; etcd's own request limit bounds single objects.
    grpcOptions: { 'grpc.max_receive_message_length': 512 * 1024 * 1024 },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: {
      host: () => (options.endpoints.length > 1 ? circuitBreaker(unreachable, { halfOpenAfter: 2000, breaker: new ConsecutiveBreaker(3) }) : noop),
      global: retry(unreachable, { maxAttempts: 3, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }) }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
    },
  })
  return { client, prefix, where: storeUrl({ kind: 'etcd', endpoints: options.endpoints, prefix, tls: options.tls }) }
}

/**
 * The etcd client's TLS credentials from the files `--store-ca/--store-cert/--store-key` named;
 * undefined for plain http endpoints. An unreadable file is an error that names it.
 */
export function etcdCredentials(tls: EtcdTlsFiles | undefined): IOptions['credentials'] {
  if (tls === undefined) return undefined
  const read = (path: string | undefined, what: string): Buffer | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (error) {
      throw new Error(`cannot read etcd's ${what} ${path}: ${(error as Error).message}`)
    }
  }
  // Without a CA file, grpc-js takes null as "Node's default CAs" (etcd3's type wants a Buffer).
  const rootCertificate = read(tls.ca, 'CA certificate') ?? (null as unknown as Buffer)
  return { rootCertificate, certChain: read(tls.cert, 'client certificate'), privateKey: read(tls.key, 'client key') }
}

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

/** The first key after every key that starts with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix)
  end[end.length - 1]!++
  return end
}

/** What a delete event carries when etcd no longer has the value before it: the kind and the name. */
function placeholder(key: ObjectKey): KubeObject {
  const info = KINDS.find((k) => resourceOf(k.group, k.plural) === key.resource)
  const metadata = key.namespace ? { name: key.name, namespace: key.namespace } : { name: key.name }
  return { apiVersion: info ? apiVersionOf(info) : '', kind: info?.kind ?? '', metadata }
}

/** RFC 3339 at second precision, as Kubernetes writes timestamps. */
function timestamp(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z')
}

interface EtcdWatcher {
  scope: ListScope
  /** The newest revision (store terms) this watcher has been given or told it is past. */
  cursor: number
  stopped: boolean
  etcd?: Watcher
}

class EtcdStore implements FenceableStore {
  private readonly logger: Logger
  private readonly clock: Clock
  private readonly retain: number
  private readonly objectsPrefix: string
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
    private readonly prefix: string,
    private readonly where: string,
    /** Store revision = etcd revision + offset (a migrated store goes on above its old revisions). */
    private readonly offset: number,
    compacted: number,
    options: EtcdStoreOptions,
  ) {
    this.logger = (options.logger ?? silentLogger()).child({ component: 'etcd-store' })
    this.clock = options.clock ?? systemClock
    this.retain = Math.max(1, options.retainRevisions ?? DEFAULT_RETAIN_REVISIONS)
    this.objectsPrefix = `${prefix}o/`
    // History before the offset (an LMDB store's, before migration) is not here to replay.
    this.compacted = Math.max(offset, compacted)
    this.compactedWatch = client.watch().key(this.metaKey('compacted')).watcher()
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
    const k = this.keyBytes(key)
    const value = Buffer.from(JSON.stringify(next))
    const result = await this.txn([{ key: k, target: 'Create', result: 'Equal', create_revision: 0 }], [{ request_put: { key: k, value } }], fence)
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
    return kv === undefined ? undefined : this.decode(kv)
  }

  async list(scope: ListScope): Promise<ListResult> {
    this.assertOpen()
    const start = this.scopePrefix(scope)
    const result = await this.track(this.client.kv.range({ key: Buffer.from(start), range_end: prefixEnd(start) }))
    return { items: result.kvs.map((kv) => this.decode(kv)), revision: this.toStore(result.header.revision) }
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
    const start = this.scopePrefix(scope)
    const watcher = (state.etcd = this.client
      .watch()
      .prefix(start)
      .withPreviousKV()
      .startRevision(String(this.toEtcd(fromRevision) + 1))
      .watcher())
    // The client resumes a broken stream from the newest revision in a response's header, which
    // may lie past events a long replay has yet to send; resume from what was delivered instead.
    const resumeFromCursor = () => {
      watcher.request.start_revision = String(this.toEtcd(state.cursor) + 1)
    }
    watcher.on('connected', resumeFromCursor)
    watcher.on('data', (response: IWatchResponse) => {
      if (!state.stopped) this.deliver(state, response, onEvent)
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
    const result = await this.track(this.client.kv.range({ key: this.metaKey('compacted'), count_only: true }))
    return this.toStore(result.header.revision)
  }

  async compactedRevision(): Promise<number> {
    this.assertOpen()
    // Another hub on the same etcd may have compacted since.
    const result = await this.track(this.client.kv.range({ key: this.metaKey('compacted') }))
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
    await this.track(this.client.kv.put({ key: this.metaKey('compacted'), value: Buffer.from(String(target)) }))
    this.compacted = Math.max(this.compacted, target)
    try {
      // etcd keeps its compaction revision itself: a watch may start there, not below.
      await this.track(this.client.kv.compact({ revision: this.toEtcd(target) + 1 }))
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
    const k = this.keyBytes(key)
    let attempted: { result: KubeObject; value?: Buffer } | undefined
    for (let attempt = 0; attempt < MAX_WRITE_ATTEMPTS; attempt++) {
      const current = await this.readOne(key)
      // A put the client sent again after a broken connection may have committed the first time:
      // the key then holds exactly the bytes of the last attempt, and that write was this one.
      if (current !== undefined && attempted?.value?.equals(current.value)) return this.written(attempted.result, current.mod_revision)
      if (current === undefined) throw new StoreNotFoundError(key)
      const old = this.decode(current)
      const actual = old.metadata.resourceVersion!
      if (expected !== undefined && expected !== '' && expected !== actual) throw new StoreConflictError(key, expected, actual)
      const { compare, success, result, value } = plan(old, k, current.mod_revision)
      attempted = { result, value }
      const outcome = await this.txn(compare, success, fence)
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
    const revision = this.toStore(etcdRevision)
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

  private deliver(state: EtcdWatcher, response: IWatchResponse, onEvent: (event: StoreEvent) => void): void {
    if (response.events.length === 0) {
      // A progress notification: etcd sends one only to a watch that has every event up to it.
      state.cursor = Math.max(state.cursor, this.toStore(response.header.revision))
      return
    }
    for (const event of response.events) {
      const revision = this.toStore(event.kv.mod_revision)
      // After a resumed stream etcd may send again what was delivered.
      if (revision <= state.cursor) continue
      state.cursor = revision
      const key = this.keyOf(event.kv.key)
      if (key === undefined || !inScope(state.scope, key)) continue
      let storeEvent: StoreEvent
      try {
        if (event.type === 'Delete') {
          // The value as it was before the delete, stamped with the deleting revision.
          const object = event.prev_kv ? this.decode(event.prev_kv) : placeholder(key)
          object.metadata.resourceVersion = String(revision)
          storeEvent = { type: 'DELETED', key, object, revision }
        } else {
          storeEvent = { type: event.kv.version === '1' ? 'ADDED' : 'MODIFIED', key, object: this.decode(event.kv), revision }
        }
      } catch (error) {
        this.logger.error({ err: (error as Error).message, revision }, 'watch skipped a value it cannot read')
        continue
      }
      try {
        onEvent(storeEvent)
      } catch (error) {
        this.logger.error({ err: error, revision }, 'watch handler threw; event skipped for it')
      }
      if (state.stopped) return
    }
  }

  private async readOne(key: ObjectKey): Promise<IKeyValue | undefined> {
    const result = await this.track(this.client.kv.range({ key: this.keyBytes(key) }))
    return result.kvs[0]
  }

  private decode(kv: IKeyValue): KubeObject {
    let object: KubeObject | undefined
    try {
      object = JSON.parse(kv.value.toString()) as KubeObject
    } catch {
      object = undefined
    }
    if (typeof object !== 'object' || object === null || typeof object.metadata !== 'object' || object.metadata === null) {
      const key = JSON.stringify(kv.key.toString()).replace(/\\u0000/g, '\\0')
      throw new Error(`${this.where} holds ${key}, which is not a Bramble object; something else wrote under the store's prefix`)
    }
    object.metadata.resourceVersion = String(this.toStore(kv.mod_revision))
    return object
  }

  private keyBytes(key: ObjectKey): Buffer {
    return Buffer.from(`${this.objectsPrefix}${key.resource}\0${key.namespace}\0${key.name}`)
  }

  private keyOf(bytes: Buffer): ObjectKey | undefined {
    const text = bytes.toString()
    if (!text.startsWith(this.objectsPrefix)) return undefined
    const [resource, namespace, name] = text.slice(this.objectsPrefix.length).split('\0')
    return resource === undefined || namespace === undefined || name === undefined ? undefined : { resource, namespace, name }
  }

  /** `resource\0` or `resource\0namespace\0`: sorts by namespace, then name, as LMDB's keys do. */
  private scopePrefix(scope: ListScope): string {
    return `${this.objectsPrefix}${scope.resource}\0${scope.namespace === undefined ? '' : `${scope.namespace}\0`}`
  }

  private metaKey(name: string): Buffer {
    return Buffer.from(`${this.prefix}meta/${name}`)
  }

  private toStore(etcdRevision: string): number {
    return Number(etcdRevision) + this.offset
  }

  private toEtcd(revision: number): number {
    return Math.max(0, revision - this.offset)
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
