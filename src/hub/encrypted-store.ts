// Secrets encrypted at rest: a Store decorator that seals whole objects of some resources
// (`secrets`) before the store beneath writes them, so neither the objects nor the change log
// (nor what compaction leaves) hold plaintext, and opens them again on the way out (get, list,
// watch, and what writes return). The whole object is sealed, annotations too: kubectl apply's
// last-applied-configuration repeats the data.
//
// On disk a sealed object keeps only what the store itself reads and stamps: apiVersion, kind,
// name, namespace, uid, creationTimestamp, resourceVersion. The rest is in `sealed`, bound to the
// object's store key, so a ciphertext moved to another key does not open.

import type { KubeObject } from '../api/types.js'
import { SecretKeyring } from '../lib/secret-keyring.js'
import type { ListResult, ListScope, ObjectKey, Store, StoreEvent, Watch, WatchOptions, WriteOptions } from './store.js'

export const ENCRYPTED_RESOURCES = ['secrets']

/** `resource\0namespace\0name`: what a sealed value is bound to. */
export function associatedData(key: ObjectKey): string {
  return `${key.resource}\0${key.namespace}\0${key.name}`
}

/** The stored form of `object` at `key`, sealed with the keyring's primary key. */
export function sealObject(keyring: SecretKeyring, key: ObjectKey, object: KubeObject): KubeObject {
  const m = object.metadata ?? {}
  const metadata: KubeObject['metadata'] = { name: m.name, namespace: m.namespace }
  for (const field of ['uid', 'creationTimestamp', 'resourceVersion'] as const) if (m[field] !== undefined) metadata[field] = m[field]
  return { apiVersion: object.apiVersion, kind: object.kind, metadata, sealed: keyring.seal(JSON.stringify(object), associatedData(key)) }
}

/** The object a stored one holds; what the store stamped on the stored form wins. Unsealed ones (written before encryption) pass as they are. */
export function unsealObject(keyring: SecretKeyring, key: ObjectKey, stored: KubeObject): KubeObject {
  if (!SecretKeyring.isSealed(stored.sealed)) return stored
  const what = `${stored.kind ?? key.resource} ${key.namespace ? `${key.namespace}/` : ''}${key.name}`
  const object = JSON.parse(keyring.unseal(stored.sealed, associatedData(key), what)) as KubeObject
  object.metadata ??= {}
  for (const field of ['uid', 'creationTimestamp', 'resourceVersion'] as const) {
    if (stored.metadata[field] !== undefined) object.metadata[field] = stored.metadata[field]
  }
  return object
}

export class EncryptedStore implements Store {
  private readonly resources: Set<string>

  constructor(
    private readonly inner: Store,
    private readonly keyring: SecretKeyring,
    /** The resources sealed (default: secrets). */
    resources: string[] = ENCRYPTED_RESOURCES,
  ) {
    this.resources = new Set(resources)
  }

  async create(key: ObjectKey, object: KubeObject): Promise<KubeObject> {
    return this.open(key, await this.inner.create(key, this.seal(key, object)))
  }

  async get(key: ObjectKey): Promise<KubeObject | undefined> {
    const stored = await this.inner.get(key)
    return stored === undefined ? undefined : this.open(key, stored)
  }

  async list(scope: ListScope): Promise<ListResult> {
    const result = await this.inner.list(scope)
    if (!this.resources.has(scope.resource)) return result
    return {
      items: result.items.map((o) => this.open({ resource: scope.resource, namespace: String(o.metadata.namespace ?? ''), name: String(o.metadata.name) }, o)),
      revision: result.revision,
    }
  }

  async update(key: ObjectKey, object: KubeObject, options?: WriteOptions): Promise<KubeObject> {
    return this.open(key, await this.inner.update(key, this.seal(key, object), options))
  }

  async delete(key: ObjectKey, options?: WriteOptions): Promise<KubeObject> {
    return this.open(key, await this.inner.delete(key, options))
  }

  watch(scope: ListScope, fromRevision: number, onEvent: (event: StoreEvent) => void, options?: WatchOptions): Watch {
    if (!this.resources.has(scope.resource)) return this.inner.watch(scope, fromRevision, onEvent, options)
    return this.inner.watch(scope, fromRevision, (event) => onEvent({ ...event, object: this.open(event.key, event.object) }), options)
  }

  revision(): Promise<number> {
    return this.inner.revision()
  }

  compactedRevision(): Promise<number> {
    return this.inner.compactedRevision()
  }

  compact(revision: number): Promise<void> {
    return this.inner.compact(revision)
  }

  /** The copy holds Secrets sealed as they are here: it opens only with this store's secrets key. */
  copyTo(dir: string): Promise<number> {
    return this.inner.copyTo(dir)
  }

  close(): Promise<void> {
    return this.inner.close()
  }

  private seal(key: ObjectKey, object: KubeObject): KubeObject {
    return this.resources.has(key.resource) ? sealObject(this.keyring, key, object) : object
  }

  private open(key: ObjectKey, stored: KubeObject): KubeObject {
    return this.resources.has(key.resource) ? unsealObject(this.keyring, key, stored) : stored
  }
}
