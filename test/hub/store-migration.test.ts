// `bramble migrate-store`: a hub's LMDB store copied into etcd by the real command, then served by a
// hub on etcd with the same data dir: every object there with its uid and creationTimestamp,
// Secrets still sealed and still opening, every resourceVersion above the old store's; refusals
// for a running hub, a prefix already used, and bad flags.

import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { EncryptedStore } from '../../src/hub/encrypted-store.js'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import type { KubeObject } from '../../src/api/types.js'
import { SecretKeyring } from '../../src/lib/secret-keyring.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { runCli } from '../helpers/e2e.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'
import { startHubProcess } from '../helpers/hub-process.js'

const missing = etcdMissing()
/** Skips each test, saying why, where no etcd binary is installed. */
const needsEtcd = { skip: missing ?? false }

const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'
const SECRETS = '/api/v1/namespaces/default/secrets'
const PASSWORD = Buffer.from('etc-migrated-password-93be').toString('base64')

t.test('a stopped LMDB hub moves to etcd with one command and serves the same objects', needsEtcd, async (t) => {
  const etcd = await startEtcd()
  t.teardown(() => etcd.stop())
  const dataDir = mkdtempSync(join(tmpdir(), 'etc-migrate-'))
  t.teardown(() => {
    closeApiAgents()
    rmSync(dataDir, { recursive: true, force: true })
  })

  // A hub on LMDB with some history: creates, an update, a delete, a Secret.
  let hub = await startHubProcess({ dataDir, timeoutMs: 60_000 })
  t.teardown(() => hub.stop())
  const api = () => ({ server: hub.server, ca: hub.ca, token: hub.token })
  for (let i = 0; i < 5; i++) t.equal((await apiRequest(api(), 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `cm${i}` }, data: { i: String(i) } })).status, 201)
  const cm0 = (await apiRequest(api(), 'GET', `${CONFIGMAPS}/cm0`)).json
  t.equal((await apiRequest(api(), 'PUT', `${CONFIGMAPS}/cm0`, { ...cm0, data: { i: 'changed' } })).status, 200)
  t.equal((await apiRequest(api(), 'DELETE', `${CONFIGMAPS}/cm4`)).status, 200)
  t.equal((await apiRequest(api(), 'POST', SECRETS, { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, data: { password: PASSWORD } })).status, 201)
  const before = (await apiRequest(api(), 'GET', CONFIGMAPS)).json
  const beforeRevision = Number(before.metadata.resourceVersion)

  const url = `${etcd.url}/etc-migrated/`
  const whileRunning = await runCli(['migrate-store', '--from', dataDir, '--to', url])
  t.equal(whileRunning.code, 1, 'refused while the hub runs')
  t.match(whileRunning.stderr, /is open in another process .*stop the hub first/)
  await hub.stop()

  // What LMDB holds, as stored (Secrets sealed), to compare with etcd after.
  const lmdb = await openLmdbStore({ path: join(dataDir, 'store') })
  const lmdbRevision = await lmdb.revision()
  const stored = new Map<string, KubeObject>()
  for (const resource of ['configmaps', 'secrets', 'namespaces']) for (const o of (await lmdb.list({ resource })).items) stored.set(`${resource}/${o.metadata.namespace ?? ''}/${o.metadata.name}`, o)
  await lmdb.close()

  const migrated = await runCli(['migrate-store', '--from', dataDir, '--to', url])
  t.equal(migrated.code, 0, migrated.stderr)
  t.match(migrated.stderr, new RegExp(`copied \\d+ objects from ${dataDir} \\(revision ${lmdbRevision}\\)`))

  const raw = await openEtcdStore({ endpoints: etcd.endpoints, prefix: '/etc-migrated/' })
  t.teardown(() => raw.close())
  t.ok((await raw.compactedRevision()) >= lmdbRevision, 'history from before the move is not replayed')
  t.throws(() => raw.watch({ resource: 'configmaps' }, beforeRevision, () => {}), { code: 'BRAMBLE_STORE_COMPACTED' }, 'a watch from an old revision is told to list again')
  for (const [id, old] of stored) {
    const [resource, namespace, name] = id.split('/') as [string, string, string]
    const now = await raw.get({ resource, namespace, name })
    t.ok(now, `${id} was copied`)
    t.equal(now?.metadata.uid, old.metadata.uid, `${id} keeps its uid`)
    t.equal(now?.metadata.creationTimestamp, old.metadata.creationTimestamp, `${id} keeps its creationTimestamp`)
    t.ok(Number(now?.metadata.resourceVersion) > lmdbRevision, `${id}'s resourceVersion is above the old store's revision`)
    if (resource === 'secrets') t.notOk(JSON.stringify(now).includes(PASSWORD), `${id} is still sealed in etcd`)
  }
  const keyring = SecretKeyring.open(join(dataDir, 'secrets.key'))
  const opened = await new EncryptedStore(raw, keyring).get({ resource: 'secrets', namespace: 'default', name: 'db' })
  t.equal((opened?.data as Record<string, string>).password, PASSWORD, "the data dir's key opens the copied Secret")

  const again = await runCli(['migrate-store', '--from', dataDir, '--to', url])
  t.equal(again.code, 1, 'a second copy into the same prefix is refused')
  t.match(again.stderr, /already holds \d+ keys; migrate into an empty prefix/)

  hub = await startHubProcess({ dataDir, args: ['--store', url], timeoutMs: 60_000 })
  const after = (await apiRequest(api(), 'GET', CONFIGMAPS)).json
  t.same(
    after.items.map((o: any) => `${o.metadata.name}=${o.data.i}`),
    before.items.map((o: any) => `${o.metadata.name}=${o.data.i}`),
    'the hub on etcd lists what the hub on LMDB listed',
  )
  const secret = await apiRequest(api(), 'GET', `${SECRETS}/db`)
  t.equal(secret.json.data?.password, PASSWORD, 'and opens the Secret')
  const created = await apiRequest(api(), 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'new' } })
  t.ok(Number(created.json.metadata.resourceVersion) > beforeRevision, 'new writes go on above the old revisions')
})

t.test('migrate-store refuses bad flags naming them', async (t) => {
  const noTo = await runCli(['migrate-store', '--from', '/tmp'])
  t.equal(noTo.code, 2)
  t.match(noTo.stderr, /--to is required/)
  const lmdbTo = await runCli(['migrate-store', '--from', '/tmp', '--to', 'lmdb'])
  t.equal(lmdbTo.code, 2)
  t.match(lmdbTo.stderr, /--to must be an etcd:\/\/ URL, got "lmdb"/)
  const noStore = await runCli(['migrate-store', '--from', '/tmp/etc-nothing-here', '--to', 'etcd://127.0.0.1:1'])
  t.equal(noStore.code, 1)
  t.match(noStore.stderr, /\/tmp\/etc-nothing-here holds no hub store/)
})
