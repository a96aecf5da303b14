// WireGuard keys made with node:crypto are the ones `wg` makes and reads.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { generateWireGuardKeyPair, isWireGuardKey, wireGuardPublicKey } from '../../src/mesh/wireguard-keys.js'

const hasWg = (() => {
  try {
    execFileSync('wg', ['--version'])
    return true
  } catch {
    return false
  }
})()

t.test('a new key pair is two 32-byte base64 keys, the public one derived from the private one', async (t) => {
  const pair = generateWireGuardKeyPair()
  t.ok(isWireGuardKey(pair.privateKey))
  t.ok(isWireGuardKey(pair.publicKey))
  t.equal(Buffer.from(pair.publicKey, 'base64').length, 32)
  t.equal(wireGuardPublicKey(pair.privateKey), pair.publicKey)
  t.not(generateWireGuardKeyPair().privateKey, pair.privateKey, 'each pair is new')
})

t.test('wg pubkey agrees on the public key', { skip: hasWg ? false : 'wg is not installed' }, async (t) => {
  for (let i = 0; i < 3; i++) {
    const pair = generateWireGuardKeyPair()
    t.equal(execFileSync('wg', ['pubkey'], { input: pair.privateKey + '\n' }).toString().trim(), pair.publicKey)
  }
  const fromWg = execFileSync('wg', ['genkey']).toString().trim()
  t.equal(wireGuardPublicKey(fromWg), execFileSync('wg', ['pubkey'], { input: fromWg + '\n' }).toString().trim(), 'a key wg made')
})

t.test('only canonical 32-byte base64 is a key', async (t) => {
  t.notOk(isWireGuardKey(''))
  t.notOk(isWireGuardKey('abc='))
  t.notOk(isWireGuardKey(Buffer.alloc(31).toString('base64')))
  t.notOk(isWireGuardKey(Buffer.alloc(32).toString('base64url')), 'base64url is not what wg writes')
  t.notOk(isWireGuardKey(42))
  t.ok(isWireGuardKey(Buffer.alloc(32, 7).toString('base64')))
  t.throws(() => wireGuardPublicKey('not a key'), /private key/)
})
