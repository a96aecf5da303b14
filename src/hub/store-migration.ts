// `bramble migrate-store`: copies a stopped hub's LMDB store into an empty etcd prefix. Objects
// keep their uid and creationTimestamp, Secrets stay sealed with the data dir's key (the hub on
// etcd opens them with the same secrets.key), and every new resourceVersion is above the LMDB
// store's last revision, so nothing read before the move looks newer than what is there after it;
// watches from before the move are 410 Gone, so watchers list again.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { storeUrl, type EtcdLocation } from '../lib/store-url.js'
import { openEtcdStore, prepareEtcdImport } from './etcd-store.js'
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
  const store = await openEtcdStore({ endpoints: to.endpoints, prefix: to.prefix })
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
