// Tokens and node MQTT credentials kept in a store several hubs share (shared-tokens.ts,
// shared-node-credentials.ts), on real stores: LMDB, and etcd with each "hub" on a connection of its
// own. What one hub makes, the other admits; what one revokes, the other refuses; the store holds
// hashes and a sealed hub password, never a secret in clear.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { MOSQUITTO_PASSWORD_FILE, writeMosquittoAuthFiles } from '../../src/hub/mosquitto-config.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { HUB_CREDENTIAL_RESOURCE, JOIN_TOKEN_RESOURCE, NODE_CREDENTIAL_RESOURCE, sharedClusterId, USER_TOKEN_RESOURCE } from '../../src/hub/shared-records.js'
import { openSharedNodeCredentials } from '../../src/hub/shared-node-credentials.js'
import { SharedTokenStore } from '../../src/hub/shared-tokens.js'
import type { Store } from '../../src/hub/store.js'
import { parseJoinToken, TokenStore } from '../../src/hub/tokens.js'
import { systemClock } from '../../src/lib/clock.js'
import { ConfigError } from '../../src/lib/config-errors.js'
import { SecretKeyring } from '../../src/lib/secret-keyring.js'
import { until } from '../helpers/e2e.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'

const CA = 'c'.repeat(64)

/** Two hubs' views of one store: the same store object on LMDB, two connections on etcd. */
type StorePair = (t: Test) => Promise<[Store, Store]>

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'hid-shared-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

const lmdbPair: StorePair = async (t) => {
  const store = await openLmdbStore({ path: join(tempDir(t), 'store') })
  t.teardown(() => store.close())
  return [store, store]
}

function etcdPair(endpoints: () => string[]): StorePair {
  let n = 0
  return async (t) => {
    const prefix = `/hid-shared-${process.pid}-${n++}/`
    const a = await openEtcdStore({ endpoints: endpoints(), prefix })
    const b = await openEtcdStore({ endpoints: endpoints(), prefix })
    t.teardown(async () => (await a.close(), await b.close()))
    return [a, b]
  }
}

async function openTokens(t: Test, store: Store, importFrom?: TokenStore): Promise<SharedTokenStore> {
  const tokens = await SharedTokenStore.open(store, systemClock, importFrom ? { importFrom } : {})
  t.teardown(() => tokens.close())
  return tokens
}

async function openCredentials(t: Test, store: Store, keyring: SecretKeyring, importFrom?: string): Promise<NodeCredentials> {
  const shared = await openSharedNodeCredentials({ store, keyring, clock: systemClock, ...(importFrom ? { importFrom } : {}) })
  t.teardown(() => shared.close())
  return shared.credentials
}

function suite(name: string, pair: StorePair): void {
  t.test(`${name}: a join token made through one hub admits at the other at once, and a revocation anywhere refuses it everywhere`, async (t) => {
    const [storeA, storeB] = await pair(t)
    const a = await openTokens(t, storeA)
    const b = await openTokens(t, storeB)
    const made = b.createJoinToken({ caHash: CA, ttlMs: 60_000, description: 'through b' })
    await made.saved
    t.same(await a.verifyJoinToken(made.token, CA), { ok: true, id: made.info.id }, 'hub A admits it before its watch may have brought it')
    t.same(await a.verifyJoinToken(made.token, 'd'.repeat(64)), { ok: false, reason: 'ca-mismatch' })
    const wrongSecret = made.token.replace(/\.[a-z0-9]{16}$/, '.aaaaaaaaaaaaaaaa')
    t.same(await a.verifyJoinToken(wrongSecret, CA), { ok: false, reason: 'unknown' })
    t.same(await a.verifyJoinToken('garbage', CA), { ok: false, reason: 'malformed' })
    await until('hub A lists it', () => a.listJoinTokens().some((i) => i.id === made.info.id && i.description === 'through b'), 10_000)

    t.equal((await a.revokeJoinToken(made.info.id)).revoked, true, 'revoked through hub A')
    await until('hub B refuses it', async () => (await b.verifyJoinToken(made.token, CA)).ok === false, 10_000)
    t.same(await b.verifyJoinToken(made.token, CA), { ok: false, reason: 'revoked' })
    t.equal(b.listJoinTokens().find((i) => i.id === made.info.id)?.revoked, true, 'still listed, as revoked')
    await t.rejects(b.revokeJoinToken('nosuch'), { code: 'BRAMBLE_JOIN_TOKEN_NOT_FOUND' })
  })

  t.test(`${name}: a user token issued through one hub authenticates at the other; an unknown one does not`, async (t) => {
    const [storeA, storeB] = await pair(t)
    const a = await openTokens(t, storeA)
    const b = await openTokens(t, storeB)
    t.ok(a.isEmpty(), 'a store nobody used holds no tokens')
    const token = await b.issueUserToken('viewer', 'read-only')
    t.same(await a.authenticate(token), { name: 'viewer', role: 'read-only' })
    t.equal(await a.authenticate(token + 'x'), undefined)
    t.notOk(a.isEmpty())
  })

  t.test(`${name}: the store keeps hashes only`, async (t) => {
    const [store] = await pair(t)
    const tokens = await openTokens(t, store)
    const user = await tokens.issueUserToken('admin', 'admin')
    const made = tokens.createJoinToken({ caHash: CA })
    await made.saved
    const raw = JSON.stringify([...(await store.list({ resource: USER_TOKEN_RESOURCE })).items, ...(await store.list({ resource: JOIN_TOKEN_RESOURCE })).items])
    t.notOk(raw.includes(user), 'no user token in clear')
    t.notOk(raw.includes(parseJoinToken(made.token)!.secret), 'no join token secret in clear')
  })

  t.test(`${name}: the first hub on an unused store brings its tokens file along; a later hub does not`, async (t) => {
    const [storeA, storeB] = await pair(t)
    const file = TokenStore.open(tempDir(t), systemClock)
    const admin = file.issueUserToken('admin', 'admin')
    const joinToken = file.createJoinToken({ caHash: CA }).token
    const a = await openTokens(t, storeA, file)
    t.same(await a.authenticate(admin), { name: 'admin', role: 'admin' }, 'the file admin token works on the shared store')
    t.same(await a.verifyJoinToken(joinToken, CA), { ok: true, id: parseJoinToken(joinToken)!.id })

    const later = TokenStore.open(tempDir(t), systemClock)
    const stale = later.issueUserToken('admin', 'admin')
    const b = await openTokens(t, storeB, later)
    t.equal(await b.authenticate(stale), undefined, "a later hub's own file does not add to the store's tokens")
    t.same(await b.authenticate(admin), { name: 'admin', role: 'admin' })
  })

  t.test(`${name}: node credentials issued through one hub are known to the other, its Mosquitto file included; revoking anywhere refuses them everywhere`, async (t) => {
    const [storeA, storeB] = await pair(t)
    const keyring = SecretKeyring.openOrCreate(join(tempDir(t), 'secrets.key'))
    const a = await openCredentials(t, storeA, keyring)
    const b = await openCredentials(t, storeB, keyring)
    t.same(a.hubCredentials(), b.hubCredentials(), 'both hubs present one broker password')
    const changesA: string[] = []
    a.onChange((c) => changesA.push(`${c.kind} ${c.node}`))

    const { password } = await b.issue('hid-n1')
    await until('hub A knows the node', () => a.verify('hid-n1', password), 10_000)
    t.notOk(a.verify('hid-n1', password + 'x'))
    t.same(changesA, ['issued hid-n1'], "hub A's listeners heard of it (they rewrite the Mosquitto files)")
    const dir = tempDir(t)
    await writeMosquittoAuthFiles(dir, a)
    const lines = readFileSync(join(dir, MOSQUITTO_PASSWORD_FILE), 'utf8').trim().split('\n')
    t.same(lines.map((l) => l.split(':')[0]), ['bramble.hub', 'hid-n1'], "hub A's password file holds the hub and the node that joined through B")

    t.equal(await b.revoke('hid-n1', 'tok123'), true, 'revoked through hub B')
    await until('hub A refuses the node', () => !a.verify('hid-n1', password), 10_000)
    t.same(changesA, ['issued hid-n1', 'revoked hid-n1'])
    t.equal(a.retiredWith('hid-n1'), 'tok123', 'hub A knows which token may not bring it back')
    await writeMosquittoAuthFiles(dir, a)
    t.notMatch(readFileSync(join(dir, MOSQUITTO_PASSWORD_FILE), 'utf8'), /hid-n1/, 'and its password file drops it')

    const again = await a.issue('hid-n1')
    await until('a new join through A reaches B', () => b.verify('hid-n1', again.password), 10_000)
    t.equal(b.retiredWith('hid-n1'), undefined, 'a new join clears the retirement')
  })

  t.test(`${name}: the store holds no node password and only a sealed hub password`, async (t) => {
    const [store] = await pair(t)
    const keyring = SecretKeyring.openOrCreate(join(tempDir(t), 'secrets.key'))
    const creds = await openCredentials(t, store, keyring)
    const { password } = await creds.issue('hid-n2')
    const raw = JSON.stringify([...(await store.list({ resource: NODE_CREDENTIAL_RESOURCE })).items, ...(await store.list({ resource: HUB_CREDENTIAL_RESOURCE })).items])
    t.notOk(raw.includes(password), 'no node password in clear')
    t.notOk(raw.includes(creds.hubCredentials().password), 'no hub password in clear')
  })

  t.test(`${name}: a hub with another secrets key is refused, naming --store and what to copy`, async (t) => {
    const [storeA, storeB] = await pair(t)
    await openCredentials(t, storeA, SecretKeyring.openOrCreate(join(tempDir(t), 'secrets.key')))
    const other = join(tempDir(t), 'secrets.key')
    const refused = await openCredentials(t, storeB, SecretKeyring.openOrCreate(other)).catch((err: unknown) => err)
    t.ok(refused instanceof ConfigError, 'a configuration error')
    t.match((refused as ConfigError).message, /^--store .*secrets\.key/)
    t.match((refused as ConfigError).message, other)
  })

  t.test(`${name}: the first hub's cluster id is every hub's; a data dir of another cluster is refused`, async (t) => {
    const [storeA, storeB] = await pair(t)
    t.equal(await sharedClusterId(storeA, 'aaaaaaaaaaaaaaaa', false), 'aaaaaaaaaaaaaaaa', 'the first hub sets it')
    t.equal(await sharedClusterId(storeB, 'aaaaaaaaaaaaaaaa', false), 'aaaaaaaaaaaaaaaa', 'a hub of the same cluster agrees')
    t.equal(await sharedClusterId(storeB, 'bbbbbbbbbbbbbbbb', true), 'aaaaaaaaaaaaaaaa', 'a new data dir takes it')
    const refused = await sharedClusterId(storeB, 'cccccccccccccccc', false).catch((err: unknown) => err)
    t.ok(refused instanceof ConfigError)
    t.match((refused as Error).message, /^--store .*cluster aaaaaaaaaaaaaaaa.*cluster cccccccccccccccc/)
  })

  t.test(`${name}: the first hub on an unused store brings its credentials file along`, async (t) => {
    const [storeA, storeB] = await pair(t)
    const mqttDir = join(tempDir(t), 'mqtt')
    const file = await NodeCredentials.open(mqttDir)
    const { password } = await file.issue('hid-n3')
    await file.revoke('hid-n3', 'tokold')
    const kept = await file.issue('hid-n4')
    const keyring = SecretKeyring.openOrCreate(join(tempDir(t), 'secrets.key'))
    const a = await openCredentials(t, storeA, keyring, mqttDir)
    t.equal(a.hubCredentials().password, file.hubCredentials().password, "the file's hub password becomes the shared one")
    t.ok(a.verify('hid-n4', kept.password), 'a joined node keeps working')
    t.notOk(a.verify('hid-n3', password))
    t.equal(a.retiredWith('hid-n3'), 'tokold')
    const b = await openCredentials(t, storeB, keyring, join(tempDir(t), 'nothing-here'))
    t.ok(b.verify('hid-n4', kept.password), 'another hub reads the same')
  })
}

suite('LMDB', lmdbPair)

const missing = etcdMissing()
if (missing) t.comment(`etcd suite skipped: ${missing}`)
else {
  let endpoints: string[] = []
  t.before(async () => {
    const etcd = await startEtcd(1)
    endpoints = etcd.endpoints
    t.teardown(() => etcd.stop())
  })
  suite('etcd', etcdPair(() => endpoints))
}
