// How the store lays its data out in LMDB, for the store (lmdb-store.ts) and its maintenance
// (lmdb-maintenance.ts). One environment, three sub-databases:
//   objects  `resource\0namespace\0name` → the object
//   log      revision (number)           → { type, key, encoded }: the change log watches replay,
//                                          `encoded` the object's bytes as `objects` holds them
//   meta     'revision' | 'compacted'    → numbers
// Values are msgpack with shared structures (DATABASES): the keys of each object shape are stored
// once, in the database, instead of in every value. A write encodes its object once, with the
// objects database's encoder, and stores those bytes in both places (see StoredLogEntry).

import type { Database } from 'lmdb'
import type { KubeObject } from '../api/types.js'
import type { LogEntry } from './lmdb-watchers.js'
import type { ListScope, ObjectKey } from './store.js'

/**
 * How the objects and the change log are opened, by the store and by its maintenance. msgpackr's
 * shared structures: a value names its object shapes (a pod's metadata, spec, containers, ...)
 * by number, their keys stored once under STRUCTURES_KEY (which no key range reaches), rather than
 * spelling them out in every value. A pod's encoding is then less than half the size and decodes
 * several times faster: bench/sched's hub CPU per binding fell by a sixth. Values written before,
 * with their shapes inline, still decode. Past maxSharedStructures shapes (labels and ConfigMap
 * data with keys of their own), a value carries its new shapes inline again.
 */
const STRUCTURES_KEY = Symbol.for('structures')
export const DATABASES = {
  objects: { name: 'objects', sharedStructuresKey: STRUCTURES_KEY, maxSharedStructures: 256 },
  log: { name: 'log', sharedStructuresKey: STRUCTURES_KEY, maxSharedStructures: 256 },
  meta: { name: 'meta' },
}

/** `resource\0namespace\0name`: sorts by resource, then namespace, then name. */
export function encodeKey(key: ObjectKey): string {
  return `${key.resource}\0${key.namespace}\0${key.name}`
}

/** The key range of one resource (and namespace) in the objects database. */
export function scopeRange(scope: ListScope): { start: string; end: string } {
  const prefix = scope.namespace === undefined ? `${scope.resource}\0` : `${scope.resource}\0${scope.namespace}\0`
  return { start: prefix, end: `${prefix.slice(0, -1)}\x01` }
}

/**
 * A change-log value. Written now: `encoded`, the object's bytes from the objects database's
 * encoder (the same bytes the objects database stores, so a write encodes its object once; they
 * name that database's shared structures). Written before: `object`, encoded with the log's own.
 */
export interface StoredLogEntry {
  type: LogEntry['type']
  key: LogEntry['key']
  encoded?: Uint8Array
  object?: KubeObject
}

/** The msgpackr codec lmdb-js made for a database (with its shared structures); lmdb's types do not show it. */
function codecOf(db: Database<KubeObject, string>): { encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): unknown } {
  return (db as unknown as { encoder: { encode(value: unknown): Uint8Array; decode(bytes: Uint8Array): unknown } }).encoder
}

/** A log entry as it is stored now; inside a write transaction (a shape met first is saved with it). */
export function storedLogEntry(objects: Database<KubeObject, string>, entry: LogEntry): StoredLogEntry {
  return { type: entry.type, key: entry.key, encoded: codecOf(objects).encode(entry.object) }
}

/** The log entry a stored value holds; `objects` is the objects database its bytes were encoded for. */
export function logEntryOf(objects: Database<KubeObject, string>, stored: StoredLogEntry): LogEntry {
  const object = stored.encoded !== undefined ? (codecOf(objects).decode(stored.encoded) as KubeObject) : stored.object!
  return { type: stored.type, key: stored.key, object }
}
