// How the etcd store lays out its keys under the store's prefix, and reads its values back:
//   PREFIX o/resource\0namespace\0name   → an object as JSON, without its resourceVersion
//   PREFIX meta/NAME                     → the store's own bookkeeping
// and how etcd's revisions map to the store's (store revision = etcd revision + offset).

import type { IKeyValue } from 'etcd3'
import { apiVersionOf, KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import { resourceOf, type ListScope, type ObjectKey } from './store.js'

export class EtcdKeyspace {
  private readonly objectsPrefix: string

  constructor(
    private readonly prefix: string,
    /** The store's URL, for errors. */
    private readonly where: string,
    /** Store revision = etcd revision + offset (a migrated store goes on above its old revisions). */
    private readonly offset: number,
  ) {
    this.objectsPrefix = `${prefix}o/`
  }

  decode(kv: IKeyValue): KubeObject {
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

  objectKey(key: ObjectKey): Buffer {
    return Buffer.from(`${this.objectsPrefix}${key.resource}\0${key.namespace}\0${key.name}`)
  }

  keyOf(bytes: Buffer): ObjectKey | undefined {
    const text = bytes.toString()
    if (!text.startsWith(this.objectsPrefix)) return undefined
    const [resource, namespace, name] = text.slice(this.objectsPrefix.length).split('\0')
    return resource === undefined || namespace === undefined || name === undefined ? undefined : { resource, namespace, name }
  }

  /** `resource\0` or `resource\0namespace\0`: sorts by namespace, then name, as LMDB's keys do. */
  scopePrefix(scope: ListScope): string {
    return `${this.objectsPrefix}${scope.resource}\0${scope.namespace === undefined ? '' : `${scope.namespace}\0`}`
  }

  metaKey(name: string): Buffer {
    return Buffer.from(`${this.prefix}meta/${name}`)
  }

  toStore(etcdRevision: string): number {
    return Number(etcdRevision) + this.offset
  }

  toEtcd(revision: number): number {
    return Math.max(0, revision - this.offset)
  }
}

/** What a delete event carries when etcd no longer has the value before it: the kind and the name. */
export function placeholderOf(key: ObjectKey): KubeObject {
  const info = KINDS.find((k) => resourceOf(k.group, k.plural) === key.resource)
  const metadata = key.namespace ? { name: key.name, namespace: key.namespace } : { name: key.name }
  return { apiVersion: info ? apiVersionOf(info) : '', kind: info?.kind ?? '', metadata }
}
