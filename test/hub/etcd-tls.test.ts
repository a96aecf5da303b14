// The etcd store over TLS (`--store etcds://...` with --store-ca/--store-cert/--store-key): against a
// real etcd that serves TLS and demands client certificates (--client-cert-auth), a store with the
// CA and a client certificate reads, writes and watches; one without a certificate, without the CA,
// or speaking plain http is refused with an error that names the store; and a hub process on it
// leads (its election speaks TLS too), serves the API and keeps its objects in etcd.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StoreUnavailableError } from '../../src/hub/errors.js'
import { Etcd3 } from 'etcd3'
import { etcdCredentials } from '../../src/hub/etcd-client.js'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import type { StoreEvent } from '../../src/hub/store.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { etcdMissing, startEtcd, type EtcdCluster } from '../helpers/etcd.js'
import { startHubProcess } from '../helpers/hub-process.js'
import { testTls } from '../helpers/tls.js'

const missing = etcdMissing()
const needsEtcd = { skip: missing ?? false }

const prefix = () => `/etc-tls-${randomBytes(3).toString('hex')}/`
const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { value: name } })

let etcd: EtcdCluster | undefined
const tlsEtcd = async (): Promise<EtcdCluster> => {
  etcd ??= await startEtcd(1, [], testTls())
  return etcd
}
t.teardown(async () => {
  closeApiAgents()
  await etcd?.stop()
})

t.test('a store with the CA and a client certificate reads, writes and watches over TLS', needsEtcd, async (t) => {
  const cluster = await tlsEtcd()
  t.match(cluster.endpoints[0], /^https:\/\//, 'the member listens for TLS')
  const store = await openEtcdStore({ endpoints: cluster.endpoints, prefix: prefix(), tls: cluster.clientTls, callTimeoutMs: 10_000 })
  t.teardown(() => store.close())
  const events: StoreEvent[] = []
  const watch = store.watch({ resource: 'configmaps' }, await store.revision(), (e) => events.push(e))
  t.teardown(() => watch.stop())
  const key = { resource: 'configmaps', namespace: 'default', name: 'over-tls' }
  const created = await store.create(key, configMap('over-tls'))
  t.same((await store.get(key))?.data, { value: 'over-tls' })
  const deadline = Date.now() + 30_000
  while (events.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  t.same(events.map((e) => `${e.type} ${e.key.name} ${e.revision}`), [`ADDED over-tls ${created.metadata.resourceVersion}`], 'the watch saw the create')
})

t.test('a store that cannot prove itself, or does not check etcd, is refused naming the store', needsEtcd, async (t) => {
  const cluster = await tlsEtcd()
  const refused = async (what: string, open: () => Promise<unknown>) => {
    const error = await open().then(
      () => undefined,
      (e: unknown) => e,
    )
    t.ok(error instanceof StoreUnavailableError, `${what}: refused as unavailable`)
    t.match(String((error as Error)?.message), /etcds:\/\/127\.0\.0\.1:\d+\/etc-tls-/, `${what}: the error names the store`)
    t.match(String((error as Error)?.message), /the TLS handshake failed: give --store-ca/, `${what}: and says which flags to look at`)
  }
  const tls = cluster.clientTls!
  await refused('no client certificate', () => openEtcdStore({ endpoints: cluster.endpoints, prefix: prefix(), tls: { ca: tls.ca }, callTimeoutMs: 3_000 }))
  await refused("no CA (the system's do not know etcd's)", () => openEtcdStore({ endpoints: cluster.endpoints, prefix: prefix(), tls: { cert: tls.cert, key: tls.key }, callTimeoutMs: 3_000 }))
  const plain = await openEtcdStore({ endpoints: cluster.endpoints.map((e) => e.replace('https:', 'http:')), prefix: prefix(), callTimeoutMs: 3_000 }).then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(plain instanceof StoreUnavailableError, 'plain http to a TLS member: refused as unavailable')
  await t.rejects(openEtcdStore({ endpoints: cluster.endpoints, prefix: prefix(), tls: { ca: '/nonexistent/ca.crt' } }), /cannot read etcd's CA certificate \/nonexistent\/ca\.crt/, 'an unreadable file is named')
})

t.test('a hub on an etcds:// store leads, serves the API and keeps its objects in etcd', needsEtcd, async (t) => {
  const cluster = await tlsEtcd()
  const tls = cluster.clientTls!
  const dataDir = mkdtempSync(join(tmpdir(), 'etc-tls-hub-'))
  t.teardown(() => rmSync(dataDir, { recursive: true, force: true }))
  const where = prefix()
  const hub = await startHubProcess({
    dataDir,
    args: ['--store', `${cluster.url}${where}`, '--store-ca', tls.ca, '--store-cert', tls.cert, '--store-key', tls.key],
    timeoutMs: 60_000,
  })
  t.teardown(() => hub.stop())
  const api = { server: hub.server, ca: hub.ca, token: hub.token }
  const created = await apiRequest(api, 'POST', '/api/v1/namespaces/default/configmaps', configMap('through-the-hub'))
  t.equal(created.status, 201, created.text)
  const direct = await openEtcdStore({ endpoints: cluster.endpoints, prefix: where, tls })
  t.teardown(() => direct.close())
  const stored = await direct.get({ resource: 'configmaps', namespace: 'default', name: 'through-the-hub' })
  t.equal(stored?.metadata.resourceVersion, created.json.metadata.resourceVersion, 'the object is in etcd at the revision the API answered')
  // The election runs on its own etcd client: the hub leads only if that one spoke TLS too.
  const raw = new Etcd3({ hosts: cluster.endpoints, credentials: etcdCredentials(tls) })
  t.teardown(() => raw.close())
  let leader: string | null = null
  for (const deadline = Date.now() + 30_000; leader === null && Date.now() < deadline; ) {
    leader = await raw.get(`${where}leader`).string()
    if (leader === null) await new Promise((r) => setTimeout(r, 100))
  }
  t.equal(leader, hub.server, 'the hub holds the election key, with its API address')
})
