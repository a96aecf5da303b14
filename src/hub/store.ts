// The Store port: where the hub keeps cluster state. LMDB implements it (lmdb-store.ts); the
// contract suite in test/contract/store.ts holds every implementation to the same rules.

import type { KubeObject } from '../api/types.js'

/** Identifies one object: its resource (`pods`, `apps/deployments`), namespace ('' if cluster-scoped) and name. */
export interface ObjectKey {
  /** `plural` for the core group, `group/plural` otherwise. */
  resource: string
  namespace: string
  name: string
}

/** Selects a set of objects: one resource, optionally one namespace. */
export interface ListScope {
  resource: string
  /** undefined: every namespace. */
  namespace?: string
}

export type StoreEventType = 'ADDED' | 'MODIFIED' | 'DELETED'

export interface StoreEvent {
  type: StoreEventType
  key: ObjectKey
  /** For DELETED, the object as it was last, stamped with the deleting revision. */
  object: KubeObject
  revision: number
}

export interface ListResult {
  items: KubeObject[]
  /** The store revision the list was read at; a watch from here misses nothing. */
  revision: number
}

export interface WriteOptions {
  /** When set, the write fails with StoreConflictError unless the stored object has this resourceVersion. */
  expectedResourceVersion?: string
}

export interface Watch {
  stop(): void
}

export interface WatchOptions {
  /**
   * The receiver never changes the objects it is handed (an informer's cache), so every such
   * receiver of an event may share one object, with the writer too when this process wrote it;
   * otherwise each gets its own copy.
   */
  readOnly?: boolean
  /**
   * Called at most once when the store can deliver nothing more on this watch although nobody
   * stopped it: its next revision was compacted away behind its back (StoreCompactedError), as an
   * etcd store shared by several hubs can see. The watcher lists again and watches from the list's
   * revision. LMDB never ends a watch this way.
   */
  onEnd?: (error: Error) => void
}

export interface Store {
  /**
   * Stores a new object. Stamps `metadata.resourceVersion` (the new revision), and, when absent,
   * `metadata.uid` and `metadata.creationTimestamp`. Fails with StoreExistsError if the key is taken.
   * Resolves only once the write is durable.
   *
   * What a write (create, update, delete) resolves with may be the very object read-only
   * watchers receive, sharing parts with `object` (the LMDB store hands its own writes over
   * without decoding them): neither may be changed afterwards.
   */
  create(key: ObjectKey, object: KubeObject): Promise<KubeObject>
  get(key: ObjectKey): Promise<KubeObject | undefined>
  list(scope: ListScope): Promise<ListResult>
  /** Replaces an existing object (StoreNotFoundError if absent), stamping a new resourceVersion. */
  update(key: ObjectKey, object: KubeObject, options?: WriteOptions): Promise<KubeObject>
  /** Removes an object and returns it as it was, stamped with the deleting revision. */
  delete(key: ObjectKey, options?: WriteOptions): Promise<KubeObject>
  /**
   * Calls `onEvent` for every change in scope after `fromRevision`, in revision order, then for
   * each new one. Throws StoreCompactedError if `fromRevision` is older than the retained log.
   */
  watch(scope: ListScope, fromRevision: number, onEvent: (event: StoreEvent) => void, options?: WatchOptions): Watch
  /** The newest revision. */
  revision(): Promise<number>
  /** The oldest revision a watch may still start from. */
  compactedRevision(): Promise<number>
  /** Drops change-log entries at or below `revision`. */
  compact(revision: number): Promise<void>
  /**
   * Writes a consistent, compacted copy of the store into the empty directory `dir` while it keeps
   * serving (a backup); resolves with the revision the copy holds.
   */
  copyTo(dir: string): Promise<number>
  close(): Promise<void>
}

export function resourceOf(group: string, plural: string): string {
  return group === '' ? plural : `${group}/${plural}`
}
