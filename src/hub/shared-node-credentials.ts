// The nodes' MQTT credentials of hubs sharing one store (shared-records.ts says why these are
// internal records): one record per node name holding the hashes node-credentials.ts keeps (or the
// join token a deleted node may not come back with), and one record with the hub's own broker
// password, sealed with the secrets key. A node that joins through any hub is known to every hub,
// and so to the Mosquitto files every hub renders; a node revoked anywhere is refused everywhere.
//
// The first hub on a store nobody has used brings the data dir's mqtt-credentials.json along (a
// hub moving from LMDB onto etcd keeps its joined nodes); later hubs take the store's records.

import type { Clock } from '../lib/clock.js'
import { ConfigError } from '../lib/config-errors.js'
import { SecretKeyError, type SecretKeyring } from '../lib/secret-keyring.js'
import { associatedData } from './encrypted-store.js'
import { StoreExistsError, StoreNotFoundError } from './errors.js'
import { NodeCredentials, newPassword, readCredentialsFile, type RetiredNode, type StoredFile, type StoredNode } from './node-credentials.js'
import { HUB_CREDENTIAL_RESOURCE, NODE_CREDENTIAL_RESOURCE, RecordCache, recordObject, specOf } from './shared-records.js'
import type { ObjectKey, Store } from './store.js'

/** A record created and deleted under this hub's writes that many times in a row is an error, not a race. */
const MAX_WRITE_ATTEMPTS = 10
const HUB_RECORD_KEY: ObjectKey = { resource: HUB_CREDENTIAL_RESOURCE, namespace: '', name: 'mqtt' }

/** A node's record: its credentials while it may connect, or the token it may not re-join with. */
interface NodeRecord {
  entry?: StoredNode
  retired?: RetiredNode
}

export interface SharedNodeCredentials {
  credentials: NodeCredentials
  /** Stops following the store (the store itself stays open). */
  close(): void
}

export async function openSharedNodeCredentials(o: {
  store: Store
  keyring: SecretKeyring
  clock: Clock
  /** The data dir's folder of mqtt-credentials.json, brought into a store that has no records yet. */
  importFrom?: string
}): Promise<SharedNodeCredentials> {
  const local = o.importFrom ? await readCredentialsFile(o.importFrom) : undefined
  const hubPassword = await sharedHubPassword(o.store, o.keyring, local?.hub.password)

  const cache = new RecordCache(o.store, NODE_CREDENTIAL_RESOURCE, o.clock)
  await cache.start()
  if (local && cache.list().length === 0) {
    const names = new Set([...Object.keys(local.nodes), ...Object.keys(local.retired ?? {})])
    for (const node of names) {
      const record: NodeRecord = { entry: local.nodes[node], retired: local.retired?.[node] }
      try {
        cache.put(await o.store.create(keyOf(node), recordObject('NodeCredential', node, record)))
      } catch (err) {
        if (!(err instanceof StoreExistsError)) throw err
      }
    }
  }

  const file: StoredFile = { version: 1, hub: { password: hubPassword }, nodes: {}, retired: {} }
  for (const object of cache.list()) {
    const record = specOf<NodeRecord>(object)
    if (record.entry) file.nodes[object.metadata.name!] = record.entry
    if (record.retired) file.retired![object.metadata.name!] = record.retired
  }

  // One save of a node at a time, in the order made: a re-join right after a revocation must not be overtaken by it.
  const saving = new Map<string, Promise<void>>()
  const save = (node: string): Promise<void> => {
    const next = (saving.get(node) ?? Promise.resolve()).then(
      () => saveRecord(node),
      () => saveRecord(node),
    )
    saving.set(node, next)
    return next
  }
  const saveRecord = async (node: string): Promise<void> => {
    const { entry, retired } = credentials.entryOf(node)
    if (!entry && !retired) {
      await o.store.delete(keyOf(node)).catch((err) => {
        if (!(err instanceof StoreNotFoundError)) throw err
      })
      return
    }
    const object = recordObject('NodeCredential', node, { ...(entry ? { entry } : {}), ...(retired ? { retired } : {}) })
    cache.put(await upsert(o.store, keyOf(node), object, cache.get(node) !== undefined))
  }
  const credentials = NodeCredentials.withStorage(file, save)
  cache.onChange((type, node, object) => {
    const record = type === 'DELETED' ? {} : specOf<NodeRecord>(object)
    credentials.applyStored(node, record.entry, record.retired)
  })
  return { credentials, close: () => cache.stop() }
}

function keyOf(node: string): ObjectKey {
  return { resource: NODE_CREDENTIAL_RESOURCE, namespace: '', name: node }
}

/**
 * Writes the object whether or not one exists (a node's record has one writer at a time: its join,
 * or its deletion), trying first what the cache expects: a create for a node joining for the first time.
 */
async function upsert(store: Store, key: ObjectKey, object: Parameters<Store['create']>[1], exists: boolean) {
  for (let attempt = 1, update = exists; ; attempt++, update = !update) {
    try {
      return update ? await store.update(key, object) : await store.create(key, object)
    } catch (err) {
      if (!(err instanceof (update ? StoreNotFoundError : StoreExistsError)) || attempt >= MAX_WRITE_ATTEMPTS) throw err
    }
  }
}

/**
 * The hub's broker password every hub presents: the store's, or (first hub) the data dir's or a
 * new one, saved sealed. Two hubs starting at once agree: the second create fails and it reads.
 */
async function sharedHubPassword(store: Store, keyring: SecretKeyring, candidate: string | undefined): Promise<string> {
  const aad = associatedData(HUB_RECORD_KEY)
  // Another hub's create can only win once: the second read finds its record.
  for (let attempt = 1; ; attempt++) {
    const stored = await store.get(HUB_RECORD_KEY)
    if (stored) return unsealHubPassword(keyring, specOf<{ password: string }>(stored).password, aad)
    try {
      const password = candidate ?? newPassword()
      await store.create(HUB_RECORD_KEY, recordObject('HubCredential', HUB_RECORD_KEY.name, { password: keyring.seal(password, aad) }))
      return password
    } catch (err) {
      if (!(err instanceof StoreExistsError) || attempt >= 3) throw err
    }
  }
}

/** Hubs sharing a store share one secrets key: a hub with another one is told what to copy. */
function unsealHubPassword(keyring: SecretKeyring, sealed: string, aad: string): string {
  try {
    return keyring.unseal(sealed, aad, "the hubs' MQTT password")
  } catch (err) {
    if (!(err instanceof SecretKeyError) || err.code !== 'BRAMBLE_SECRET_KEY_UNKNOWN') throw err
    throw new ConfigError(
      '--store',
      `names a store whose hubs seal their secrets with a key ${keyring.path} does not hold: hubs sharing a store share one identity; copy secrets.key and the CA (ca.crt, ca.key) from the data dir of the hub that started first`,
      { cause: err },
    )
  }
}
