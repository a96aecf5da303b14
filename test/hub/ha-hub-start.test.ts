// Hubs on one etcd store, in process: the first leads and runs the controllers; a second hub with
// the embedded broker is refused (each hub's embedded broker would hold its own part of the fleet),
// naming the flags; a hub that stops hands the lead over at once.

import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { HubClient } from '../../src/cli/http-client.js'
import { openPodWebSocket } from '../../src/cli/pod-websocket.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { ConfigError } from '../../src/lib/config-errors.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { until } from '../helpers/e2e.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'

const missing = etcdMissing()
if (missing) t.plan(0, `HA hub start test skipped: ${missing}`)

t.test('a second hub with the embedded broker on a led etcd store is refused, naming the flags', async (t) => {
  const etcd = await startEtcd(1)
  t.teardown(() => etcd.stop())
  const root = mkdtempSync(join(tmpdir(), 'ha-start-'))
  t.teardown(() => {
    closeApiAgents()
    rmSync(root, { recursive: true, force: true })
  })
  const flags = (name: string) => resolveHubConfig({ dataDir: join(root, name), listen: '127.0.0.1', apiPort: '0', mqttPort: '0', store: `${etcd.url}/ha-start/`, leaderLease: '2s' }, {})
  const first = await startHub(flags('a'), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => first.close())
  t.ok(first.leading, 'the first hub leads')
  // Hubs sharing a store share the first hub's identity (CA, secrets key): the setup step of HA hubs.
  for (const name of ['b', 'c']) cpSync(join(root, 'a'), join(root, name), { recursive: true })

  const refused = await startHub(flags('b'), { logger: silentLogger(), clock: systemClock }).then(
    async (hub) => (await hub.close(), undefined),
    (err: unknown) => err,
  )
  t.ok(refused instanceof ConfigError, 'the second hub does not start')
  t.match((refused as Error).message, /--store.*another hub leads.*--mqtt-url/)

  // The leader's controllers act: a Deployment gets its ReplicaSet.
  const target = { server: first.url, ca: readCa(first.kubeconfigPath), token: readToken(first.kubeconfigPath) }
  const created = await apiRequest(target, 'POST', '/apis/apps/v1/namespaces/default/deployments', {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'ha-start' },
    spec: { replicas: 1, selector: { matchLabels: { app: 'ha-start' } }, template: { metadata: { labels: { app: 'ha-start' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  })
  t.equal(created.status, 201)
  await until('the leader made the ReplicaSet', async () => (await apiRequest(target, 'GET', '/apis/apps/v1/namespaces/default/replicasets')).json.items.length === 1, 30_000)

  // Stopped, the first hub resigns: a new hub with the embedded broker may lead the store now.
  await first.close()
  const next = await startHub(flags('c'), { logger: silentLogger(), clock: systemClock })
  t.ok(next.leading, 'a hub started after the leader stopped leads')
  await next.close()
})

t.test('a follower serves the API; what only the leader serves is a 503, and a client given both hubs goes on to the leader', async (t) => {
  const etcd = await startEtcd(1)
  t.teardown(() => etcd.stop())
  const root = mkdtempSync(join(tmpdir(), 'ha-follower-'))
  t.teardown(() => {
    closeApiAgents()
    rmSync(root, { recursive: true, force: true })
  })
  const raw = { listen: '127.0.0.1', apiPort: '0', mqttPort: '0', store: `${etcd.url}/ha-follower/`, leaderLease: '2s' }
  const leader = await startHub(resolveHubConfig({ ...raw, dataDir: join(root, 'a') }, {}), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => leader.close())
  // The follower shares the leader's identity (CA, tokens) and names a broker: it never connects to it while it follows.
  cpSync(join(root, 'a'), join(root, 'b'), { recursive: true })
  const follower = await startHub(resolveHubConfig({ ...raw, dataDir: join(root, 'b'), mqttUrl: leader.brokerUrl }, {}), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => follower.close())
  t.ok(leader.leading, 'the first hub leads')
  t.notOk(follower.leading, 'the second follows')

  const ca = readCa(leader.kubeconfigPath)
  const token = readToken(leader.kubeconfigPath)
  const viaFollower = { server: follower.url, ca, token }
  const created = await apiRequest(viaFollower, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'ha-p' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } })
  t.equal(created.status, 201, 'the follower takes writes')
  t.equal((await apiRequest({ server: leader.url, ca, token }, 'GET', '/api/v1/namespaces/default/pods/ha-p')).status, 200, 'the leader reads them')
  const logs = await apiRequest(viaFollower, 'GET', '/api/v1/namespaces/default/pods/ha-p/log')
  t.equal(logs.status, 503, 'pod logs on the follower: 503')
  t.match(logs.json?.message, /this hub does not lead now/)

  const client = new HubClient({ path: 'test', server: follower.url, servers: [follower.url, leader.url], ca, token, namespace: 'default', insecureSkipTlsVerify: false }, () => {})
  t.teardown(() => client.close())
  const err = await client.request('GET', '/api/v1/namespaces/default/pods/ha-p/log').then(
    () => undefined,
    (e: unknown) => e as { status?: number; message: string },
  )
  t.not(err?.status, 503, `the leader answered the logs request (${err?.message ?? 'ok'})`)
  const upgrade = await openPodWebSocket({ path: 'test', server: follower.url, ca, token, namespace: 'default', insecureSkipTlsVerify: false }, '/api/v1/namespaces/default/pods/ha-p/exec', new URLSearchParams({ command: 'true', stdout: '1' }), ['v4.channel.k8s.io']).then(
    (ws) => (ws.close(), undefined),
    (e: unknown) => e as { status?: number },
  )
  t.equal(upgrade?.status, 503, 'exec on the follower alone: 503')
})

function readCa(kubeconfigPath: string): string {
  const text = readFileSync(kubeconfigPath, 'utf8')
  return Buffer.from(/certificate-authority-data: (\S+)/.exec(text)![1]!, 'base64').toString('utf8')
}

function readToken(kubeconfigPath: string): string {
  return /token: (\S+)/.exec(readFileSync(kubeconfigPath, 'utf8'))![1]!
}
