// A `bramble hub` process on an etcd store (--store etcd://...): its API creates, gets, lists and
// watches objects kept in etcd, not in the data dir; they outlive a restart of the hub; and a
// watch from a revision compacted away (by another store on the same prefix, or by etcd behind
// every store's back) is 410 Gone.

import t from 'tap'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Etcd3 } from 'etcd3'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const missing = etcdMissing()
/** Skips each test, saying why, where no etcd binary is installed. */
const needsEtcd = { skip: missing ?? false }

const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'
const configMap = (name: string, value: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { value } })
const target = (hub: HubProcess): ApiTarget => ({ server: hub.server, ca: hub.ca, token: hub.token })
const watchLines = (text: string) => text.split('\n').filter(Boolean).map((line) => JSON.parse(line) as { type: string; object: any })

t.test('a hub on etcd serves create, get, list and watch, and keeps its objects across a restart', needsEtcd, async (t) => {
  const etcd = await startEtcd()
  t.teardown(() => etcd.stop())
  const dataDir = mkdtempSync(join(tmpdir(), 'etc-hub-'))
  t.teardown(() => {
    closeApiAgents()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const storeArgs = ['--store', `${etcd.url}/etc-hub/`]
  let hub = await startHubProcess({ dataDir, args: storeArgs, timeoutMs: 60_000 })
  t.teardown(() => hub.stop())
  const api = () => target(hub)

  const created = await apiRequest(api(), 'POST', CONFIGMAPS, configMap('settings', 'one'))
  t.equal(created.status, 201, created.text)
  const rv = created.json.metadata.resourceVersion as string
  const got = await apiRequest(api(), 'GET', `${CONFIGMAPS}/settings`)
  t.equal(got.status, 200)
  t.same(got.json.data, { value: 'one' })
  t.equal(got.json.metadata.resourceVersion, rv, 'get returns the revision the create took')

  const list = await apiRequest(api(), 'GET', CONFIGMAPS)
  t.same(list.json.items.map((o: any) => o.metadata.name), ['settings'])
  t.ok(Number(list.json.metadata.resourceVersion) >= Number(rv), 'the list is at or past the create')

  // A watch from the list's revision, open while the changes land.
  const watching = apiRequest(api(), 'GET', `${CONFIGMAPS}?watch=true&resourceVersion=${list.json.metadata.resourceVersion}&timeoutSeconds=5`)
  await new Promise((resolve) => setTimeout(resolve, 500))
  const updated = await apiRequest(api(), 'PUT', `${CONFIGMAPS}/settings`, { ...got.json, data: { value: 'two' } })
  t.equal(updated.status, 200, updated.text)
  const stale = await apiRequest(api(), 'PUT', `${CONFIGMAPS}/settings`, { ...got.json, data: { value: 'lost' } })
  t.equal(stale.status, 409, 'an update from the old resourceVersion is a conflict')
  t.equal((await apiRequest(api(), 'DELETE', `${CONFIGMAPS}/settings`)).status, 200)
  const events = watchLines((await watching).text)
  t.same(
    events.map((e) => `${e.type} ${e.object.metadata.name} ${e.object.data?.value}`),
    ['MODIFIED settings two', 'DELETED settings two'],
    'the watch saw the update and the delete, once each',
  )

  t.notOk(existsSync(join(dataDir, 'store')), 'no LMDB store in the data dir')
  const direct = await openEtcdStore({ endpoints: etcd.endpoints, prefix: '/etc-hub/' })
  t.teardown(() => direct.close())
  t.same((await direct.list({ resource: 'namespaces' })).items.map((o) => o.metadata.name).sort(), ['default', 'kube-public', 'kube-system'], 'the namespaces the hub made are in etcd')

  await apiRequest(api(), 'POST', CONFIGMAPS, configMap('kept', 'three'))
  await hub.stop()
  hub = await startHubProcess({ dataDir, args: storeArgs, timeoutMs: 60_000 })
  const again = await apiRequest(api(), 'GET', `${CONFIGMAPS}/kept`)
  t.equal(again.status, 200, 'the restarted hub reads what was written before')
  const after = await apiRequest(api(), 'POST', CONFIGMAPS, configMap('after', 'four'))
  t.ok(Number(after.json.metadata.resourceVersion) > Number(again.json.metadata.resourceVersion), 'revisions go on rising')

  // Another store on the prefix (another hub) compacts; this hub hears of it and answers 410.
  await direct.compact(await direct.revision())
  let gone: { type: string; object: any }[] = []
  for (let i = 0; i < 50; i++) {
    gone = watchLines((await apiRequest(api(), 'GET', `${CONFIGMAPS}?watch=true&resourceVersion=${rv}&timeoutSeconds=1`)).text)
    if (gone[0]?.type === 'ERROR') break
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  t.equal(gone[0]?.type, 'ERROR')
  t.equal(gone[0]?.object.code, 410, 'a watch from a compacted revision is 410 Gone')

  // Compacted by etcd itself, which no store hears of: the watch etcd ends is 410 Gone too.
  const late = await apiRequest(api(), 'POST', CONFIGMAPS, configMap('late', 'five'))
  // Two more writes: etcd keeps the revision it compacts at, so the watch must start below it.
  await apiRequest(api(), 'POST', CONFIGMAPS, configMap('later', 'six'))
  await apiRequest(api(), 'POST', CONFIGMAPS, configMap('latest', 'seven'))
  const raw = new Etcd3({ hosts: etcd.endpoints })
  t.teardown(() => raw.close())
  await raw.kv.compact({ revision: await direct.revision() })
  const ended = watchLines((await apiRequest(api(), 'GET', `${CONFIGMAPS}?watch=true&resourceVersion=${late.json.metadata.resourceVersion}&timeoutSeconds=30`)).text)
  t.same(ended.map((e) => `${e.type} ${e.object.code}`), ['ERROR 410'], 'the watch ends at once with 410 Gone, not at its timeout')
})
