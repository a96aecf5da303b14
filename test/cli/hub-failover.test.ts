// Following a list of hubs, against a real hub: the CLI's kubeconfig server and the agent's --hub
// may name several hubs, comma-separated; one that cannot be reached passes the request (or the
// join) to the next, while a hub's refusal is final.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { loadOrJoin } from '../../src/agent/agent-identity.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { loadIdentity } from '../../src/agent/join-client.js'
import { ConnectionError, KubeconfigError } from '../../src/cli/errors.js'
import { HubClient } from '../../src/cli/http-client.js'
import { loadClientConfig } from '../../src/cli/kubeconfig.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveAgentFlags, resolveHubConfig } from '../../src/lib/config.js'
import { ConfigError } from '../../src/lib/config-errors.js'
import { silentLogger } from '../../src/lib/logger.js'
import { freePort } from '../helpers/e2e.js'

const root = mkdtempSync(join(tmpdir(), 'ha-failover-'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))
const hub = await startHub(resolveHubConfig({ dataDir: join(root, 'hub'), listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
t.teardown(() => hub.close())
// Nothing listens here: connecting is refused, as to a hub that was killed.
const deadPort = await freePort()
const dead = `https://127.0.0.1:${deadPort}`

/** The hub's kubeconfig with its server line replaced. */
function kubeconfigWithServer(name: string, server: string): string {
  const text = readFileSync(hub.kubeconfigPath, 'utf8').replace(/server: .*/, `server: ${server}`)
  const path = join(root, name)
  writeFileSync(path, text)
  return path
}

t.test('the CLI goes on to the next hub when one cannot be reached, and stays with it', async (t) => {
  const config = loadClientConfig(kubeconfigWithServer('two.yaml', `${dead},${hub.url}`))
  t.same(config.servers, [dead, hub.url], 'both hubs, in order')
  t.equal(config.server, dead, 'server is the first')
  const client = new HubClient(config, () => {})
  t.teardown(() => client.close())
  const answer = await client.request('GET', '/api/v1/namespaces/default')
  t.equal(answer.json.metadata.name, 'default', 'answered by the live hub')
  const created = await client.request('POST', '/api/v1/namespaces/default/configmaps', { body: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'through-failover' } } })
  t.equal(created.status, 201, 'a write goes through too')
})

t.test('with every hub unreachable the error names the last one tried', async (t) => {
  const otherDead = `https://127.0.0.1:${await freePort()}`
  const client = new HubClient(loadClientConfig(kubeconfigWithServer('dead.yaml', `${dead},${otherDead}`)), () => {})
  t.teardown(() => client.close())
  const err = await client.request('GET', '/version').then(
    () => undefined,
    (e: unknown) => e,
  )
  t.ok(err instanceof ConnectionError)
  t.match((err as Error).message, `cannot reach the hub at ${otherDead}: connection refused`)
})

t.test('a kubeconfig server list with a bad entry is refused naming it', async (t) => {
  t.throws(() => loadClientConfig(kubeconfigWithServer('bad.yaml', `${hub.url},not a url`)), KubeconfigError)
  t.throws(() => loadClientConfig(kubeconfigWithServer('bad.yaml', `${hub.url},not a url`)), /cluster server "not a url" that is not https:\/\/HOST\[:PORT\]/)
})

t.test('an agent joins through the first hub of its list that answers', async (t) => {
  const token = readFileSync(join(root, 'hub', 'join-token'), 'utf8').trim()
  const dataDir = join(root, 'agent')
  const flags = resolveAgentFlags({ dataDir, hub: `127.0.0.1:${deadPort}, 127.0.0.1:${hub.apiPort}`, token, nodeName: 'ha-pi-1' }, {})
  t.equal(flags.hub, `127.0.0.1:${deadPort},127.0.0.1:${hub.apiPort}`, 'the list is kept in order, trimmed')
  const identity = await loadOrJoin({ ...flags, reserve: { cpuMillis: 0, memoryBytes: 0 }, heartbeatIntervalMs: 5000 }, new SystemHostInfo(), silentLogger())
  t.equal(identity.nodeName, 'ha-pi-1')
  t.same(loadIdentity(dataDir), identity, 'the identity is saved')
})

t.test("a hub's refusal is final: the join does not go on to the next hub", async (t) => {
  const dataDir = join(root, 'agent-refused')
  const badToken = `K10${hub.caHash}::nosuch.0123456789abcdef`
  await t.rejects(
    loadOrJoin({ dataDir, hub: `127.0.0.1:${hub.apiPort},127.0.0.1:${deadPort}`, token: badToken, nodeName: 'ha-pi-2', reserve: { cpuMillis: 0, memoryBytes: 0 }, heartbeatIntervalMs: 5000 }, new SystemHostInfo(), silentLogger()),
    { code: 'BRAMBLE_AGENT_JOIN_UNKNOWN_TOKEN' },
  )
  t.equal(loadIdentity(dataDir), undefined)
})

t.test('--hub refuses a list with a bad address, naming it', async (t) => {
  t.throws(() => resolveAgentFlags({ dataDir: join(root, 'x'), hub: '10.0.0.1:6443,bad/host' }, {}), ConfigError)
  t.throws(() => resolveAgentFlags({ dataDir: join(root, 'x'), hub: '10.0.0.1:6443,bad/host' }, {}), /--hub.*"bad\/host"/)
})
