// Secrets encrypted at rest in the hub's store: the Store contract through the encrypting
// decorator, the raw LMDB files holding no trace of a Secret's value (objects, change log,
// compaction), a wrong key refused clearly, and a key rotation that re-encrypts everything.

import t, { type Test } from 'tap'
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EncryptedStore } from '../../src/hub/encrypted-store.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { rotateSecretsKey } from '../../src/hub/secret-key-rotation.js'
import type { ObjectKey, Store, StoreEvent } from '../../src/hub/store.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { SecretKeyring } from '../../src/lib/secret-keyring.js'
import { storeContract } from '../contract/store.js'

const SECRET = KINDS.find((k) => k.kind === 'Secret')!
const VALUE = 'hunter2-Bramble-distinctive-7f3a9c'
const NEXT_VALUE = 'correct-horse-Bramble-battery-51d0'
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
const password = (o: KubeObject | undefined) => (o?.data as Record<string, string> | undefined)?.password
const secretKey = (name: string): ObjectKey => ({ resource: 'secrets', namespace: 'default', name })

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-encrypted-store-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

async function openHubStore(dataDir: string): Promise<{ store: Store; keyring: SecretKeyring }> {
  const keyring = SecretKeyring.openOrCreate(join(dataDir, 'secrets.key'))
  return { store: new EncryptedStore(await openLmdbStore({ path: join(dataDir, 'store') }), keyring), keyring }
}

/** Every file under `dir` whose raw bytes contain one of `needles`, with the needle found. */
function filesContaining(dir: string, needles: string[]): string[] {
  const found: string[] = []
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name)
    if (!statSync(path).isFile()) continue
    const bytes = readFileSync(path)
    for (const n of needles) if (bytes.includes(Buffer.from(n, 'utf8'))) found.push(`${name} holds ${JSON.stringify(n)}`)
  }
  return found
}

const needles = (...values: string[]) => values.flatMap((v) => [v, b64(v)])

async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

const secretBody = (name: string, value: string) => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: {
    name,
    labels: { app: 'db' },
    // kubectl apply repeats the whole object here: annotations must be sealed too.
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { password: value } }) },
  },
  type: 'Opaque',
  data: { password: b64(value) },
})

storeContract(t, 'LMDB encrypting every resource the contract uses', async (options) => {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-encrypted-contract-'))
  const keyring = SecretKeyring.openOrCreate(join(dir, 'secrets.key'))
  const store = new EncryptedStore(await openLmdbStore({ path: join(dir, 'store'), ...options }), keyring, ['pods', 'namespaces', 'podsx', 'secrets'])
  return {
    store,
    async cleanup() {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
})

t.test("a Secret written through the Registry is nowhere in the store's files, yet get, list and watch return it", async (t) => {
  const dir = await tempDir(t)
  const { store } = await openHubStore(dir)
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const registry = new Registry(store, systemClock, silentLogger())
  const events: StoreEvent[] = []
  const watch = store.watch({ resource: 'secrets' }, await store.revision(), (e) => events.push(e))
  const ctx = { dryRun: false, fieldValidation: 'Strict' as const }

  const created = await registry.create(SECRET, 'default', secretBody('db', VALUE), ctx)
  t.equal(password(created.object), b64(VALUE), 'the write returns the value')
  await registry.create(SECRET, 'default', secretBody('gone', VALUE), ctx)
  await registry.delete(SECRET, 'default', 'gone', { dryRun: false })
  const updated = await registry.update(SECRET, 'default', 'db', { ...secretBody('db', NEXT_VALUE), metadata: { ...secretBody('db', NEXT_VALUE).metadata, resourceVersion: created.object.metadata.resourceVersion } }, ctx)
  await until(() => events.length === 4, 'the four writes are watched')
  watch.stop()

  t.same(events.map((e) => `${e.type} ${e.key.name} ${Buffer.from(String(password(e.object)), 'base64').toString()}`), [
    `ADDED db ${VALUE}`,
    `ADDED gone ${VALUE}`,
    `DELETED gone ${VALUE}`,
    `MODIFIED db ${NEXT_VALUE}`,
  ])
  t.equal(events[3]!.object.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], JSON.stringify({ stringData: { password: NEXT_VALUE } }))
  const got = await registry.get(SECRET, 'default', 'db')
  t.equal(password(got), b64(NEXT_VALUE))
  t.equal(got.metadata.resourceVersion, updated.object.metadata.resourceVersion)
  t.equal(got.metadata.uid, created.object.metadata.uid, 'the uid the store stamped comes back')
  t.same(got.metadata.labels, { app: 'db' })
  const listed = await registry.list(SECRET, 'default')
  t.same(listed.items.map((o) => [o.metadata.name, password(o)]), [['db', b64(NEXT_VALUE)]])

  // A replay from the log, the way an informer starts after a restart.
  const replay: StoreEvent[] = []
  const again = store.watch({ resource: 'secrets', namespace: 'default' }, 0, (e) => replay.push(e))
  await until(() => replay.length === 4, 'the replay arrives')
  again.stop()
  t.equal(password(replay[0]!.object), b64(VALUE), 'replayed events are opened too')

  await store.compact((await store.revision()) - 1)
  await store.close()
  t.same(filesContaining(join(dir, 'store'), needles(VALUE, NEXT_VALUE)), [], 'no file under the store holds a value, raw or in base64')
  t.same(filesContaining(join(dir, 'store'), ['kubectl.kubernetes.io/last-applied-configuration']), [], 'annotations are sealed with the rest')
  t.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600, 'the key file is owner-only')

  const raw = await openLmdbStore({ path: join(dir, 'store') })
  t.teardown(() => raw.close())
  const stored = (await raw.get(secretKey('db')))!
  t.match(stored.sealed, /^bramble-aead-v1:[0-9a-f]{8}:/, 'the stored form is sealed')
  t.equal(stored.data, undefined)
  t.same(Object.keys(stored.metadata).sort(), ['creationTimestamp', 'name', 'namespace', 'resourceVersion', 'uid'], 'only what the store stamps stays in the clear')
})

t.test('a Secret does not open with another key file, nor when its ciphertext is moved to another name', async (t) => {
  const dir = await tempDir(t)
  const { store, keyring } = await openHubStore(dir)
  await store.create(secretKey('db'), secretBody('db', VALUE) as KubeObject)
  await store.close()

  // A key file of another data dir: the key id is unknown.
  const other = SecretKeyring.openOrCreate(join(dir, 'other.key'))
  const foreign = new EncryptedStore(await openLmdbStore({ path: join(dir, 'store') }), other)
  await t.rejects(foreign.get(secretKey('db')), { code: 'BRAMBLE_SECRET_KEY_UNKNOWN', message: /Secret default\/db was encrypted with key [0-9a-f]{8}, which the secrets key file .*other\.key does not hold/ })
  await foreign.close()

  // The same key id with other key bytes: authentication fails.
  const file = JSON.parse(readFileSync(join(dir, 'secrets.key'), 'utf8'))
  file.keys[keyring.primaryId] = Buffer.alloc(32, 7).toString('base64')
  writeFileSync(join(dir, 'forged.key'), JSON.stringify(file), { mode: 0o600 })
  const forged = new EncryptedStore(await openLmdbStore({ path: join(dir, 'store') }), SecretKeyring.open(join(dir, 'forged.key')))
  await t.rejects(forged.get(secretKey('db')), { code: 'BRAMBLE_SECRET_DECRYPT', message: /Secret default\/db does not decrypt with key .*: the key is wrong or the data was altered or moved/ })
  await forged.close()

  // The right key, but the sealed value copied under another name.
  const raw = await openLmdbStore({ path: join(dir, 'store') })
  const stored = (await raw.get(secretKey('db')))!
  await raw.create(secretKey('copy'), { ...stored, metadata: { ...stored.metadata, name: 'copy', uid: undefined, resourceVersion: undefined } })
  await raw.close()
  const right = new EncryptedStore(await openLmdbStore({ path: join(dir, 'store') }), SecretKeyring.open(join(dir, 'secrets.key')))
  t.teardown(() => right.close())
  t.equal(password(await right.get(secretKey('db'))), b64(VALUE), 'the original still opens')
  await t.rejects(right.get(secretKey('copy')), { code: 'BRAMBLE_SECRET_DECRYPT' }, 'the moved copy does not')
})

t.test('a malformed key file is refused naming the file and the field', async (t) => {
  const dir = await tempDir(t)
  writeFileSync(join(dir, 'secrets.key'), JSON.stringify({ primary: 'aa', keys: { aa: 'c2hvcnQ=' } }), { mode: 0o600 })
  t.throws(() => SecretKeyring.open(join(dir, 'secrets.key')), { code: 'BRAMBLE_SECRET_KEY_FILE', message: /secrets\.key is malformed: keys\.aa must be 32 bytes in base64/ })
  writeFileSync(join(dir, 'secrets.key'), JSON.stringify({ primary: 'bb', keys: {} }), { mode: 0o600 })
  t.throws(() => SecretKeyring.open(join(dir, 'secrets.key')), { code: 'BRAMBLE_SECRET_KEY_FILE', message: /"primary" must name one of "keys"/ })
})

t.test('rotating the key re-encrypts every Secret, objects and change log, then drops the old key', async (t) => {
  const dir = await tempDir(t)
  const { store, keyring } = await openHubStore(dir)
  const oldId = keyring.primaryId
  await store.create(secretKey('db'), secretBody('db', VALUE) as KubeObject)
  const other = await store.create(secretKey('api'), secretBody('api', VALUE) as KubeObject)
  await store.update(secretKey('api'), { ...other, data: { password: b64(NEXT_VALUE) } })
  await store.create({ resource: 'configmaps', namespace: 'default', name: 'plain' }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'plain', namespace: 'default' }, data: { k: 'v' } })
  const revision = await store.revision()
  await store.close()

  const result = await rotateSecretsKey(dir)
  t.not(result.newKeyId, oldId)
  t.same(result.droppedKeyIds, [oldId])
  t.equal(result.rewritten, 5, 'two objects and three log entries')
  const file = JSON.parse(readFileSync(join(dir, 'secrets.key'), 'utf8'))
  t.same(Object.keys(file.keys), [result.newKeyId], 'only the new key is left')
  t.equal(file.primary, result.newKeyId)
  t.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600)

  const raw = await openLmdbStore({ path: join(dir, 'store') })
  const stored: KubeObject[] = []
  const w = raw.watch({ resource: 'secrets' }, 0, (e) => stored.push(e.object))
  await until(() => stored.length === 3, 'the raw log is read')
  w.stop()
  stored.push(...(await raw.list({ resource: 'secrets' })).items)
  t.same(stored.map((o) => SecretKeyring.keyIdOf(String(o.sealed))), Array(5).fill(result.newKeyId), 'every stored value is sealed with the new key')
  t.equal(await raw.revision(), revision, 'no revision was spent: no object changed')
  await raw.close()

  const { store: reopened } = await openHubStore(dir)
  t.teardown(() => reopened.close())
  t.equal(password(await reopened.get(secretKey('db'))), b64(VALUE))
  t.equal(password(await reopened.get(secretKey('api'))), b64(NEXT_VALUE))
  const replay: StoreEvent[] = []
  const again = reopened.watch({ resource: 'secrets' }, 0, (e) => replay.push(e))
  await until(() => replay.length === 3, 'the replay arrives')
  again.stop()
  t.same(replay.map((e) => password(e.object)), [b64(VALUE), b64(VALUE), b64(NEXT_VALUE)], 'the change log opens with the new key')
  t.same(filesContaining(join(dir, 'store'), needles(VALUE, NEXT_VALUE)), [], 'still no plaintext in the store files')
  t.same(filesContaining(join(dir, 'store'), [`bramble-aead-v1:${oldId}:`]), [], 'nor, in freed pages, anything sealed with the dropped key')
})

t.test('a rotation cut short after adding the new key is finished by the next run', async (t) => {
  const dir = await tempDir(t)
  const { store, keyring } = await openHubStore(dir)
  await store.create(secretKey('db'), secretBody('db', VALUE) as KubeObject)
  await store.close()
  const newId = keyring.addPrimary()
  const { store: between } = await openHubStore(dir)
  t.equal(password(await between.get(secretKey('db'))), b64(VALUE), 'with both keys the hub reads what the old one sealed')
  await between.close()
  const result = await rotateSecretsKey(dir)
  t.equal(result.newKeyId, newId, 'the key already added is the one used')
  t.equal(result.droppedKeyIds.length, 1)
  const { store: after } = await openHubStore(dir)
  t.teardown(() => after.close())
  t.equal(password(await after.get(secretKey('db'))), b64(VALUE))
})

t.test('a rotation seals Secrets a hub kept in the clear before encryption, leaving no plaintext even in freed pages', async (t) => {
  const dir = await tempDir(t)
  const plain = await openLmdbStore({ path: join(dir, 'store') })
  const old = await plain.create(secretKey('db'), secretBody('db', VALUE) as KubeObject)
  await plain.update(secretKey('db'), { ...old, data: { password: b64(NEXT_VALUE) } })
  await plain.close()
  t.not(filesContaining(join(dir, 'store'), needles(VALUE)).length, 0, 'the unencrypted store does hold the value (the grep finds what is there)')

  const { store: before } = await openHubStore(dir)
  t.equal(password(await before.get(secretKey('db'))), b64(NEXT_VALUE), 'a Secret in the clear is still read')
  await before.close()
  const result = await rotateSecretsKey(dir)
  t.equal(result.rewritten, 3, 'the object and both log entries')
  t.same(filesContaining(dir, needles(VALUE, NEXT_VALUE)), [], 'no file in the data dir holds either value any more')
  t.equal(statSync(join(dir, 'store', 'data.mdb')).mode & 0o777, 0o600, 'the compacted data file is owner-only')
  const { store: after } = await openHubStore(dir)
  t.teardown(() => after.close())
  t.equal(password(await after.get(secretKey('db'))), b64(NEXT_VALUE))
})
