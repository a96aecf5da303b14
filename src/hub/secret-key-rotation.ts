// `bramble secrets rotate-key`: a new key for the Secrets in the hub's store, run with the hub
// stopped. The new key is saved beside the old one first, then every sealed Secret (objects and
// change log, one transaction) is re-encrypted with it, and only then is the old key dropped. A
// run cut short leaves a key file with both keys, which the hub reads; the next run finishes it.

import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { SecretKeyring } from '../lib/secret-keyring.js'
import { sealObject, unsealObject, ENCRYPTED_RESOURCES } from './encrypted-store.js'
import { assertStoreClosedElsewhere, rewriteStoredResource } from './lmdb-maintenance.js'

export interface RotationResult {
  newKeyId: string
  droppedKeyIds: string[]
  /** Stored values re-encrypted (objects and change-log entries). */
  rewritten: number
}

export function secretsKeyPath(dataDir: string): string {
  return join(dataDir, 'secrets.key')
}

export function hubStorePath(dataDir: string): string {
  return join(dataDir, 'store')
}

export async function rotateSecretsKey(dataDir: string): Promise<RotationResult> {
  if (!existsSync(hubStorePath(dataDir))) throw new Error(`${dataDir} holds no hub store; name the hub's data dir with --data-dir`)
  await assertStoreClosedElsewhere(hubStorePath(dataDir))
  const keyring = SecretKeyring.open(secretsKeyPath(dataDir))
  // More than one key: an earlier rotation stopped before dropping the old one; finish it.
  const newKeyId = keyring.keyIds.length > 1 ? keyring.primaryId : keyring.addPrimary()
  let rewritten = 0
  for (const resource of ENCRYPTED_RESOURCES) {
    rewritten += await rewriteStoredResource(hubStorePath(dataDir), resource, (key, stored) =>
      sealObject(keyring, key, unsealObject(keyring, key, stored)),
    )
  }
  return { newKeyId, droppedKeyIds: keyring.dropAllButPrimary(), rewritten }
}
