// WireGuard keys as `wg` writes them: X25519, 32 raw bytes, base64 (44 characters). Made with
// node:crypto so a node needs no `wg genkey`; the private key never leaves the node that made it.

import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto'

export interface WireGuardKeyPair {
  privateKey: string
  publicKey: string
}

/** PKCS#8 DER header of an X25519 private key; the 32 raw key bytes follow it. */
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export function generateWireGuardKeyPair(): WireGuardKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519')
  return {
    privateKey: base64UrlToBase64(privateKey.export({ format: 'jwk' }).d!),
    publicKey: base64UrlToBase64(publicKey.export({ format: 'jwk' }).x!),
  }
}

/** The public key of a base64 private key (what `wg pubkey` prints). Throws on a malformed key. */
export function wireGuardPublicKey(privateKey: string): string {
  if (!isWireGuardKey(privateKey)) throw new TypeError('not a WireGuard private key: expected 32 bytes in base64 (44 characters)')
  const der = Buffer.concat([X25519_PKCS8_PREFIX, Buffer.from(privateKey, 'base64')])
  const key = createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })
  return base64UrlToBase64(createPublicKey(key).export({ format: 'jwk' }).x!)
}

/** 32 bytes in canonical base64, as `wg` prints keys. */
export function isWireGuardKey(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=$/.test(value)
}

function base64UrlToBase64(s: string): string {
  return Buffer.from(s, 'base64url').toString('base64')
}
