// Secrets in transit, sealed to the receiving node: the broker (embedded or external), and anyone
// who can read its persistence, carries a Secret's data but never sees it. Each node holds an
// X25519 key pair of its own (not its WireGuard key); the hub seals every Secret it sends with a
// fresh ephemeral key: X25519 with the node's public key, HKDF-SHA256, AES-256-GCM. The associated
// data binds the node's name, the Secret's namespace/name, uid and resourceVersion, so a box cut
// out of one message cannot be opened for another node or passed off as another Secret or version.
// Pure: node:crypto only, no I/O.

import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto'
import { ApiError } from './errors.js'
import type { KubeObject } from './types.js'

export const SEALED_SECRET_ALGORITHM = 'X25519-HKDF-SHA256-A256GCM'
/** Where the hub keeps a node's public key for Secrets in transit (base64, 32 bytes). */
export const ANNOTATION_SECRETS_PUBLIC_KEY = 'bramble.io/secrets-public-key'

const HKDF_INFO = Buffer.from('bramble.io sealed secret v1')
const NONCE_BYTES = 12
const TAG_BYTES = 16
/** PKCS#8 DER header of an X25519 private key; the 32 raw key bytes follow it. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export interface SealingKeyPair {
  privateKey: string
  publicKey: string
}

/** The sealed form of a Secret's content, carried in place of everything but its identity. */
export interface SealedBox {
  alg: typeof SEALED_SECRET_ALGORITHM
  /** The recipient's public key: a node that holds another key knows at once it cannot open the box. */
  to: string
  /** The hub's ephemeral public key. */
  epk: string
  nonce: string
  /** AES-256-GCM ciphertext of the whole Secret as JSON, its 16-byte tag appended. */
  ciphertext: string
}

/** A Secret as it goes down: name, namespace, uid and resourceVersion in the clear, the rest sealed. */
export interface SealedSecret extends KubeObject {
  kind: 'Secret'
  sealed: SealedBox
}

export type SealedSecretProblem = 'malformed' | 'wrong-key' | 'refused'

/** A sealed Secret that this node cannot open: not its key, tampered with, or not a sealed box at all. */
export class SealedSecretError extends ApiError {
  readonly code = 'BRAMBLE_API_SEALED_SECRET'
  constructor(readonly secret: string, readonly problem: SealedSecretProblem, detail: string, options?: { cause?: unknown }) {
    super(`cannot open Secret ${secret}: ${detail}`, options)
  }
}

export function generateSealingKeyPair(): SealingKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  return { privateKey: rawBase64(privateKey.export({ format: 'jwk' }).d!), publicKey: rawBase64(publicKey.export({ format: 'jwk' }).x!) }
}

/** The public key of a base64 private key. Throws on a malformed key. */
export function sealingPublicKey(privateKey: string): string {
  return rawBase64(createPublicKey(privateKeyObject(privateKey)).export({ format: 'jwk' }).x!)
}

/** 32 bytes in canonical base64 (44 characters). */
export function isSealingKey(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(value)
}

/** Seals `secret` to `node`, whose public key is `publicKey`. */
export function sealSecret(secret: KubeObject, node: string, publicKey: string): SealedSecret {
  if (!isSealingKey(publicKey)) throw new TypeError(`the public key of node ${node} is not 32 bytes in base64`)
  const identity = identityOf(secret)
  const ephemeral = generateKeyPairSync('x25519')
  const epk = rawBase64(ephemeral.publicKey.export({ format: 'jwk' }).x!)
  const shared = diffieHellman({ privateKey: ephemeral.privateKey, publicKey: publicKeyObject(publicKey) })
  const key = deriveKey(shared, epk, publicKey)
  const nonce = randomBytes(NONCE_BYTES)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(associatedData(node, identity))
  const ciphertext = Buffer.concat([cipher.update(JSON.stringify(secret)), cipher.final(), cipher.getAuthTag()])
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: identity,
    sealed: { alg: SEALED_SECRET_ALGORITHM, to: publicKey, epk, nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64') },
  }
}

/** True when `o` carries a sealed box (whether or not it opens). */
export function isSealed(o: KubeObject): o is SealedSecret {
  return typeof (o as { sealed?: unknown }).sealed === 'object' && (o as { sealed?: unknown }).sealed !== null
}

/** Opens a Secret sealed to `node` with the node's private key; throws SealedSecretError. */
export function openSecret(sealed: KubeObject, node: string, privateKey: string): KubeObject {
  const name = `${sealed.metadata?.namespace ?? ''}/${sealed.metadata?.name ?? ''}`
  const box = (sealed as { sealed?: Record<string, unknown> }).sealed
  if (!box || typeof box !== 'object') throw new SealedSecretError(name, 'malformed', 'it is not sealed (sealed: missing); the hub must never send a Secret in the clear')
  for (const field of ['to', 'epk', 'nonce', 'ciphertext'] as const) {
    if (typeof box[field] !== 'string') throw new SealedSecretError(name, 'malformed', `sealed.${field}: expected a base64 string`)
  }
  if (box.alg !== SEALED_SECRET_ALGORITHM) throw new SealedSecretError(name, 'malformed', `sealed.alg: expected ${SEALED_SECRET_ALGORITHM}, got ${JSON.stringify(box.alg)}`)
  const own = sealingPublicKey(privateKey)
  if (box.to !== own) throw new SealedSecretError(name, 'wrong-key', `it is sealed to key ${String(box.to).slice(0, 12)}…, this node holds ${own.slice(0, 12)}…`)
  if (!isSealingKey(box.epk)) throw new SealedSecretError(name, 'malformed', 'sealed.epk: expected 32 bytes in base64')
  const nonce = Buffer.from(box.nonce as string, 'base64')
  const data = Buffer.from(box.ciphertext as string, 'base64')
  if (nonce.length !== NONCE_BYTES) throw new SealedSecretError(name, 'malformed', `sealed.nonce: expected ${NONCE_BYTES} bytes`)
  if (data.length < TAG_BYTES) throw new SealedSecretError(name, 'malformed', 'sealed.ciphertext: shorter than its tag')
  const identity = identityOf(sealed)
  let plaintext: Buffer
  try {
    const shared = diffieHellman({ privateKey: privateKeyObject(privateKey), publicKey: publicKeyObject(box.epk) })
    const decipher = createDecipheriv('aes-256-gcm', deriveKey(shared, box.epk, own), nonce)
    decipher.setAAD(associatedData(node, identity))
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES))
    plaintext = Buffer.concat([decipher.update(data.subarray(0, data.length - TAG_BYTES)), decipher.final()])
  } catch (err) {
    throw new SealedSecretError(name, 'refused', 'the box does not authenticate for this node, Secret and version (tampered with, or meant for another node)', { cause: err })
  }
  const secret = JSON.parse(plaintext.toString('utf8')) as KubeObject
  // The sealed content must name what the clear identity names (it was bound by the associated data).
  if (secret.kind !== 'Secret' || secret.metadata?.name !== identity.name || (secret.metadata?.namespace ?? '') !== identity.namespace) {
    throw new SealedSecretError(name, 'refused', 'the sealed content is not the Secret its envelope names')
  }
  return secret
}

function identityOf(secret: KubeObject): { name: string; namespace: string; uid?: string; resourceVersion?: string } {
  const m = secret.metadata ?? {}
  return {
    name: String(m.name ?? ''),
    namespace: String(m.namespace ?? ''),
    ...(m.uid !== undefined ? { uid: String(m.uid) } : {}),
    ...(m.resourceVersion !== undefined ? { resourceVersion: String(m.resourceVersion) } : {}),
  }
}

function associatedData(node: string, id: ReturnType<typeof identityOf>): Buffer {
  return Buffer.from(JSON.stringify(['bramble.io/sealed-secret/v1', node, `${id.namespace}/${id.name}`, id.uid ?? '', id.resourceVersion ?? '']))
}

/** HKDF over the shared secret, salted with both public keys (as HPKE binds them). */
function deriveKey(shared: Buffer, epk: string, recipient: string): Buffer {
  const salt = Buffer.concat([Buffer.from(epk, 'base64'), Buffer.from(recipient, 'base64')])
  return Buffer.from(hkdfSync('sha256', shared, salt, HKDF_INFO, 32))
}

function privateKeyObject(privateKey: string): KeyObject {
  if (!isSealingKey(privateKey)) throw new TypeError('not an X25519 private key: expected 32 bytes in base64 (44 characters)')
  return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')]), format: 'der', type: 'pkcs8' })
}

function publicKeyObject(publicKey: string): KeyObject {
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: Buffer.from(publicKey, 'base64').toString('base64url') }, format: 'jwk' })
}

function rawBase64(base64url: string): string {
  return Buffer.from(base64url, 'base64url').toString('base64')
}
