// The mesh topic as the hub serves it, against a real LMDB store, the real embedded broker over
// TLS, the real join endpoint and node gateway: agents' WireGuard reports become Node annotations,
// and every node reads the whole mesh (keys, endpoints, pod subnets) retained on
// bramble/v1/cluster/mesh, updated when a node changes or goes; a node cannot write it.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import t from 'tap'
import { JOIN_PATH } from '../../src/api/join.js'
import { KINDS } from '../../src/api/kinds.js'
import { clusterTopic, encodeMessage, upTopic } from '../../src/api/protocol.js'
import { startApiServer, type RunningApiServer } from '../../src/hub/api-server.js'
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/hub/broker.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { recordWireGuardReport } from '../../src/hub/mesh-publisher.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { startNodeGateway, type NodeGateway } from '../../src/hub/node-gateway.js'
import { caHash } from '../../src/hub/pki.js'
import { Registry } from '../../src/hub/registry.js'
import type { Store } from '../../src/hub/store.js'
import { TokenStore } from '../../src/hub/tokens.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { generateWireGuardKeyPair } from '../../src/mesh/wireguard-keys.js'
import { ANNOTATION_WIREGUARD_ENDPOINT, ANNOTATION_WIREGUARD_PUBLIC_KEY } from '../../src/mesh/wireguard-nodes.js'
import type { MeshMessage } from '../../src/mesh/wireguard-peers.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { testTls } from '../helpers/tls.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const tls = testTls()
let dir: string
let store: Store
let registry: Registry
let tokens: TokenStore
let credentials: NodeCredentials
let broker: EmbeddedBroker
let gateway: NodeGateway
let server: RunningApiServer

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bramble-mesh-'))
  store = await openLmdbStore({ path: join(dir, 'store') })
  registry = new Registry(store, systemClock, silentLogger())
  tokens = TokenStore.open(dir, systemClock)
  credentials = await NodeCredentials.open(dir)
  broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
  gateway = await startNodeGateway({
    registry,
    tokens,
    credentials,
    ca: tls.ca,
    clusterId: 'c-mesh',
    apiServer: () => `https://127.0.0.1:${server.port}`,
    brokerUrl: broker.url,
    busOptions: { url: broker.url, ca: tls.ca, reconnect: { minMs: 50, maxMs: 500 } },
    clock: systemClock,
    logger: silentLogger(),
    nodeGracePeriodMs: 600_000,
  })
  server = await startApiServer({ store, logger: silentLogger(), clock: systemClock, tls, authenticate: tokens.authenticate, host: '127.0.0.1', port: 0, extraRoutes: gateway.extraRoutes, podLogs: gateway.podLogs })
})

t.teardown(async () => {
  for (const c of clients) c.end(true)
  closeApiAgents()
  await server.close()
  await gateway.close()
  await broker.close()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const clients: MqttClient[] = []
const passwords = new Map<string, string>()

async function joinNode(name: string): Promise<void> {
  const token = tokens.createJoinToken({ caHash: caHash(tls.ca) }).token
  const res = await apiRequest({ server: `https://127.0.0.1:${server.port}`, ca: tls.ca }, 'POST', JOIN_PATH, { token, nodeName: name, arch: 'arm64', os: 'linux' })
  if (res.status !== 200) throw new Error(`join of ${name} failed: ${res.text}`)
  passwords.set(name, res.json.mqtt.password)
}

/** A node's MQTT session that records every mesh message it reads. */
async function meshReader(name: string): Promise<{ client: MqttClient; meshes: MeshMessage[] }> {
  const client = await mqtt.connectAsync(broker.url, { username: name, password: passwords.get(name), clientId: name, ca: [tls.ca], protocolVersion: 4, clean: true, reconnectPeriod: 0 })
  client.on('error', () => {})
  clients.push(client)
  const meshes: MeshMessage[] = []
  client.on('message', (topic, payload) => topic === clusterTopic('mesh') && meshes.push(JSON.parse(payload.toString())))
  await client.subscribeAsync(clusterTopic('mesh'), { qos: 1 })
  return { client, meshes }
}

const status = { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' }] }
const keyA = generateWireGuardKeyPair().publicKey
const keyB = generateWireGuardKeyPair().publicKey

t.test("an agent's WireGuard report becomes Node annotations; a bad one is refused, naming the field", async (t) => {
  await joinNode('node-a')
  await joinNode('node-b')
  const a = await meshReader('node-a')
  await a.client.publishAsync(upTopic('node-a', 'node-status'), encodeMessage({ status, wireguard: { publicKey: keyA, endpoint: '10.0.0.1:51820' } }), { qos: 1 })
  const node = await eventually('annotations on node-a', async () => {
    const n = await registry.get(NODE, '', 'node-a')
    return n.metadata.annotations?.[ANNOTATION_WIREGUARD_PUBLIC_KEY] === keyA && n
  })
  t.equal(node.metadata.annotations?.[ANNOTATION_WIREGUARD_ENDPOINT], '10.0.0.1:51820')
  t.same(await recordWireGuardReport(registry, 'node-b', { publicKey: 'short', endpoint: 'x' }), {
    written: false,
    problems: ['wireguard.publicKey: expected a WireGuard public key (32 bytes, base64)', 'wireguard.endpoint: expected host:port with an IP address and a port 1-65535'],
  })
  t.same((await recordWireGuardReport(registry, 'node-a', { publicKey: keyA, endpoint: '10.0.0.1:51820' })).written, false, 'an unchanged report writes nothing')
  const nodes = (await registry.list(NODE, undefined)).items
  t.same(await recordWireGuardReport(registry, 'node-b', { publicKey: keyA }, nodes), { written: false, problems: ['wireguard.publicKey: already used by node node-a'] }, "another node's key is refused")
  t.notOk((await registry.get(NODE, '', 'node-b')).metadata.annotations?.[ANNOTATION_WIREGUARD_PUBLIC_KEY], 'nothing written')
})

t.test('every node reads the whole mesh: keys, endpoints and pod subnets, nothing else', async (t) => {
  const b = await meshReader('node-b')
  await b.client.publishAsync(upTopic('node-b', 'node-status'), encodeMessage({ status, wireguard: { publicKey: keyB } }), { qos: 1 })
  // The hub leases pod subnets into spec.podCIDRs; here they are set as a hand-made lease.
  for (const [name, cidr] of [['node-a', '10.42.1.0/24'], ['node-b', '10.42.2.0/24']] as const) {
    const n = await registry.get(NODE, '', name)
    await registry.update(NODE, '', name, { ...n, spec: { ...n.spec, podCIDR: cidr, podCIDRs: [cidr] } }, { dryRun: false, fieldValidation: 'Ignore' })
  }
  const full = await eventually('a mesh with both subnets', () => b.meshes.find((m) => m.nodes.length === 2 && m.nodes.every((n) => n.podCIDRs.length === 1)))
  t.same(full, {
    nodes: [
      { node: 'node-a', publicKey: keyA, endpoint: '10.0.0.1:51820', podCIDRs: ['10.42.1.0/24'] },
      { node: 'node-b', publicKey: keyB, podCIDRs: ['10.42.2.0/24'] },
    ],
  })
})

t.test('a node connecting later gets the mesh at once (retained)', async (t) => {
  await joinNode('node-c')
  const c = await meshReader('node-c')
  const first = await eventually('the retained mesh', () => c.meshes[0])
  t.same(first.nodes.map((n) => n.node), ['node-a', 'node-b'], 'node-c has reported no key yet, so it is not in the mesh')
})

t.test('an endpoint change goes out to every node', async (t) => {
  const reader = await meshReader('node-c')
  const a = clients[0]!
  await a.publishAsync(upTopic('node-a', 'node-status'), encodeMessage({ status, wireguard: { publicKey: keyA, endpoint: '10.0.0.9:51820' } }), { qos: 1 })
  const moved = await eventually('the new endpoint', () => reader.meshes.find((m) => m.nodes[0]?.endpoint === '10.0.0.9:51820'))
  t.equal(moved.nodes[0]!.publicKey, keyA)
})

t.test("a deleted node leaves the mesh", async (t) => {
  const reader = await meshReader('node-c')
  await registry.delete(NODE, '', 'node-b', { dryRun: false })
  const after = await eventually('a mesh without node-b', () => reader.meshes.find((m) => !m.nodes.some((n) => n.node === 'node-b')))
  t.same(after.nodes.map((n) => n.node), ['node-a'])
})

t.test('a node cannot write the mesh topic', async (t) => {
  const reader = await meshReader('node-c')
  const before = reader.meshes.length
  const forger = clients[0]!
  const forged = { nodes: [{ node: 'evil', publicKey: generateWireGuardKeyPair().publicKey, endpoint: '10.6.6.6:51820', podCIDRs: ['10.42.0.0/16'] }] }
  // The broker refuses it: no PUBACK may come (or the session is dropped), so the wait is bounded.
  await Promise.race([forger.publishAsync(clusterTopic('mesh'), JSON.stringify(forged), { qos: 1, retain: true }).catch(() => {}), new Promise((r) => setTimeout(r, 1_000))])
  t.notOk(reader.meshes.slice(before).some((m) => m.nodes.some((n) => n.node === 'evil')), 'no subscriber saw the forged mesh')
  const late = await meshReader('node-c')
  const retained = await eventually('the retained mesh', () => late.meshes[0])
  t.same(retained.nodes.map((n) => n.node), ['node-a'], "the retained mesh is still the hub's")
})
