// `watch=true`: a newline-delimited JSON stream of {type, object}, from a revision or from a list.

import type { ServerResponse } from 'node:http'
import type { KindInfo } from '../api/kinds.js'
import type { KubeObject, WatchEventType } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import { ApiError, badRequest, gone } from './api-errors.js'
import type { Registry } from './registry.js'
import type { StoreEvent } from './store.js'
import { toTable } from './tables.js'

export interface WatchRequest {
  info: KindInfo
  namespace: string | undefined
  /** undefined or '0': start with the current state as ADDED events. */
  resourceVersion: string | undefined
  matches: (object: KubeObject) => boolean
  /** True when the caller filtered by selectors: objects leaving the selection become DELETED. */
  filtered: boolean
  timeoutSeconds: number | undefined
  asTable: boolean
}

/** Watches never outlive this, as the API server's own minimum request timeout. */
const MAX_WATCH_SECONDS = 1800

/**
 * A watcher that leaves more than this unread is cut off (it lists and watches again, as after any
 * ended watch) rather than buffered for without bound, as Kubernetes closes unresponsive watchers.
 */
export const MAX_UNREAD_WATCH_BYTES = 8 * 1024 * 1024

export async function serveWatch(registry: Registry, clock: Clock, req: WatchRequest, res: ServerResponse, onClose: (fn: () => void) => void): Promise<void> {
  let fromRevision: number
  const initial: KubeObject[] = []
  if (req.resourceVersion === undefined || req.resourceVersion === '' || req.resourceVersion === '0') {
    const list = await registry.list(req.info, req.namespace)
    fromRevision = list.revision
    initial.push(...list.items.filter(req.matches))
  } else {
    fromRevision = Number(req.resourceVersion)
    if (!Number.isSafeInteger(fromRevision) || fromRevision < 0) throw badRequest(`resourceVersion "${req.resourceVersion}" is not a valid revision`)
  }

  res.writeHead(200, { 'Content-Type': 'application/json', 'Cache-Control': 'no-cache', 'Transfer-Encoding': 'chunked' })
  // Send the headers now: a watch on an empty collection may not write for a long time.
  res.flushHeaders()
  const send = (type: WatchEventType, object: unknown) => {
    const payload = req.asTable && type !== 'ERROR' ? toTable(req.info.kind, [object as KubeObject], (object as KubeObject).metadata.resourceVersion, clock.now(), 'Metadata') : object
    if (res.destroyed) return
    res.write(`${JSON.stringify({ type, object: payload })}\n`)
    // Destroyed, the response closes: finish() below stops the watch and its timer.
    if (res.writableLength > MAX_UNREAD_WATCH_BYTES) res.destroy()
  }
  const selected = new Set<string>()
  for (const object of initial) {
    selected.add(objectId(object))
    send('ADDED', object)
  }
  if (res.destroyed) return

  let watch: { stop(): void } | undefined
  let timer: { cancel(): void } | undefined
  const finish = () => {
    watch?.stop()
    timer?.cancel()
    if (!res.writableEnded) res.end()
  }
  onClose(finish)
  const seconds = Math.min(req.timeoutSeconds ?? MAX_WATCH_SECONDS, MAX_WATCH_SECONDS)
  timer = clock.setTimeout(finish, seconds * 1000)

  try {
    watch = registry.watch(
      req.info,
      req.namespace,
      fromRevision,
      (event: StoreEvent) => {
        const type = selectionChange(event, req, selected)
        if (type) send(type, event.object)
      },
      {
        // The store lost this watch's history under it: the client lists again, as after a 410.
        onEnd: (error) => {
          send('ERROR', gone(error.message).toStatus())
          finish()
        },
      },
    )
  } catch (err) {
    if (err instanceof ApiError) {
      send('ERROR', err.toStatus())
      finish()
      return
    }
    throw err
  }
}

/**
 * What a change means to this watcher. Without selectors it is the store's own event; with them,
 * an object entering the selection is ADDED and one leaving it is DELETED, as Kubernetes reports.
 */
function selectionChange(event: StoreEvent, req: WatchRequest, selected: Set<string>): WatchEventType | undefined {
  const id = objectId(event.object)
  const matches = req.matches(event.object)
  if (!req.filtered) return matches ? event.type : undefined
  if (event.type === 'DELETED') return selected.delete(id) || matches ? 'DELETED' : undefined
  if (matches) {
    const known = selected.has(id)
    selected.add(id)
    return known || event.type === 'MODIFIED' ? event.type : 'ADDED'
  }
  return selected.delete(id) ? 'DELETED' : undefined
}

function objectId(o: KubeObject): string {
  return `${o.metadata.namespace ?? ''}/${o.metadata.name}`
}
