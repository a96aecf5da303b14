// Records that hubs sharing one store (etcd) keep there together: join and user tokens, the nodes'
// MQTT credentials and the hub's own broker password. A single hub on LMDB keeps them in files in
// its data dir instead (tokens.ts, node-credentials.ts); these are the store's form of the same.
//
// Why internal resources under `bramble.io/...` and not Secrets in a reserved namespace (k3s keeps
// node passwords as Secrets in kube-system): no API route serves a resource that is not a kind, so
// no API user (a read-only token included) can list, change or delete them, and deleting a
// namespace or `kubectl delete secrets --all -A` cannot lock the fleet out. They are still store
// objects: etcd revisions, watches, backups and compaction treat them like any other. What they
// hold is hashed (tokens, node passwords); the hub's broker password, which the hubs must present
// in clear, is sealed with the secrets key (the same on every hub).
//
// RecordCache is each hub's copy of one such resource: listed, then kept current by a watch, so
// checks on the hot path (an API token, an MQTT login) read memory.

import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { KubeObject } from '../api/types.js'
import { writeFileAtomic } from '../lib/atomic-file.js'
import { systemClock, type Clock } from '../lib/clock.js'
import { parseStoreUrl, storeUrl, type EtcdLocation, type StoreLocation } from '../lib/store-url.js'
import { ConfigError } from '../lib/config-errors.js'
import { StoreExistsError } from './errors.js'
import type { Store, StoreEvent, Watch } from './store.js'

export const JOIN_TOKEN_RESOURCE = 'bramble.io/jointokens'
export const USER_TOKEN_RESOURCE = 'bramble.io/usertokens'
export const NODE_CREDENTIAL_RESOURCE = 'bramble.io/nodecredentials'
export const HUB_CREDENTIAL_RESOURCE = 'bramble.io/hubcredentials'
export const HUB_SETTING_RESOURCE = 'bramble.io/hubsettings'

/**
 * DIR/shared-store names the store a hub on DIR last ran on, when it is a shared one, with its TLS
 * file paths: `bramble token` on DIR works on that store without being told.
 */
export const SHARED_STORE_FILE = 'shared-store'

/** Notes in the data dir which shared store the hub runs on, or that it runs on none. */
export function recordSharedStore(dataDir: string, location: StoreLocation): void {
  const path = join(dataDir, SHARED_STORE_FILE)
  if (location.kind === 'lmdb') rmSync(path, { force: true })
  else writeFileAtomic(path, `${JSON.stringify({ url: storeUrl(location), ...(location.tls ? { tls: location.tls } : {}) })}\n`, 0o600)
}

/** The shared store recorded in the data dir, or undefined when its hub keeps tokens in the data dir. */
export function sharedStoreOf(dataDir: string): EtcdLocation | undefined {
  const path = join(dataDir, SHARED_STORE_FILE)
  if (!existsSync(path)) return undefined
  try {
    const recorded = JSON.parse(readFileSync(path, 'utf8')) as { url: string; tls?: EtcdLocation['tls'] }
    const location = parseStoreUrl(recorded.url)
    if (location.kind !== 'etcd') throw new Error(`names ${recorded.url}`)
    return recorded.tls ? { ...location, tls: recorded.tls } : location
  } catch (err) {
    throw new Error(`${path} does not name a store; start the hub on ${dataDir} again, or give --store`, { cause: err })
  }
}

/** A record as stored: a Kubernetes-shaped envelope around its fields, which sit in `spec`. */
export function recordObject(kind: string, name: string, spec: object): KubeObject {
  return { apiVersion: 'bramble.io/v1', kind, metadata: { name }, spec } as KubeObject
}

export function specOf<T>(object: KubeObject): T {
  return (object as KubeObject & { spec: T }).spec
}

/**
 * The cluster id every hub on the store tells its agents (Docker labels carry it): the first
 * hub's. A hub whose data dir made its id just now takes the store's; one whose data dir belongs
 * to another cluster is refused.
 */
export async function sharedClusterId(store: Store, local: string, madeNow: boolean): Promise<string> {
  const key = { resource: HUB_SETTING_RESOURCE, namespace: '', name: 'cluster-id' }
  // Another hub's create can only win once: the second read finds its record.
  for (let attempt = 1; ; attempt++) {
    const stored = await store.get(key)
    if (stored) {
      const id = specOf<{ id: string }>(stored).id
      if (id !== local && !madeNow) {
        throw new ConfigError('--store', `names the store of cluster ${id}, but this data dir belongs to cluster ${local} (its cluster-id file): give this hub its own store, or a data dir of that cluster`)
      }
      return id
    }
    try {
      await store.create(key, recordObject('HubSetting', key.name, { id: local }))
      return local
    } catch (err) {
      if (!(err instanceof StoreExistsError) || attempt >= 3) throw err
    }
  }
}

export type RecordChange = (type: StoreEvent['type'], name: string, object: KubeObject) => void

export class RecordCache {
  private readonly records = new Map<string, KubeObject>()
  private readonly handlers: RecordChange[] = []
  private watch?: Watch
  private stopped = false

  constructor(
    private readonly store: Store,
    readonly resource: string,
    /** Paces another list when one fails after the watch ended. */
    private readonly clock: Clock = systemClock,
  ) {}

  onChange(handler: RecordChange): void {
    this.handlers.push(handler)
  }

  async start(): Promise<void> {
    const { items, revision } = await this.store.list({ resource: this.resource })
    for (const item of items) this.records.set(item.metadata.name!, item)
    this.watchFrom(revision)
  }

  stop(): void {
    this.stopped = true
    this.watch?.stop()
  }

  get(name: string): KubeObject | undefined {
    return this.records.get(name)
  }

  list(): KubeObject[] {
    return [...this.records.values()]
  }

  /**
   * The record as the store has it now, for a name the cache does not know: a record another hub
   * wrote a moment ago may not have reached this hub's watch yet. Kept in the cache when found.
   */
  async fetch(name: string): Promise<KubeObject | undefined> {
    const found = await this.store.get({ resource: this.resource, namespace: '', name })
    if (found) this.put(found)
    return found
  }

  /** Records a write this process made, before its watch event arrives. Older revisions never win. */
  put(object: KubeObject): void {
    const name = object.metadata.name!
    const current = this.records.get(name)
    if (current && Number(current.metadata.resourceVersion) >= Number(object.metadata.resourceVersion)) return
    this.records.set(name, object)
    for (const h of this.handlers) h(current ? 'MODIFIED' : 'ADDED', name, object)
  }

  private watchFrom(revision: number): void {
    this.watch = this.store.watch({ resource: this.resource }, revision, (event) => this.apply(event), { onEnd: () => void this.relist() })
  }

  private apply(event: StoreEvent): void {
    const name = event.key.name
    if (event.type === 'DELETED') {
      if (!this.records.delete(name)) return
    } else {
      const current = this.records.get(name)
      if (current && Number(current.metadata.resourceVersion) >= event.revision) return
      this.records.set(name, event.object)
    }
    for (const h of this.handlers) h(event.type, name, event.object)
  }

  /** The watch ended under the cache (history compacted away): list again and watch from there. */
  private async relist(): Promise<void> {
    while (!this.stopped) {
      let listed: { items: KubeObject[]; revision: number }
      try {
        listed = await this.store.list({ resource: this.resource })
      } catch {
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 1000))
        continue
      }
      if (this.stopped) return
      const names = new Set<string>()
      for (const item of listed.items) {
        names.add(item.metadata.name!)
        this.put(item)
      }
      for (const [name, previous] of [...this.records]) {
        if (names.has(name) || Number(previous.metadata.resourceVersion) > listed.revision) continue
        this.records.delete(name)
        for (const h of this.handlers) h('DELETED', name, previous)
      }
      this.watchFrom(listed.revision)
      return
    }
  }
}
