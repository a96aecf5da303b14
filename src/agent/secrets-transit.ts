// Secrets in transit on the node's side (src/api/sealed-secret.ts). The node's key pair is made on
// first start, the private key kept in `<data dir>/agent/secrets-transit.key` (mode 0600) and never
// sent anywhere; the public key goes to the hub at join and with every node status. Not the
// WireGuard key: each key has one use, and either can be replaced without the other. Each Secret
// of a desired message is opened before the message is stored; one that does not open is left
// out, so the pods that use it wait, and the refusal is said.

import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { DesiredMessage, DesiredObject } from '../api/protocol.js'
import { SealedSecretError, generateSealingKeyPair, isSealingKey, openSecret, sealingPublicKey, type SealingKeyPair } from '../api/sealed-secret.js'
import { writeFileAtomic } from '../lib/atomic-file.js'

export const SECRETS_KEY_FILE = 'secrets-transit.key'

/** Reads the node's key pair from `dir` (the agent's directory), or makes it there. */
export function loadOrMakeSecretsKey(dir: string): SealingKeyPair {
  const path = join(dir, SECRETS_KEY_FILE)
  if (existsSync(path)) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
    const privateKey = readFileSync(path, 'utf8').trim()
    if (!isSealingKey(privateKey)) throw new Error(`${path} does not hold an X25519 private key; move it away and the agent makes a new one (the hub then seals Secrets to the new key)`)
    return { privateKey, publicKey: sealingPublicKey(privateKey) }
  }
  const pair = generateSealingKeyPair()
  writeFileAtomic(path, `${pair.privateKey}\n`, 0o600)
  return pair
}

/** `msg` with every Secret opened with the node's private key; those that do not open are left out and handed to `refused`. */
export function openDesiredSecrets(msg: DesiredMessage, node: string, privateKey: string, refused: (err: SealedSecretError) => void): DesiredMessage {
  if (!msg.upserts.some((o) => o.kind === 'Secret')) return msg
  const upserts: DesiredObject[] = []
  for (const o of msg.upserts) {
    if (o.kind !== 'Secret') {
      upserts.push(o)
      continue
    }
    try {
      upserts.push(openSecret(o, node, privateKey) as DesiredObject)
    } catch (err) {
      if (!(err instanceof SealedSecretError)) throw err
      refused(err)
    }
  }
  return { ...msg, upserts }
}
