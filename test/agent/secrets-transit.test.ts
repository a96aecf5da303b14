// The node's side of Secrets in transit: its key pair kept owner-only and the same across starts,
// and a desired message whose Secrets are opened, or left out and reported when they do not open.

import t from 'tap'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { SECRETS_KEY_FILE, loadOrMakeSecretsKey, openDesiredSecrets } from '../../src/agent/secrets-transit.js'
import type { DesiredMessage, DesiredObject } from '../../src/api/protocol.js'
import { generateSealingKeyPair, sealSecret, sealingPublicKey, type SealedSecretError } from '../../src/api/sealed-secret.js'

const dir = mkdtempSync(join(tmpdir(), 'bramble-secrets-key-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))

t.test('the key pair is made once, owner-only, and read back on the next start', async (t) => {
  const first = loadOrMakeSecretsKey(dir)
  const path = join(dir, SECRETS_KEY_FILE)
  t.equal(statSync(path).mode & 0o777, 0o600)
  t.equal(sealingPublicKey(readFileSync(path, 'utf8').trim()), first.publicKey)
  t.same(loadOrMakeSecretsKey(dir), first, 'the same key after a restart')
})

t.test('a key file that holds no key is refused with its path and what to do', async (t) => {
  const bad = mkdtempSync(join(tmpdir(), 'bramble-secrets-bad-'))
  t.teardown(() => rmSync(bad, { recursive: true, force: true }))
  writeFileSync(join(bad, SECRETS_KEY_FILE), 'garbage\n', { mode: 0o644 })
  t.throws(() => loadOrMakeSecretsKey(bad), { message: new RegExp(`${SECRETS_KEY_FILE} does not hold an X25519 private key; move it away`) })
})

t.test('Secrets of a desired message are opened; one that does not open is left out and reported, the rest stay', async (t) => {
  const own = generateSealingKeyPair()
  const other = generateSealingKeyPair()
  const secret = (name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default', uid: `u-${name}`, resourceVersion: '5' }, data: { k: 'dg==' } }) as DesiredObject
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: {} } as DesiredObject
  const msg: DesiredMessage = {
    revision: 9,
    since: 0,
    full: true,
    upserts: [sealSecret(secret('good'), 'pi', own.publicKey) as DesiredObject, sealSecret(secret('elsewhere'), 'pi', other.publicKey) as DesiredObject, secret('plain'), pod],
    deletes: [],
  }
  const refused: SealedSecretError[] = []
  const opened = openDesiredSecrets(msg, 'pi', own.privateKey, (err) => refused.push(err))
  t.same(opened.upserts, [secret('good'), pod], 'the good Secret opened as it was, the pod untouched')
  t.same(refused.map((e) => [e.secret, e.problem]), [['default/elsewhere', 'wrong-key'], ['default/plain', 'malformed']], 'a box for another key and a Secret in the clear are refused')
  t.equal(opened.revision, 9)

  const noSecrets: DesiredMessage = { ...msg, upserts: [pod] }
  t.equal(openDesiredSecrets(noSecrets, 'pi', own.privateKey, () => t.fail('nothing to refuse')), noSecrets, 'a message without Secrets is passed as it is')
})
