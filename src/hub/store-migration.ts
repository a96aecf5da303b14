// `bramble migrate-store`: copies a stopped hub's LMDB store into an empty etcd prefix. Objects
// keep their uid and creationTimestamp, Secrets stay sealed with the data dir's key (the hub on
// etcd opens them with the same secrets.key), and every new resourceVersion is above the LMDB
// store's last revision, so nothing read before the move looks newer than what is there after it;
// watches from before the move are 410 Gone, so watchers list again.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { storeUrl, type EtcdLocation } from '../lib/store-url.js'
import { connectEtcd, prefixEnd, type EtcdClientOptions } from './etcd-client.js'
import { openEtcdStore } from './etcd-store.js'
import { StoreUnavailableError } from './errors.js'
import { readStoredObjects } from './lmdb-maintenance.js'

export interface MigrationResult {
  /** Objects copied. */
  objects: number
  /** The LMDB store's revision, which every copied object's resourceVersion is above. */
  fromRevision: number
  /** The etcd store's revision once the copy is done. */
  toRevision: number
}

/** How many objects are written at once: enough to keep etcd busy, few enough for a Pi. */
const PARALLEL_WRITES = 8

/** `dataDir`: a stopped hub's data dir; the hub goes on using it (its CA, its secrets key) with `--store`. */
export async function migrateLmdbToEtcd(dataDir: string, to: EtcdLocation): Promise<MigrationResult> {
  const path = join(dataDir, 'store')
  if (!existsSync(join(path, 'data.mdb'))) throw new Error(`${dataDir} holds no hub store (no ${join(path, 'data.mdb')}); name the hub's data dir with --from`)
  const { revision, objects } = await readStoredObjects(path)
  await prepareEtcdImport(to, revision)
  // The store beneath the hub's encryption: sealed Secrets are copied as they are stored.
  const store = await openEtcdStore({ endpoints: to.endpoints, prefix: to.prefix, tls: to.tls })
  try {
    let next = 0
    const worker = async () => {
      while (next < objects.length) {
        const { key, object } = objects[next++]!
        await store.create(key, object)
      }
    }
    await Promise.all(Array.from({ length: PARALLEL_WRITES }, worker))
    let copied = 0
    for (const resource of new Set(objects.map((o) => o.key.resource))) copied += (await store.list({ resource })).items.length
    if (copied !== objects.length) throw new Error(`${storeUrl(to)} holds ${copied} objects after the copy, not ${objects.length}`)
    // The copies are no changes to replay: a watch from before the move lists again (410 Gone).
    await store.compact(await store.revision())
    return { objects: objects.length, fromRevision: revision, toRevision: await store.revision() }
  } finally {
    await store.close()
  }
}

/**
 * Readies an empty prefix to receive a store whose newest revision was `aboveRevision` (an LMDB
 * store being migrated): every revision the etcd store hands out from now on is higher, so a
 * resourceVersion read before the migration is never mistaken for a newer one, and history from
 * before it is compacted (a watch from there is 410 Gone; watchers list again). Refuses a prefix
 * that holds anything.
 */
async function prepareEtcdImport(options: EtcdClientOptions, aboveRevision: number): Promise<void> {
  const { client, prefix, where } = connectEtcd(options)
  try {
    const held = await client.kv.range({ key: Buffer.from(prefix), range_end: prefixEnd(prefix), count_only: true }).catch((error: unknown) => {
      throw new StoreUnavailableError(where, { cause: error })
    })
    if (Number(held.count) > 0) throw new Error(`${where} already holds ${held.count} keys; migrate into an empty prefix (name another one in the URL)`)
    // This transaction takes etcd revision now + 1: store revision = etcd revision + offset, so it
    // is at least aboveRevision + 1.
    const offset = Math.max(0, aboveRevision - Number(held.header.revision))
    const compacted = Number(held.header.revision) + offset
    const offsetKey = Buffer.from(`${prefix}meta/revision-offset`)
    const done = await client.kv.txn({
      compare: [{ key: offsetKey, target: 'Create', result: 'Equal', create_revision: 0 }],
      success: [
        { request_put: { key: offsetKey, value: Buffer.from(String(offset)) } },
        { request_put: { key: Buffer.from(`${prefix}meta/compacted`), value: Buffer.from(String(compacted)) } },
      ],
    })
    if (!done.succeeded) throw new Error(`${where} was written to while the migration began; migrate into an empty prefix`)
  } finally {
    client.close()
  }
}
