// A hub on a three-member etcd cluster: SIGKILL the member that leads, and nothing a client sees
// changes. Every API call answers as before, an open watch delivers every change once, in order,
// and the hub's own controllers (watching through the store) go on acting. And an informer cut off
// from etcd while another store writes and compacts lists again when it is back, missing nothing.

import t from 'tap'
import { request } from 'node:https'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import { Informer } from '../../src/hub/informer.js'
import { Registry } from '../../src/hub/registry.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { until } from '../helpers/e2e.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'
import { startHubProcess } from '../helpers/hub-process.js'

const missing = etcdMissing()
/** Skips each test, saying why, where no etcd binary is installed. */
const needsEtcd = { skip: missing ?? false }

const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'

/** An API watch whose events are collected as they arrive. */
function openWatch(api: ApiTarget, path: string): { events: Array<{ type: string; object: any }>; close(): void } {
  const events: Array<{ type: string; object: any }> = []
  let buffered = ''
  const req = request(new URL(path, api.server), { ca: api.ca, headers: { Authorization: `Bearer ${api.token}` } }, (res) => {
    res.setEncoding('utf8')
    res.on('data', (chunk: string) => {
      buffered += chunk
      const lines = buffered.split('\n')
      buffered = lines.pop()!
      for (const line of lines) if (line) events.push(JSON.parse(line))
    })
    res.on('error', () => {})
  })
  req.on('error', () => {})
  req.end()
  return { events, close: () => req.destroy() }
}

t.test('killing the leading etcd member of three changes nothing a client of the hub sees', needsEtcd, async (t) => {
  const etcd = await startEtcd(3)
  t.teardown(() => etcd.stop())
  const dataDir = mkdtempSync(join(tmpdir(), 'etc-cluster-hub-'))
  t.teardown(() => {
    closeApiAgents()
    rmSync(dataDir, { recursive: true, force: true })
  })
  const hub = await startHubProcess({ dataDir, args: ['--store', `${etcd.url}/etc-cluster/`], timeoutMs: 60_000 })
  t.teardown(() => hub.stop())
  const api: ApiTarget = { server: hub.server, ca: hub.ca, token: hub.token }

  const first = await apiRequest(api, 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'before' } })
  t.equal(first.status, 201)
  const watch = openWatch(api, `${CONFIGMAPS}?watch=true&resourceVersion=${first.json.metadata.resourceVersion}&timeoutSeconds=120`)
  t.teardown(() => watch.close())

  const leader = await etcd.leader()
  await leader.kill()
  t.comment(`killed ${leader.name}, the leader`)

  const statuses: number[] = []
  for (let i = 0; i < 10; i++) {
    const res = await apiRequest(api, 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `after-${i}` } })
    statuses.push(res.status)
    if (res.status !== 201) t.comment(res.text)
  }
  t.same(statuses, Array(10).fill(201), 'every create after the kill succeeded at the first try')
  const list = await apiRequest(api, 'GET', CONFIGMAPS)
  t.equal(list.status, 200)
  t.same(list.json.items.map((o: any) => o.metadata.name), ['after-0', 'after-1', 'after-2', 'after-3', 'after-4', 'after-5', 'after-6', 'after-7', 'after-8', 'after-9', 'before'])

  await until('the open watch delivers the ten creates', () => watch.events.length >= 10, 60_000)
  await new Promise((resolve) => setTimeout(resolve, 500))
  t.same(watch.events.map((e) => `${e.type} ${e.object.metadata.name}`), Array.from({ length: 10 }, (_, i) => `ADDED after-${i}`), 'once each, in order')

  // The hub's controllers watch through the store too: a Deployment still gets its ReplicaSet.
  const deployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'main', image: 'busybox' }] } } },
  }
  t.equal((await apiRequest(api, 'POST', '/apis/apps/v1/namespaces/default/deployments', deployment)).status, 201)
  const replicaSets = await until('the Deployment controller makes a ReplicaSet', async () => {
    const res = await apiRequest(api, 'GET', '/apis/apps/v1/namespaces/default/replicasets')
    return res.json?.items?.length > 0 ? res.json.items : undefined
  }, 60_000)
  t.equal(replicaSets[0].metadata.ownerReferences?.[0]?.name, 'web')
})

t.test('an informer whose member was down while history was compacted lists again and misses nothing', needsEtcd, async (t) => {
  const etcd = await startEtcd(3)
  t.teardown(() => etcd.stop())
  const [cutOff, ...others] = etcd.members as [typeof etcd.members[0], ...typeof etcd.members]
  const prefix = '/etc-relist/'
  // The informer's store talks to one member only, the writer's to the two others.
  const mine = await openEtcdStore({ endpoints: [cutOff.clientUrl], prefix })
  const writer = await openEtcdStore({ endpoints: others.map((m) => m.clientUrl), prefix })
  t.teardown(async () => {
    await mine.close()
    await writer.close()
  })
  const info = KINDS.find((k) => k.kind === 'ConfigMap')!
  const informer = new Informer(new Registry(mine, systemClock, silentLogger()), info)
  const seen: string[] = []
  informer.onChange((type, object) => seen.push(`${type} ${object.metadata.name}`))
  await informer.start()
  t.teardown(() => informer.stop())
  const key = (name: string) => ({ resource: 'configmaps', namespace: 'default', name })
  const cm = (name: string, value: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { value } })
  const a = await writer.create(key('a'), cm('a', '1'))
  await writer.create(key('d'), cm('d', '1'))
  await until('the informer sees a and d', () => seen.length === 2, 60_000)

  await cutOff.kill()
  await writer.update(key('a'), cm('a', '2'), { expectedResourceVersion: a.metadata.resourceVersion })
  await writer.create(key('b'), cm('b', '1'))
  await writer.create(key('c'), cm('c', '1'))
  await writer.delete(key('b'))
  await writer.delete(key('d'))
  await writer.compact(await writer.revision())
  await cutOff.restart()

  await until('the informer lists again', () => seen.length >= 5, 120_000)
  t.same(seen.slice(2).sort(), ['ADDED c', 'DELETED d', 'MODIFIED a'], 'what changed while it was cut off, as events (b came and went unseen)')
  t.same(informer.list().map((o) => `${o.metadata.name}=${(o.data as Record<string, string>).value}`).sort(), ['a=2', 'c=1'])
  await writer.create(key('e'), cm('e', '1'))
  await until('a write after the new list reaches the informer', () => informer.get('default/e') !== undefined, 60_000)
})
