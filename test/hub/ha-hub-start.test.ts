// Hubs on one etcd store, in process: the first leads and runs the controllers; a second hub with
// the embedded broker is refused (each hub's embedded broker would hold its own part of the fleet),
// naming the flags; a hub that stops hands the lead over at once.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
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

function readCa(kubeconfigPath: string): string {
  const text = readFileSync(kubeconfigPath, 'utf8')
  return Buffer.from(/certificate-authority-data: (\S+)/.exec(text)![1]!, 'base64').toString('utf8')
}

function readToken(kubeconfigPath: string): string {
  return /token: (\S+)/.exec(readFileSync(kubeconfigPath, 'utf8'))![1]!
}
