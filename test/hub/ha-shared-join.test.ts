// Two hubs on one etcd store, in process, the second set up the documented way (the first hub's
// ca.crt, ca.key and secrets.key copied into an empty data dir): a join token made
// with `bramble token create` on the second hub's data dir admits a node through it, the leading
// hub's broker then lets the node in, a token revoked through the first hub is refused by the
// second, and deleting the Node through the follower locks the node out of the leader's broker.
// No API path serves the records. And a single hub restarted on etcd keeps its tokens and nodes.

import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import t from 'tap'
import { JOIN_PATH } from '../../src/api/join.js'
import { startHub } from '../../src/hub/hub.js'
import { migrateLmdbToEtcd } from '../../src/hub/store-migration.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { parseStoreUrl, type EtcdLocation } from '../../src/lib/store-url.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { runCli, until } from '../helpers/e2e.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'

const IDENTITY_FILES = ['ca.crt', 'ca.key', 'secrets.key']

const missing = etcdMissing()
if (missing) t.plan(0, `shared join test skipped: ${missing}`)
else {
  t.test('a node joins through the follower with a token made on its data dir; revoked or deleted through one hub, refused by the other', async (t) => {
    const etcd = await startEtcd(1)
    t.teardown(() => etcd.stop())
    const root = mkdtempSync(join(tmpdir(), 'hid-join-'))
    t.teardown(() => {
      closeApiAgents()
      rmSync(root, { recursive: true, force: true })
    })
    const raw = { listen: '127.0.0.1', apiPort: '0', mqttPort: '0', store: `${etcd.url}/hid-join/`, leaderLease: '2s' }
    const dirA = join(root, 'a')
    const dirB = join(root, 'b')
    const leader = await startHub(resolveHubConfig({ ...raw, dataDir: dirA }, {}), { logger: silentLogger(), clock: systemClock })
    t.teardown(() => leader.close())
    mkdirSync(dirB, { mode: 0o700 })
    for (const file of IDENTITY_FILES) copyFileSync(join(dirA, file), join(dirB, file))
    // The follower names the leader's broker: it never connects to it while it follows.
    const follower = await startHub(resolveHubConfig({ ...raw, dataDir: dirB, mqttUrl: leader.brokerUrl }, {}), { logger: silentLogger(), clock: systemClock })
    t.teardown(() => follower.close())
    t.ok(leader.leading && !follower.leading, 'the first hub leads, the second follows')
    t.equal(follower.clusterId, leader.clusterId, "the follower took the store's cluster id")
    t.equal(readFileSync(join(dirB, 'cluster-id'), 'utf8').trim(), leader.clusterId, 'and keeps it in its data dir')

    const ca = readFileSync(join(dirA, 'ca.crt'), 'utf8')
    const viaA: ApiTarget = { server: leader.url, ca, token: kubeconfigToken(leader.kubeconfigPath) }
    const viaB: ApiTarget = { server: follower.url, ca, token: kubeconfigToken(follower.kubeconfigPath) }
    t.not(viaB.token, viaA.token, 'the follower made its own admin token for its kubeconfig')
    t.equal((await apiRequest({ ...viaA, token: viaB.token }, 'GET', '/api/v1/nodes')).status, 200, "the follower's admin token works at the leader")

    const made = await runCli(['token', 'create', '--data-dir', dirB, '--description', 'through b'])
    t.equal(made.code, 0, `token create on the follower's data dir: ${made.stderr}`)
    const token = made.stdout.trim()
    const id = /::([a-z0-9]{6})\./.exec(token)?.[1]
    const joined = await apiRequest({ ...viaB, token: '' }, 'POST', JOIN_PATH, { token, nodeName: 'hid-j1', hostname: 'hid-j1' })
    t.equal(joined.status, 200, `joined through the follower${joined.status === 200 ? '' : `: ${joined.text}`}`)
    const creds = joined.json.mqtt as { url: string; username: string; password: string }
    t.equal(creds.url, leader.brokerUrl, "the answer names the hubs' broker")
    t.equal((await apiRequest(viaA, 'GET', '/api/v1/nodes/hid-j1')).status, 200, 'the leader sees the Node')

    const connect = () => mqtt.connectAsync(creds.url, { username: creds.username, password: creds.password, clientId: 'hid-j1', ca: [ca], reconnectPeriod: 0, protocolVersion: 4, connectTimeout: 5_000 })
    const client = await until('the leading hub\'s broker admits the node that joined through the follower', () => connect().catch(() => undefined), 20_000)
    t.pass('connected to the leader\'s broker with credentials the follower issued')

    const listed = await runCli(['token', 'list', '--data-dir', dirA])
    t.match(listed.stdout, new RegExp(`${id}\\s+valid.*through b`), 'the leader\'s data dir lists the token made on the follower\'s')
    // A data dir with the CA alone (no hub ran there) works on the store --store names.
    const dirCli = join(root, 'cli')
    mkdirSync(dirCli, { mode: 0o700 })
    copyFileSync(join(dirA, 'ca.crt'), join(dirCli, 'ca.crt'))
    const named = await runCli(['token', 'list', '--data-dir', dirCli, '--store', `${etcd.url}/hid-join/`])
    t.match(named.stdout, new RegExp(`${id}\\s+valid`), 'the store named with --store lists it too')
    const misused = await runCli(['token', 'list', '--data-dir', dirA, '--store', `${etcd.url}/hid-join/`, '--store-ca', join(dirA, 'ca.crt')])
    t.equal(misused.code, 2, 'TLS files for a plain etcd store are a usage error')
    t.match(misused.stderr, /--store-ca .*etcds:\/\//)
    const revoked = await runCli(['token', 'revoke', id!, '--data-dir', dirA])
    t.equal(revoked.code, 0, `revoked on the leader's data dir: ${revoked.stderr}`)
    const again = await until('the follower refuses the revoked token', async () => {
      const res = await apiRequest({ ...viaB, token: '' }, 'POST', JOIN_PATH, { token, nodeName: 'hid-j2' })
      return res.status === 401 && res
    }, 20_000)
    t.match(again.json.message, /revoked/)

    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    t.equal((await apiRequest(viaB, 'DELETE', '/api/v1/nodes/hid-j1')).status, 200, 'the Node deleted through the follower')
    await closed
    t.pass('the leader\'s broker disconnected the deleted node')
    const refused = await connect().then(
      (c) => (c.end(true), undefined),
      (err: Error) => err,
    )
    t.match(refused?.message ?? 'connected', /Bad username or password|Not authorized/i, 'and refuses its credentials')

    // The records are no API resource, for any user.
    const readOnly = { ...viaA, token: readFileSync(join(dirA, 'read-only-token'), 'utf8').trim() }
    for (const path of ['/apis/bramble.io/v1/jointokens', '/apis/bramble.io/v1/nodecredentials', '/apis/bramble.io/v1/usertokens', '/apis/bramble.io/v1/hubcredentials']) {
      for (const [who, target] of [['admin', viaA], ['read-only', readOnly]] as const) {
        const res = await apiRequest(target, 'GET', path)
        t.not(res.status, 200, `GET ${path} as ${who}: ${res.status}`)
      }
    }
    const secrets = await apiRequest(readOnly, 'GET', '/api/v1/secrets')
    t.equal(secrets.status, 200)
    t.same(secrets.json.items, [], 'no Secret holds them')
  })


  t.test('a hub moved from LMDB onto etcd (migrate-store) keeps its tokens and its joined nodes', async (t) => {
    const etcd = await startEtcd(1)
    t.teardown(() => etcd.stop())
    const dir = mkdtempSync(join(tmpdir(), 'hid-move-'))
    t.teardown(() => {
      closeApiAgents()
      rmSync(dir, { recursive: true, force: true })
    })
    const raw = { dataDir: dir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0' }
    const single = await startHub(resolveHubConfig(raw, {}), { logger: silentLogger(), clock: systemClock })
    const token = single.tokens.createJoinToken({ caHash: single.caHash, ttlMs: 600_000 }).token
    const ca = readFileSync(join(dir, 'ca.crt'), 'utf8')
    const joined = await apiRequest({ server: single.url, ca, token: '' }, 'POST', JOIN_PATH, { token, nodeName: 'hid-m1' })
    t.equal(joined.status, 200, 'a node joined the single hub')
    await single.close()
    // As the README says: `bramble migrate-store`, then the hub on etcd with the same data dir. The
    // Nodes come along; a node's credentials without its Node would be revoked by the new leader.
    const to = parseStoreUrl(`${etcd.url}/hid-move/`) as EtcdLocation
    await migrateLmdbToEtcd(dir, to)

    const moved = await startHub(resolveHubConfig({ ...raw, store: `${etcd.url}/hid-move/`, leaderLease: '2s' }, {}), { logger: silentLogger(), clock: systemClock })
    t.teardown(() => moved.close())
    const target: ApiTarget = { server: moved.url, ca, token: kubeconfigToken(moved.kubeconfigPath) }
    t.equal((await apiRequest(target, 'GET', '/api/v1/nodes')).status, 200, 'the kubeconfig made on LMDB still works')
    const creds = joined.json.mqtt as { username: string; password: string }
    const client = await mqtt.connectAsync(moved.brokerUrl, { username: creds.username, password: creds.password, clientId: 'hid-m1', ca: [ca], reconnectPeriod: 0, protocolVersion: 4, connectTimeout: 5_000 })
    t.pass("the node's credentials from before the move admit it")
    await client.endAsync()
    const again = await apiRequest({ ...target, token: '' }, 'POST', JOIN_PATH, { token, nodeName: 'hid-m2' })
    t.equal(again.status, 200, 'a join token made before the move still joins')
  })
}

function kubeconfigToken(path: string): string {
  return /token: (\S+)/.exec(readFileSync(path, 'utf8'))![1]!
}
