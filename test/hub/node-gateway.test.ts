// The hub's node gateway against a real LMDB store, the real embedded broker over TLS and the real
// API server. Each node is played by a plain MQTT client speaking the protocol in src/api: a test
// of the protocol as the hub serves it.

import { mkdtempSync, rmSync } from 'node:fs'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import t from 'tap'
import { JOIN_PATH } from '../../src/api/join.js'
import { KINDS } from '../../src/api/kinds.js'
import { generateSealingKeyPair, openSecret, type SealingKeyPair } from '../../src/api/sealed-secret.js'
import { encodeMessage, nodeDownFilter, upTopic, type DesiredMessage, type RpcRequest, type UpName } from '../../src/api/protocol.js'
import type { KubeObject } from '../../src/api/types.js'
import { startApiServer, type RunningApiServer } from '../../src/hub/api-server.js'
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/hub/broker.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { startNodeGateway, type NodeGateway } from '../../src/hub/node-gateway.js'
import { caHash } from '../../src/hub/pki.js'
import { Registry } from '../../src/hub/registry.js'
import type { Store } from '../../src/hub/store.js'
import { TokenStore } from '../../src/hub/tokens.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { testTls } from '../helpers/tls.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
const tls = testTls()

let dir: string
let store: Store
let registry: Registry
let tokens: TokenStore
let credentials: NodeCredentials
let broker: EmbeddedBroker
let gateway: NodeGateway
let gatewayOptions: Parameters<typeof startNodeGateway>[0]
let server: RunningApiServer
let admin: ApiTarget

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bramble-gateway-'))
  store = await openLmdbStore({ path: join(dir, 'store') })
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' }, status: { phase: 'Active' } })
  registry = new Registry(store, systemClock, silentLogger())
  tokens = TokenStore.open(dir, systemClock)
  credentials = await NodeCredentials.open(dir)
  broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
  gatewayOptions = {
    registry,
    tokens,
    credentials,
    ca: tls.ca,
    clusterId: 'c-gw',
    apiServer: () => `https://127.0.0.1:${server.port}`,
    brokerUrl: broker.url,
    busOptions: { url: broker.url, ca: tls.ca, reconnect: { minMs: 50, maxMs: 500 } },
    clock: systemClock,
    logger: silentLogger(),
    nodeGracePeriodMs: 600_000, // lifecycle has its own test; here no node may turn NotReady
    coalesceMs: 100,
    rpcTimeoutMs: 1_500,
  }
  gateway = await startNodeGateway(gatewayOptions)
  server = await startApiServer({ store, logger: silentLogger(), clock: systemClock, tls, authenticate: tokens.authenticate, host: '127.0.0.1', port: 0, extraRoutes: gateway.extraRoutes, podLogs: gateway.podLogs })
  admin = { server: `https://127.0.0.1:${server.port}`, ca: tls.ca, token: tokens.issueUserToken('admin', 'admin') }
})

t.teardown(async () => {
  closeApiAgents()
  await server.close()
  await gateway.close()
  await broker.close()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

/** Polls until `check` returns a value (not undefined/false); a generous deadline, not a measurement. */
async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const settle = async () => {
  await new Promise((r) => setTimeout(r, 400))
  await gateway.idle()
}

interface FakeNode {
  name: string
  client: MqttClient
  desired: DesiredMessage[]
  rpcs: RpcRequest[]
  send(kind: UpName, message: unknown): Promise<void>
  sendRaw(kind: string, payload: Buffer | string): Promise<void>
  /** Sends sync and waits for the answer to it. */
  sync(revision: number): Promise<DesiredMessage>
  end(): Promise<void>
}

const passwords = new Map<string, string>()
/** Each node's key pair for Secrets in transit, as its agent would make it. */
const sealingKeys = new Map<string, SealingKeyPair>()

/** Joins as an agent does, with its public key for Secrets; `withKey: false` plays an agent from before keys. */
async function joinNode(name: string, { withKey = true } = {}): Promise<void> {
  const token = tokens.createJoinToken({ caHash: caHash(tls.ca) }).token
  const keys = generateSealingKeyPair()
  sealingKeys.set(name, keys)
  const res = await apiRequest({ server: admin.server, ca: tls.ca }, 'POST', JOIN_PATH, { token, nodeName: name, arch: 'arm64', os: 'linux', ...(withKey ? { secretsPublicKey: keys.publicKey } : {}) })
  if (res.status !== 200) throw new Error(`join of ${name} failed: ${res.text}`)
  passwords.set(name, res.json.mqtt.password)
  await eventually(`${name} in the gateway's cache`, () => gateway.lifecycle.verdict(name) !== undefined)
}

async function connectNode(name: string): Promise<FakeNode> {
  const client = await mqtt.connectAsync(broker.url, { username: name, password: passwords.get(name), clientId: name, ca: [tls.ca], protocolVersion: 4, clean: true, reconnectPeriod: 0 })
  client.on('error', () => {})
  const node: FakeNode = {
    name,
    client,
    desired: [],
    rpcs: [],
    send: (k, message) => client.publishAsync(upTopic(name, k), encodeMessage(message), { qos: 1 }).then(() => {}),
    sendRaw: (k, payload) => client.publishAsync(`bramble/v1/nodes/${name}/up/${k}`, payload, { qos: 1 }).then(() => {}),
    async sync(revision) {
      const before = node.desired.length
      await node.send('sync', { revision })
      return eventually(`${name}'s answer to sync ${revision}`, () => node.desired.length > before && node.desired[node.desired.length - 1])
    },
    end: () => client.endAsync().catch(() => {}),
  }
  client.on('message', (topic, payload) => {
    const body = JSON.parse(payload.toString())
    if (topic.endsWith('/down/desired')) node.desired.push(body)
    else if (topic.endsWith('/down/rpc')) node.rpcs.push(body)
  })
  await client.subscribeAsync(nodeDownFilter(name), { qos: 1 })
  return node
}

function pod(name: string, node: string | undefined, extra: Record<string, any> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { ...(node ? { nodeName: node } : {}), containers: [{ name: 'main', image: 'busybox', ...(extra.container ?? {}) }], ...(extra.spec ?? {}) },
  } as KubeObject
}

const createPod = async (p: KubeObject) => (await registry.create(kind('Pod'), 'default', p, WRITE)).object
/** What a message upserts besides the node's own Node (which a full set always carries). */
const keysOf = (m: DesiredMessage) => m.upserts.filter((o) => o.kind !== 'Node').map((o) => `${o.kind}/${o.metadata.name}`).sort()

t.test('desired state: full on first sync, ConfigMaps and Secrets its pods use (not others\'), live changes, only changes after a reconnect', async (t) => {
  await joinNode('ds-1')
  await joinNode('ds-2')
  for (const [k, name] of [['ConfigMap', 'cm-used'], ['ConfigMap', 'cm-env'], ['ConfigMap', 'cm-other'], ['Secret', 'sec-used'], ['Secret', 'sec-other']] as const) {
    await registry.create(kind(k), 'default', { apiVersion: 'v1', kind: k, metadata: { name }, data: {} }, WRITE)
  }
  await createPod(
    pod('web', 'ds-1', {
      spec: { volumes: [{ name: 'conf', configMap: { name: 'cm-used' } }, { name: 'creds', secret: { secretName: 'sec-used' } }] },
      container: { envFrom: [{ configMapRef: { name: 'cm-env' } }] },
    }),
  )
  await createPod(pod('elsewhere', 'ds-2', { spec: { volumes: [{ name: 'c', configMap: { name: 'cm-other' } }] }, container: { env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 'sec-other', key: 'k' } } }] } }))
  await createPod(pod('pending', undefined))

  const n1 = await connectNode('ds-1')
  t.teardown(() => n1.end())
  const first = await n1.sync(0)
  t.equal(first.full, true, 'revision 0 gets the whole set')
  t.same(keysOf(first), ['ConfigMap/cm-env', 'ConfigMap/cm-used', 'Pod/web', 'Secret/sec-used'], 'its pod and what the pod uses, nothing of the other node, nothing unscheduled')
  t.ok(first.revision > 0)
  const cmIndex = first.upserts.findIndex((o) => o.kind === 'ConfigMap')
  t.ok(cmIndex < first.upserts.findIndex((o) => o.kind === 'Pod'), 'ConfigMaps and Secrets come before the pods that use them')
  await n1.send('ack', { revision: first.revision })

  // A pod bound to the node arrives as an incremental message.
  const count = n1.desired.length
  await createPod(pod('api', 'ds-1'))
  const live = await eventually('an incremental message', () => n1.desired.length > count && n1.desired[n1.desired.length - 1])
  t.match(live, { full: false, since: first.revision, deletes: [] })
  t.same(keysOf(live), ['Pod/api'])
  t.ok(live.revision > first.revision, 'revisions only grow')
  await n1.send('ack', { revision: live.revision })
  await settle()

  // Offline for a while: one pod goes, one comes, a used ConfigMap changes, an unused one too.
  await n1.end()
  await registry.delete(kind('Pod'), 'default', 'web', { dryRun: false })
  await createPod(pod('worker', 'ds-1', { spec: { volumes: [{ name: 'conf', configMap: { name: 'cm-used' } }] } }))
  await registry.update(kind('ConfigMap'), 'default', 'cm-used', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-used' }, data: { a: '1' } }, WRITE)
  await registry.update(kind('ConfigMap'), 'default', 'cm-other', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm-other' }, data: { a: '1' } }, WRITE)
  await settle()

  const back = await connectNode('ds-1')
  t.teardown(() => back.end())
  const catchUp = await back.sync(live.revision)
  t.equal(catchUp.full, false, 'a known revision gets only what changed')
  t.equal(catchUp.since, live.revision)
  t.same(keysOf(catchUp), ['ConfigMap/cm-used', 'Pod/worker'])
  t.same(catchUp.deletes.map((d) => `${d.kind}/${d.name}`).sort(), ['ConfigMap/cm-env', 'Pod/web', 'Secret/sec-used'], 'what is no longer desired is deleted')
  t.equal((catchUp.upserts.find((o) => o.kind === 'ConfigMap') as any).data?.a, '1', 'the ConfigMap as it is now')

  const unknown = await back.sync(3)
  t.equal(unknown.full, true, 'a revision the hub has no snapshot of gets the whole set')
  t.same(keysOf(unknown), ['ConfigMap/cm-used', 'Pod/api', 'Pod/worker'])
})

t.test("desired state: the node's own Node (its pod subnet) comes down with a full set and again when its spec changes, not when its status does", async (t) => {
  await joinNode('own-1')
  const n = await connectNode('own-1')
  t.teardown(() => n.end())
  const first = await n.sync(0)
  const own = first.upserts.filter((o) => o.kind === 'Node')
  t.same(own.map((o) => o.metadata.name), ['own-1'], 'its own Node, no other')
  t.same(Object.keys(own[0]!).sort(), ['apiVersion', 'kind', 'metadata', 'spec'], 'cut to what the agent acts on: no status')
  await n.send('ack', { revision: first.revision })
  await settle()

  const before = n.desired.length
  const node = await registry.get(kind('Node'), '', 'own-1')
  await registry.update(kind('Node'), '', 'own-1', { ...node, status: { ...node.status, nodeInfo: { ...node.status?.nodeInfo, osImage: 'changed' } } }, WRITE, 'status')
  await settle()
  t.equal(n.desired.length, before, 'a status change sends nothing')

  const current = await registry.get(kind('Node'), '', 'own-1')
  await registry.update(kind('Node'), '', 'own-1', { ...current, spec: { ...current.spec, podCIDR: '10.42.9.0/24', podCIDRs: ['10.42.9.0/24'] } }, WRITE)
  const update = await eventually('the Node with its subnet', () => n.desired.slice(before).find((m) => m.upserts.some((o) => o.kind === 'Node')))
  t.match(update, { full: false, since: first.revision, deletes: [] })
  t.same(update.upserts.map((o) => [o.kind, (o as any).spec?.podCIDR]), [['Node', '10.42.9.0/24']])
})

t.test("desired state: an eviction's grace period reaches the node with the delete, a plain delete's does not", async (t) => {
  await joinNode('evict-1')
  const node = await connectNode('evict-1')
  t.teardown(() => node.end())
  const graced = await createPod(pod('graced', 'evict-1'))
  await createPod(pod('plain', 'evict-1'))
  const first = await node.sync(0)
  await node.send('ack', { revision: first.revision })
  await settle()

  const count = node.desired.length
  const eviction = { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'graced', namespace: 'default' }, deleteOptions: { gracePeriodSeconds: 3 } }
  const res = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods/graced/eviction', eviction)
  t.equal(res.status, 201, res.text)
  const deleted = await eventually('the delete of "graced"', () => node.desired.slice(count).flatMap((m) => m.deletes).find((d) => d.name === 'graced'))
  t.same(deleted, { kind: 'Pod', namespace: 'default', name: 'graced', uid: graced.metadata.uid, gracePeriodSeconds: 3 })
  await node.send('ack', { revision: node.desired[node.desired.length - 1].revision })
  await settle()

  const before = node.desired.length
  await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods/plain/eviction', { ...eviction, metadata: { name: 'plain' }, deleteOptions: {} })
  const plain = await eventually('the delete of "plain"', () => node.desired.slice(before).flatMap((m) => m.deletes).find((d) => d.name === 'plain'))
  t.same(plain, { kind: 'Pod', namespace: 'default', name: 'plain' }, 'no grace period named: the pod keeps its own')
})

t.test('desired state: a burst of pods is coalesced into few messages', async (t) => {
  await joinNode('burst')
  const n = await connectNode('burst')
  t.teardown(() => n.end())
  const first = await n.sync(0)
  await n.send('ack', { revision: first.revision })
  const before = n.desired.length
  await Promise.all(Array.from({ length: 30 }, (_, i) => createPod(pod(`b-${i}`, 'burst'))))
  const all = await eventually('all 30 pods delivered', () => {
    const got = new Set(n.desired.slice(before).flatMap((m) => m.upserts.map((o) => o.metadata.name)))
    return got.size === 30 && n.desired.slice(before)
  })
  t.ok(all.length < 30, `30 pods arrived in ${all.length} message(s)`)
  for (let i = 1; i < all.length; i++) t.equal(all[i].since, all[i - 1].revision, 'each message follows the one before')
})

t.test('status intake: garbage, truncated, oversized and wrong-typed messages are dropped; other nodes are still served', async (t) => {
  await joinNode('noisy')
  await joinNode('quiet')
  const noisy = await connectNode('noisy')
  const quiet = await connectNode('quiet')
  t.teardown(() => Promise.all([noisy.end(), quiet.end()]))
  const nodeBefore = await registry.get(kind('Node'), '', 'noisy')
  await noisy.sendRaw('node-status', 'not json at all')
  await noisy.sendRaw('node-status', '{"status": {"conditions": [')
  await noisy.sendRaw('node-status', JSON.stringify({ status: { pad: 'x'.repeat(100 * 1024) } }))
  await noisy.sendRaw('node-status', JSON.stringify({ status: 'Ready' }))
  await noisy.sendRaw('sync', JSON.stringify({ revision: -1 }))
  await noisy.sendRaw('pod-status', Buffer.from([0xff, 0xfe, 0x00]))
  await noisy.sendRaw('no-such-kind', '{}')

  const answer = await quiet.sync(0)
  t.equal(answer.full, true, 'another node is answered')
  const answerNoisy = await noisy.sync(0)
  t.equal(answerNoisy.full, true, 'and so is the noisy node once it speaks properly')
  await settle()
  t.equal((await registry.get(kind('Node'), '', 'noisy')).metadata.resourceVersion, nodeBefore.metadata.resourceVersion, 'nothing was written')
  t.equal(noisy.desired.length, 1, 'the invalid sync got no answer')
})

const READY_STATUS = {
  conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ready', lastHeartbeatTime: '2020-01-01T00:00:00Z' }],
  capacity: { cpu: '4', memory: '3906Mi', pods: '110' },
  allocatable: { cpu: '3800m', memory: '3650Mi', pods: '110' },
  addresses: [{ type: 'InternalIP', address: '10.0.0.7' }, { type: 'Hostname', address: 'st-1' }],
  nodeInfo: { architecture: 'arm64', operatingSystem: 'linux', kernelVersion: '6.6.31' },
}

t.test('node status is written only when it changes in meaning; heartbeats are never written', async (t) => {
  await joinNode('st-1')
  const n = await connectNode('st-1')
  t.teardown(() => n.end())
  const rv = async () => Number((await registry.get(kind('Node'), '', 'st-1')).metadata.resourceVersion)
  const start = await rv()

  await n.send('node-status', { status: READY_STATUS })
  await eventually('the first status written', async () => (await rv()) > start)
  const afterFirst = await rv()
  const node = await registry.get(kind('Node'), '', 'st-1')
  t.match(node.status, { allocatable: { cpu: '3800m' }, conditions: [{ type: 'Ready', status: 'True' }] })

  for (let i = 0; i < 3; i++) {
    const again = structuredClone(READY_STATUS)
    again.conditions[0].lastHeartbeatTime = `2020-01-01T00:00:0${i + 1}Z`
    await n.send('node-status', { status: again })
  }
  await settle()
  t.equal(await rv(), afterFirst, 'the same status with new timestamps writes nothing')

  const revision = await store.revision()
  for (let seq = 1; seq <= 5; seq++) await n.send('heartbeat', { seq, uptimeMs: seq * 1000, cpu: 0.25, memory: 1_000_000, temperature: 48.5 })
  await eventually('the last heartbeat recorded', () => gateway.heartbeats.get('st-1')?.heartbeat?.seq === 5)
  await settle()
  t.match(gateway.heartbeats.get('st-1')!.heartbeat, { cpu: 0.25, memory: 1_000_000, temperature: 48.5 })
  t.equal(await store.revision(), revision, 'heartbeats bump no resourceVersion at all')

  const tighter = structuredClone(READY_STATUS)
  tighter.allocatable.memory = '3000Mi'
  await n.send('node-status', { status: tighter })
  await eventually('the changed status written', async () => (await rv()) > afterFirst)
  await settle()
  t.equal((await registry.get(kind('Node'), '', 'st-1')).status?.allocatable?.memory, '3000Mi')
})

t.test('pod status: applied for the node\'s own pod, refused for another node\'s', async (t) => {
  await joinNode('ps-1')
  await joinNode('ps-2')
  const mine = await createPod(pod('mine', 'ps-1'))
  const theirs = await createPod(pod('theirs', 'ps-2'))
  const n = await connectNode('ps-1')
  t.teardown(() => n.end())
  await eventually('pods cached', async () => keysOf(await n.sync(0)).length === 1)
  const messages = n.desired.length
  const running = { phase: 'Running', podIP: '10.42.1.5', conditions: [{ type: 'Ready', status: 'True' }] }
  await n.send('pod-status', { namespace: 'default', name: 'theirs', uid: theirs.metadata.uid, status: running })
  await n.send('pod-status', { namespace: 'default', name: 'mine', uid: mine.metadata.uid, status: running })
  await eventually('own pod Running', async () => (await registry.get(kind('Pod'), 'default', 'mine')).status?.phase === 'Running')
  await settle()
  const other = await registry.get(kind('Pod'), 'default', 'theirs')
  t.equal(other.status?.phase, 'Pending', 'another node\'s pod is untouched')
  t.equal(other.metadata.resourceVersion, theirs.metadata.resourceVersion)
  t.equal(n.desired.length, messages, 'the status the node reported is not echoed back down')
})

t.test('desired state: a finished pod stays on its node with its final phase (its ConfigMaps go) until deleted; a final phase is never reported away', async (t) => {
  await joinNode('fin-1')
  await registry.create(kind('ConfigMap'), 'default', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fin-cm' }, data: { a: '1' } }, WRITE)
  const job = await createPod(pod('fin-job', 'fin-1', { spec: { restartPolicy: 'Never' }, container: { envFrom: [{ configMapRef: { name: 'fin-cm' } }] } }))
  const n = await connectNode('fin-1')
  t.teardown(() => n.end())
  const first = await eventually('pod and ConfigMap sent', async () => {
    const m = await n.sync(0)
    return keysOf(m).length === 2 && m
  })
  t.same(keysOf(first), ['ConfigMap/fin-cm', 'Pod/fin-job'])
  await n.send('ack', { revision: first.revision })
  await settle()

  const before = n.desired.length
  const terminated = { exitCode: 0, reason: 'Completed', containerID: 'docker://abc' }
  const succeeded = { phase: 'Succeeded', containerStatuses: [{ name: 'main', ready: false, restartCount: 0, state: { terminated } }] }
  await n.send('pod-status', { namespace: 'default', name: 'fin-job', uid: job.metadata.uid, status: succeeded })
  const update = await eventually('the finished pod sent down', () => n.desired.slice(before).find((m) => m.upserts.some((o) => o.metadata.name === 'fin-job')))
  t.equal((update.upserts.find((o) => o.metadata.name === 'fin-job') as any).status.phase, 'Succeeded', 'the node learns the phase is final')
  t.same(update.deletes.map((d) => `${d.kind}/${d.name}`), ['ConfigMap/fin-cm'], 'a finished pod needs its ConfigMaps no more; the pod itself stays')
  await n.send('ack', { revision: update.revision })

  await n.send('pod-status', { namespace: 'default', name: 'fin-job', uid: job.metadata.uid, status: { phase: 'Running' } })
  await settle()
  const stored = await registry.get(kind('Pod'), 'default', 'fin-job')
  t.equal(stored.status?.phase, 'Succeeded', 'a report that would leave Succeeded is refused')
  t.equal(stored.status?.containerStatuses?.[0]?.state?.terminated?.exitCode, 0)

  const resync = await n.sync(update.revision)
  t.same(resync.deletes, [], 'still desired after a reconnect')
  const full = await n.sync(0)
  t.same(keysOf(full), ['Pod/fin-job'], 'and in a full set')
  await n.send('ack', { revision: full.revision })
  await settle()

  const count = n.desired.length
  await registry.delete(kind('Pod'), 'default', 'fin-job', { dryRun: false })
  const gone = await eventually('the delete of the finished pod', () => n.desired.slice(count).flatMap((m) => m.deletes).find((d) => d.name === 'fin-job'))
  t.equal(gone.kind, 'Pod')
})

t.test('events from a node are recorded for its pods and itself, not for others\' pods', async (t) => {
  await joinNode('ev-1')
  await joinNode('ev-2')
  await createPod(pod('ev-mine', 'ev-1'))
  await createPod(pod('ev-theirs', 'ev-2'))
  const n = await connectNode('ev-1')
  t.teardown(() => n.end())
  await n.sync(0)
  await n.send('events', {
    events: [
      { reason: 'Pulled', message: 'image present', type: 'Normal', involvedObject: { kind: 'Pod', name: 'ev-mine', namespace: 'default' } },
      { reason: 'Spoofed', message: 'not yours', type: 'Warning', involvedObject: { kind: 'Pod', name: 'ev-theirs', namespace: 'default' } },
      { reason: 'Rebooted', message: 'node rebooted', type: 'Warning', involvedObject: { kind: 'Node', name: 'ev-1' } },
    ],
  })
  await settle()
  const events = (await registry.list(kind('Event'), 'default')).items as any[]
  const reasons = events.filter((e) => e.source?.host === 'ev-1').map((e) => e.reason).sort()
  t.same(reasons, ['Pulled', 'Rebooted'])
  t.match(events.find((e) => e.reason === 'Pulled'), { involvedObject: { kind: 'Pod', name: 'ev-mine' }, source: { component: 'bramble-agent', host: 'ev-1' } })
})

t.test('pod logs go through the pod\'s node and stream to the HTTP client', async (t) => {
  await joinNode('lg-1')
  await joinNode('lg-mute')
  await createPod(pod('talker', 'lg-1'))
  await createPod(pod('mute', 'lg-mute'))
  await createPod(pod('unscheduled', undefined))
  const n = await connectNode('lg-1')
  t.teardown(() => n.end())
  n.client.on('message', (topic, payload) => {
    if (!topic.endsWith('/down/rpc')) return
    const req = JSON.parse(payload.toString()) as RpcRequest
    if (req.params.cancel) return
    const reply = (m: Record<string, unknown>) => n.client.publishAsync(req.replyTopic, encodeMessage({ id: req.id, ok: true, ...m }), { qos: 1 })
    void reply({ chunk: 'line 1\n', done: false }).then(() => reply({ chunk: 'line 2\n', done: true }))
  })
  await eventually('pods cached', async () => keysOf(await n.sync(0)).length === 1)

  const res = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/talker/log?container=main&tailLines=10')
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  t.equal(res.text, 'line 1\nline 2\n')
  t.match(n.rpcs[0], { method: 'logs', replyTopic: upTopic('lg-1', 'rpc-reply'), params: { namespace: 'default', name: 'talker', container: 'main', tailLines: 10, follow: false } })

  const mute = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/mute/log')
  t.equal(mute.status, 504, 'a node that does not answer is a timeout')
  t.match(mute.json, { kind: 'Status', message: /node lg-mute did not answer/ })

  const unscheduled = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/unscheduled/log')
  t.equal(unscheduled.status, 400)
  t.match(unscheduled.json.message, /pod has not been scheduled/)
})

t.test('a client that goes away cancels a followed log on the node', async (t) => {
  await joinNode('lg-follow')
  await createPod(pod('follower', 'lg-follow'))
  const n = await connectNode('lg-follow')
  t.teardown(() => n.end())
  n.client.on('message', (topic, payload) => {
    const req = JSON.parse(payload.toString()) as RpcRequest
    if (!topic.endsWith('/down/rpc') || req.params.cancel) return
    void n.client.publishAsync(req.replyTopic, encodeMessage({ id: req.id, ok: true, chunk: 'first line\n', done: false }), { qos: 1 })
  })
  await eventually('pods cached', async () => keysOf(await n.sync(0)).length === 1)

  const firstChunk = await new Promise<string>((resolve, reject) => {
    const req = httpsRequest(`${admin.server}/api/v1/namespaces/default/pods/follower/log?follow=true`, { ca: tls.ca, headers: { Authorization: `Bearer ${admin.token}` } }, (res) => {
      res.once('data', (chunk: Buffer) => {
        resolve(chunk.toString())
        req.destroy()
      })
    })
    req.on('error', () => {})
    setTimeout(() => reject(new Error('no first chunk')), 10_000).unref()
    req.end()
  })
  t.equal(firstChunk, 'first line\n', 'the follow streams')
  const cancel = await eventually('a cancel sent to the node', () => n.rpcs.find((r) => r.params.cancel))
  t.equal(cancel.params.cancel, n.rpcs[0].id, 'the cancel names the followed call')
  t.equal(cancel.method, 'logs')
})

t.test('deleting a Node revokes its MQTT credentials at once', async (t) => {
  await joinNode('doomed')
  t.ok(credentials.has('doomed'))
  await registry.delete(kind('Node'), '', 'doomed', { dryRun: false })
  await eventually('credentials revoked', () => !credentials.has('doomed'))
  t.pass('revoked')
})

t.test('desired state: Secrets go down sealed to the node; a node whose key the hub does not know gets none until it reports one', async (t) => {
  const value = 'sealed-value-7f3a9c'
  await registry.create(kind('Secret'), 'default', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'sec-sealed' }, data: { pw: Buffer.from(value).toString('base64') } }, WRITE)
  const uses = { container: { env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'sec-sealed', key: 'pw' } } }] } }

  await joinNode('seal-1')
  await createPod(pod('sealed-user', 'seal-1', uses))
  const n = await connectNode('seal-1')
  t.teardown(() => n.end())
  const first = await n.sync(0)
  const box = first.upserts.find((o) => o.kind === 'Secret')!
  t.ok(box, 'the Secret is sent')
  t.notMatch(JSON.stringify(first), value, 'no plaintext in the message')
  t.notMatch(JSON.stringify(first), Buffer.from(value).toString('base64'), 'nor its base64')
  t.equal(Buffer.from((openSecret(box, 'seal-1', sealingKeys.get('seal-1')!.privateKey) as any).data.pw, 'base64').toString(), value, "the node's key opens it")
  t.throws(() => openSecret(box, 'seal-2', sealingKeys.get('seal-1')!.privateKey), { problem: 'refused' } as any, 'bound to this node')

  await joinNode('seal-2', { withKey: false })
  await createPod(pod('waiting-user', 'seal-2', uses))
  const old = await connectNode('seal-2')
  t.teardown(() => old.end())
  const withheld = await old.sync(0)
  t.same(keysOf(withheld), ['Pod/waiting-user'], 'no key known: the pod comes, its Secret does not')
  t.notMatch(JSON.stringify(withheld), value)
  await old.send('ack', { revision: withheld.revision })
  await settle()

  // An agent that joined before keys reports its key with its node status.
  const before = old.desired.length
  await old.send('node-status', { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ok' }] }, secretsPublicKey: sealingKeys.get('seal-2')!.publicKey })
  const late = await eventually('the Secret once the key is known', () => old.desired.slice(before).find((m) => m.upserts.some((o) => o.kind === 'Secret')))
  t.same(keysOf(late), ['Secret/sec-sealed'], 'only the Secret comes')
  t.equal((await registry.get(kind('Node'), '', 'seal-2')).metadata.annotations?.['bramble.io/secrets-public-key'], sealingKeys.get('seal-2')!.publicKey, 'kept on the Node')
  const opened = openSecret(late.upserts[0]!, 'seal-2', sealingKeys.get('seal-2')!.privateKey) as any
  t.equal(Buffer.from(opened.data.pw, 'base64').toString(), value)

  // A malformed key is refused with the field named, and changes nothing.
  await old.send('ack', { revision: late.revision })
  const count = old.desired.length
  await old.send('node-status', { status: { conditions: [] }, secretsPublicKey: 'not-a-key' })
  await settle()
  t.equal((await registry.get(kind('Node'), '', 'seal-2')).metadata.annotations?.['bramble.io/secrets-public-key'], sealingKeys.get('seal-2')!.publicKey, 'a bad key is not recorded')
  t.equal(old.desired.length, count, 'nothing sent again')
})

t.test('a node that heartbeats without having synced (its session outlived the hub that led) gets the whole set; one that synced gets nothing more', async (t) => {
  await joinNode('kept-session')
  const n = await connectNode('kept-session')
  t.teardown(() => n.end())
  await n.send('heartbeat', { seq: 1, uptimeMs: 1000, cpu: 0.1, memory: 1_000_000 })
  const first = await eventually('the whole set after a heartbeat with no sync', () => n.desired[0])
  t.equal(first.full, true, 'the whole set, since the hub cannot know what the node holds')
  await n.send('heartbeat', { seq: 2, uptimeMs: 2000, cpu: 0.1, memory: 1_000_000 })
  await settle()
  t.equal(n.desired.length, 1, 'a later heartbeat sends nothing more')
})

// Last: it replaces the gateway, as a new leader does.
t.test('a gateway starting (a new leader) revokes the credentials of Nodes deleted while none ran', async (t) => {
  await joinNode('deleted-between-leaders')
  await joinNode('still-here')
  await gateway.close()
  await registry.delete(kind('Node'), '', 'deleted-between-leaders', { dryRun: false })
  await settle()
  t.ok(credentials.has('deleted-between-leaders'), 'no gateway ran: nothing revoked the credentials yet')
  gateway = await startNodeGateway(gatewayOptions)
  t.notOk(credentials.has('deleted-between-leaders'), "the deleted Node's credentials are revoked before the gateway serves")
  t.ok(credentials.has('still-here'), 'a Node that is there keeps its credentials')
})
