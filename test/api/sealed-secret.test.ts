// Secrets sealed to a node: only that node's private key opens them, for that Secret and version,
// and nothing of the value shows in what travels.

import t from 'tap'
import { joinRequestProblems } from '../../src/api/join.js'
import { decodeUp } from '../../src/api/protocol-decode.js'
import { SealedSecretError, generateSealingKeyPair, isSealed, isSealingKey, openSecret, sealSecret, sealingPublicKey } from '../../src/api/sealed-secret.js'
import type { KubeObject } from '../../src/api/types.js'

const VALUE = 'hunter2-correct-horse-battery'
const secret: KubeObject = {
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: {
    name: 'db',
    namespace: 'shop',
    uid: 'u-1',
    resourceVersion: '42',
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { password: VALUE } }) },
  },
  type: 'Opaque',
  data: { password: Buffer.from(VALUE).toString('base64') },
} as KubeObject

const pi = generateSealingKeyPair()
const other = generateSealingKeyPair()

t.test('a key pair is two 32-byte base64 keys, the public one derived from the private one', async (t) => {
  t.ok(isSealingKey(pi.privateKey))
  t.ok(isSealingKey(pi.publicKey))
  t.equal(sealingPublicKey(pi.privateKey), pi.publicKey)
  t.not(other.publicKey, pi.publicKey)
  t.notOk(isSealingKey('abc='))
  t.notOk(isSealingKey(Buffer.alloc(32).toString('base64url')))
})

t.test('round trip: the node opens the Secret as it was, and the sealed form shows no trace of the value', async (t) => {
  const sealed = sealSecret(secret, 'pi-1', pi.publicKey)
  t.ok(isSealed(sealed))
  t.same(sealed.metadata, { name: 'db', namespace: 'shop', uid: 'u-1', resourceVersion: '42' }, 'only the identity is in the clear: no annotations')
  t.equal((sealed as any).data, undefined)
  const wire = JSON.stringify(sealed)
  t.notMatch(wire, VALUE)
  t.notMatch(wire, Buffer.from(VALUE).toString('base64'))
  t.same(openSecret(sealed, 'pi-1', pi.privateKey), secret)
  t.not(sealSecret(secret, 'pi-1', pi.publicKey).sealed.ciphertext, sealed.sealed.ciphertext, 'each sealing uses a fresh ephemeral key')
})

t.test('another node, even handed the box, cannot open it', async (t) => {
  const sealed = sealSecret(secret, 'pi-1', pi.publicKey)
  t.throws(() => openSecret(sealed, 'pi-2', other.privateKey), { problem: 'wrong-key' } as any, 'the box names another key')
  const relabelled = { ...sealed, sealed: { ...sealed.sealed, to: other.publicKey } }
  t.throws(() => openSecret(relabelled, 'pi-2', other.privateKey), { problem: 'refused' } as any, 'naming its key does not help')
  t.throws(() => openSecret(sealed, 'pi-2', pi.privateKey), { problem: 'refused' } as any, 'the right key under another node name is refused (bound to the node)')
})

t.test('tampering is refused: ciphertext, identity, version, nonce', async (t) => {
  const sealed = sealSecret(secret, 'pi-1', pi.publicKey)
  const flipped = Buffer.from(sealed.sealed.ciphertext, 'base64')
  flipped[3] ^= 1
  const cases: Array<[string, KubeObject]> = [
    ['a flipped ciphertext bit', { ...sealed, sealed: { ...sealed.sealed, ciphertext: flipped.toString('base64') } }],
    ['another name', { ...sealed, metadata: { ...sealed.metadata, name: 'web' } }],
    ['another namespace', { ...sealed, metadata: { ...sealed.metadata, namespace: 'default' } }],
    ['another resourceVersion (an old box replayed as new)', { ...sealed, metadata: { ...sealed.metadata, resourceVersion: '43' } }],
    ['another uid', { ...sealed, metadata: { ...sealed.metadata, uid: 'u-2' } }],
    ['another nonce', { ...sealed, sealed: { ...sealed.sealed, nonce: Buffer.alloc(12, 1).toString('base64') } }],
  ]
  for (const [what, box] of cases) {
    const err = t.throws(() => openSecret(box, 'pi-1', pi.privateKey), SealedSecretError, what) as unknown as SealedSecretError
    t.equal(err?.problem, 'refused', what)
  }
})

t.test('a Secret that is not sealed, or badly formed, is refused with the field named', async (t) => {
  t.throws(() => openSecret(secret, 'pi-1', pi.privateKey), { problem: 'malformed', message: /sealed: missing/ })
  const sealed = sealSecret(secret, 'pi-1', pi.publicKey)
  t.throws(() => openSecret({ ...sealed, sealed: { ...sealed.sealed, alg: 'none' } } as KubeObject, 'pi-1', pi.privateKey), { message: /sealed\.alg/ })
  t.throws(() => openSecret({ ...sealed, sealed: { ...sealed.sealed, nonce: 7 } } as unknown as KubeObject, 'pi-1', pi.privateKey), { message: /sealed\.nonce/ })
  t.throws(() => openSecret({ ...sealed, sealed: { ...sealed.sealed, ciphertext: 'AAAA' } }, 'pi-1', pi.privateKey), { message: /sealed\.ciphertext/ })
  t.throws(() => sealSecret(secret, 'pi-1', 'not-a-key'), /public key of node pi-1/)
})

t.test('a join request or a node status with a malformed public key is refused, naming the field', async (t) => {
  t.same(joinRequestProblems({ token: 'x', nodeName: 'pi', secretsPublicKey: pi.publicKey }), [])
  t.match(joinRequestProblems({ token: 'x', nodeName: 'pi', secretsPublicKey: 'short' }), [/^secretsPublicKey: /])
  t.ok(decodeUp('node-status', Buffer.from(JSON.stringify({ status: {}, secretsPublicKey: pi.publicKey }))).ok)
  const bad = decodeUp('node-status', Buffer.from(JSON.stringify({ status: {}, secretsPublicKey: 42 })))
  t.match(bad, { ok: false, reason: /secretsPublicKey: expected an X25519 public key/ })
})
