// Offline work on the hub's LMDB store (lmdb-store.ts's layout), done while no hub has it open:
// reading every object out (a migration to etcd); rewriting every stored value of one resource in
// place (a re-encryption), then a compacted copy of the file so that no freed page keeps a value
// as it was (lib/lmdb-files.ts).

import { open } from 'lmdb'
import type { KubeObject } from '../api/types.js'
import { closeCompacted, refuseIfOpenElsewhere } from '../lib/lmdb-files.js'
import { LMDB_WRITE_OPTIONS } from '../lib/lmdb-commit.js'
import { DATABASES, logEntryOf, scopeRange, storedLogEntry, type StoredLogEntry } from './lmdb-layout.js'
import type { ObjectKey } from './store.js'

/** Throws when another process has the store at `path` open (a running hub), before anything is changed. */
export async function assertStoreClosedElsewhere(path: string): Promise<void> {
  const env = open({ path, maxDbs: 4 })
  try {
    refuseIfOpenElsewhere(env, `the store at ${path}`, 'hub')
  } finally {
    await env.close()
  }
}

/**
 * Every stored object (Secrets as sealed) and the revision they were read at, through one read
 * transaction of a store no hub has open: what `bramble migrate-store` copies.
 */
export async function readStoredObjects(path: string): Promise<{ revision: number; objects: Array<{ key: ObjectKey; object: KubeObject }> }> {
  const env = open({ path, maxDbs: 4 })
  try {
    refuseIfOpenElsewhere(env, `the store at ${path}`, 'hub')
    const objects = env.openDB<KubeObject, string>(DATABASES.objects)
    const meta = env.openDB<number, string>(DATABASES.meta)
    const txn = env.useReadTransaction()
    try {
      const read = [...objects.getRange({ transaction: txn })].map(({ key: k, value }) => {
        const [resource = '', namespace = '', name = ''] = k.split('\0')
        return { key: { resource, namespace, name }, object: value }
      })
      return { revision: meta.get('revision', { transaction: txn }) ?? 0, objects: read }
    } finally {
      txn.done()
    }
  } finally {
    await env.close()
  }
}

/**
 * Rewrites every stored value of one resource, its objects and their change-log entries, in one
 * durable transaction, without a new revision: the objects mean the same. Then replaces the data
 * file with a compacted copy. Returns how many values it rewrote.
 */
export async function rewriteStoredResource(path: string, resource: string, rewrite: (key: ObjectKey, stored: KubeObject) => KubeObject): Promise<number> {
  const env = open({ path, overlappingSync: false, noSync: false, noMetaSync: false, maxDbs: 4, ...LMDB_WRITE_OPTIONS })
  let count = 0
  try {
    refuseIfOpenElsewhere(env, `the store at ${path}`, 'hub')
    const objects = env.openDB<KubeObject, string>(DATABASES.objects)
    const log = env.openDB<StoredLogEntry, number>(DATABASES.log)
    await env.transaction(() => {
      for (const { key: k, value } of objects.getRange(scopeRange({ resource }))) {
        const [, namespace = '', name = ''] = k.split('\0')
        objects.putSync(k, rewrite({ resource, namespace, name }, value))
        count++
      }
      for (const { key: rev, value } of log.getRange()) {
        if (value.key.resource !== resource) continue
        const entry = logEntryOf(objects, value)
        log.putSync(rev, storedLogEntry(objects, { ...entry, object: rewrite(entry.key, entry.object) }))
        count++
      }
    })
    await env.flushed
  } catch (err) {
    await env.close()
    throw err
  }
  await closeCompacted(env, path)
  return count
}
