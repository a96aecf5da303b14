// etcd watch responses as store events, for one watcher of the etcd store: revisions in store
// terms, each delivered once and in order (a resumed stream may repeat what was sent), only keys in
// the watcher's scope, a delete with the value it removed, and a value that is not a Bramble object
// skipped and logged.

import type { IWatchResponse, Watcher } from 'etcd3'
import type { Logger } from '../lib/logger.js'
import { placeholderOf, type EtcdKeyspace } from './etcd-keys.js'
import { inScope } from './lmdb-watchers.js'
import type { ListScope, StoreEvent } from './store.js'

export interface EtcdWatcher {
  scope: ListScope
  /** The newest revision (store terms) this watcher has been given or told it is past. */
  cursor: number
  stopped: boolean
  etcd?: Watcher
}

/** Hands `onEvent` what of `response` the watcher has not had; progress notifications move its cursor. */
export function deliverWatchResponse(keys: EtcdKeyspace, logger: Logger, state: EtcdWatcher, response: IWatchResponse, onEvent: (event: StoreEvent) => void): void {
  if (response.events.length === 0) {
    // A progress notification: etcd sends one only to a watch that has every event up to it.
    state.cursor = Math.max(state.cursor, keys.toStore(response.header.revision))
    return
  }
  for (const event of response.events) {
    const revision = keys.toStore(event.kv.mod_revision)
    // After a resumed stream etcd may send again what was delivered.
    if (revision <= state.cursor) continue
    state.cursor = revision
    const key = keys.keyOf(event.kv.key)
    if (key === undefined || !inScope(state.scope, key)) continue
    let storeEvent: StoreEvent
    try {
      if (event.type === 'Delete') {
        // The value as it was before the delete, stamped with the deleting revision.
        const object = event.prev_kv ? keys.decode(event.prev_kv) : placeholderOf(key)
        object.metadata.resourceVersion = String(revision)
        storeEvent = { type: 'DELETED', key, object, revision }
      } else {
        storeEvent = { type: event.kv.version === '1' ? 'ADDED' : 'MODIFIED', key, object: keys.decode(event.kv), revision }
      }
    } catch (error) {
      logger.error({ err: (error as Error).message, revision }, 'watch skipped a value it cannot read')
      continue
    }
    try {
      onEvent(storeEvent)
    } catch (error) {
      logger.error({ err: error, revision }, 'watch handler threw; event skipped for it')
    }
    if (state.stopped) return
  }
}
