// Bad input over MQTT (issue 7): a joined node floods the hub, with its real credentials on the
// real embedded broker, with thousands of generated payloads on every up topic kind of the
// protocol: random bytes, truncated and wrong-typed messages, oversized ones, unknown topic
// names. Each is dropped with one log line (warnings rate-limited per node, the rest at debug),
// nothing of it is written, and meanwhile another node's heartbeats and pod statuses keep being
// applied and its sync answered. Also: a followed pod log whose client stops reading is cut off.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect as tlsConnect, type TLSSocket } from 'node:tls'
import fc from 'fast-check'
import mqtt, { type MqttClient } from 'mqtt'
import t from 'tap'
import { JOIN_PATH } from '../../src/api/join.js'
import { KINDS } from '../../src/api/kinds.js'
import { decodeUp } from '../../src/api/protocol-decode.js'
import { encodeMessage, MAX_PAYLOAD_BYTES, nodeDownFilter, UP_NAMES, upTopic, type DesiredMessage, type RpcRequest, type UpName } from '../../src/api/protocol.js'
import { generateSealingKeyPair } from '../../src/api/sealed-secret.js'
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
import { createLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { testTls } from '../helpers/tls.js'

const FLOOD = Number(process.env.BI_FLOOD ?? 5000)
const POD = KINDS.find((k) => k.kind === 'Pod')!
const NODE = KINDS.find((k) => k.kind === 'Node')!
const tls = testTls()

/** Every log line the hub's components write, parsed. */
const lines: Array<Record<string, any>> = []
const logSink = new Writable({
  write(chunk, _enc, done) {
    for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line))
    done()
  },
})
const logger = createLogger({ level: 'debug', destination: logSink })

let dir: string
let store: Store
let registry: Registry
let tokens: TokenStore
let broker: EmbeddedBroker
let gateway: NodeGateway
let server: RunningApiServer

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bi-flood-'))
  store = await openLmdbStore({ path: join(dir, 'store') })
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' }, status: { phase: 'Active' } })
  registry = new Registry(store, systemClock, logger)
  tokens = TokenStore.open(dir, systemClock)
  const credentials = await NodeCredentials.open(dir)
  broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger })
  gateway = await startNodeGateway({
    registry,
    tokens,
    credentials,
    ca: tls.ca,
    clusterId: 'c-bi-flood',
    apiServer: () => `https://127.0.0.1:${server.port}`,
    brokerUrl: broker.url,
    busOptions: { url: broker.url, ca: tls.ca, reconnect: { minMs: 50, maxMs: 500 } },
    clock: systemClock,
    logger,
    nodeGracePeriodMs: 600_000,
    coalesceMs: 100,
  })
  server = await startApiServer({ store, logger, clock: systemClock, tls, authenticate: tokens.authenticate, host: '127.0.0.1', port: 0, extraRoutes: gateway.extraRoutes, podLogs: gateway.podLogs })
})

t.teardown(async () => {
  closeApiAgents()
  await server?.close()
  await gateway?.close()
  await broker?.close()
  await store?.close()
  rmSync(dir, { recursive: true, force: true })
})

async function eventually<T>(what: string, check: () => T | undefined | false | Promise<T | undefined | false>, deadlineMs = 60_000): Promise<T> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

/** Joins `name` through the real join endpoint and connects with the credentials it got. */
async function joinAndConnect(name: string): Promise<MqttClient> {
  const token = tokens.createJoinToken({ caHash: caHash(tls.ca) }).token
  const res = await apiRequest({ server: `https://127.0.0.1:${server.port}`, ca: tls.ca }, 'POST', JOIN_PATH, { token, nodeName: name, arch: 'arm64', os: 'linux', secretsPublicKey: generateSealingKeyPair().publicKey })
  if (res.status !== 200) throw new Error(`join of ${name} failed: ${res.text}`)
  await eventually(`${name} known to the gateway`, () => gateway.lifecycle.verdict(name) !== undefined)
  const client = await mqtt.connectAsync(broker.url, { username: name, password: res.json.mqtt.password, clientId: name, ca: [tls.ca], protocolVersion: 4, clean: true, reconnectPeriod: 0 })
  client.on('error', () => {})
  return client
}

/** One valid message of each kind: what the wrong-typed and truncated payloads start from. */
const VALID: Record<UpName, Record<string, unknown>> = {
  sync: { revision: 5 },
  ack: { revision: 5 },
  heartbeat: { seq: 1, uptimeMs: 1000, cpu: 0.1, memory: 1000 },
  'node-status': { status: { conditions: [{ type: 'Ready', status: 'True' }] } },
  'pod-status': { namespace: 'default', name: 'p', uid: 'u', status: { phase: 'Running' } },
  events: { events: [{ reason: 'Pulled', involvedObject: { kind: 'Node', name: 'noisy' } }] },
  'rpc-reply': { id: 'r1', ok: true },
  presence: { online: true, at: 1 },
}

interface Garbage {
  /** The last topic level: an up kind of the protocol, or a name it does not have. */
  name: string
  payload: Buffer
}

const upName = fc.constantFrom(...UP_NAMES)
const garbage: fc.Arbitrary<Garbage> = fc.oneof(
  // Random bytes.
  fc.record({ name: upName, payload: fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)) }),
  // A valid message cut short.
  fc.tuple(upName, fc.nat()).map(([name, cut]) => {
    const text = JSON.stringify(VALID[name])
    return { name, payload: Buffer.from(text.slice(0, cut % text.length)) }
  }),
  // A valid message with a field of the wrong type, missing, or the whole message not an object.
  fc.tuple(upName, fc.nat(), fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constant(undefined)), fc.boolean()).map(([name, pick, value, whole]) => {
    const message: Record<string, unknown> = structuredClone(VALID[name])
    const keys = Object.keys(message)
    if (!whole) message[keys[pick % keys.length]] = value
    return { name, payload: Buffer.from(JSON.stringify(whole ? value : message) ?? '') }
  }),
  // Over the kind's size limit.
  fc.tuple(upName, fc.nat({ max: 4096 })).map(([name, extra]) => ({ name, payload: Buffer.from(JSON.stringify({ ...VALID[name], pad: 'x'.repeat(MAX_PAYLOAD_BYTES[name] + extra) })) })),
  // A topic name the protocol does not have.
  fc.record({ name: fc.constantFrom('bogus', 'status', 'heartbeats', 'SYNC', 'pod-statuses'), payload: fc.constant(encodeMessage({ revision: 1 })) }),
)

const isUp = (name: string): name is UpName => (UP_NAMES as readonly string[]).includes(name)

t.test('a node flooding garbage on every up topic is dropped line by line, and another node is served throughout', async (t) => {
  const noisy = await joinAndConnect('noisy')
  const quiet = await joinAndConnect('quiet')
  t.teardown(async () => {
    await noisy.endAsync().catch(() => {})
    await quiet.endAsync().catch(() => {})
  })
  const pod = (await registry.create(POD, 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'quiet-pod' }, spec: { nodeName: 'quiet', containers: [{ name: 'main', image: 'busybox' }] } }, { dryRun: false, fieldValidation: 'Ignore' })).object
  const quietDesired: DesiredMessage[] = []
  quiet.on('message', (topic, payload) => topic.endsWith('/down/desired') && quietDesired.push(JSON.parse(payload.toString())))
  await quiet.subscribeAsync(nodeDownFilter('quiet'), { qos: 1 })
  const noisyNode = await registry.get(NODE, '', 'noisy')
  const revisionBefore = await store.revision()

  // Every payload is one the protocol refuses; made a batch at a time (oversized ones are big).
  const refused = garbage.filter((g) => !isUp(g.name) || !decodeUp(g.name, g.payload).ok)
  const sent: string[] = []

  // The quiet node reports on, a heartbeat and a pod status (a restart count that grows) every 100 ms.
  let seq = 0
  let running = true
  const reporting = (async () => {
    while (running) {
      seq++
      await quiet.publishAsync(upTopic('quiet', 'heartbeat'), encodeMessage({ seq, uptimeMs: seq * 100, cpu: 0.1, memory: 1000 }), { qos: 1 })
      const status = { phase: 'Running', containerStatuses: [{ name: 'main', ready: true, restartCount: seq, image: 'busybox', imageID: '', state: { running: {} } }] }
      await quiet.publishAsync(upTopic('quiet', 'pod-status'), encodeMessage({ namespace: 'default', name: 'quiet-pod', uid: pod.metadata.uid, status }), { qos: 1 })
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  const restartCount = async () => (await registry.get(POD, 'default', 'quiet-pod')).status?.containerStatuses?.[0]?.restartCount ?? 0
  await eventually('the quiet node\'s first status applied', async () => (await restartCount()) > 0)

  // The flood, 50 messages in flight at a time; meanwhile the quiet node's reports are applied.
  const atStart = { seq: gateway.heartbeats.get('quiet')?.heartbeat?.seq ?? 0, restarts: await restartCount() }
  const started = Date.now()
  for (let batch = 0; sent.length < FLOOD; batch++) {
    const messages = fc.sample(refused, { numRuns: Math.min(50, FLOOD - sent.length), seed: 7 + batch })
    sent.push(...messages.map((g) => g.name))
    await Promise.all(messages.map((g) => noisy.publishAsync(`bramble/v1/nodes/noisy/up/${g.name}`, g.payload, { qos: 1 })))
  }
  const kinds = new Set(sent)
  t.ok(UP_NAMES.every((n) => kinds.has(n)), 'the flood covered every up topic kind of the protocol')
  const answered = quietDesired.length
  await quiet.publishAsync(upTopic('quiet', 'sync'), encodeMessage({ revision: 0 }), { qos: 1 })
  const atEnd = { seq: gateway.heartbeats.get('quiet')?.heartbeat?.seq ?? 0, restarts: await restartCount() }
  t.comment(`flood of ${sent.length} messages took ${((Date.now() - started) / 1000).toFixed(1)} s; quiet heartbeat seq ${atStart.seq} -> ${atEnd.seq}, restartCount ${atStart.restarts} -> ${atEnd.restarts}`)
  t.ok(atEnd.seq > atStart.seq, 'the quiet node\'s heartbeats were recorded during the flood')
  t.ok(atEnd.restarts > atStart.restarts, 'its pod statuses were written during the flood')
  await eventually('the quiet node\'s sync answered', () => quietDesired.length > answered)
  t.ok(quietDesired[quietDesired.length - 1].upserts.some((o) => o.metadata.name === 'quiet-pod'), 'with its pod')

  running = false
  await reporting
  await eventually('the last heartbeat recorded', () => gateway.heartbeats.get('quiet')?.heartbeat?.seq === seq)
  await eventually('the last pod status written', async () => (await restartCount()) === seq)

  // One line per dropped message: warnings rate-limited per node, the rest at debug level.
  const forNoisy = (l: Record<string, any>) => l.component === 'node-intake' && l.node === 'noisy' && l.msg === 'dropped an invalid message from a node'
  const forTopic = (l: Record<string, any>) => l.component === 'node-intake' && l.msg === 'dropped a message on a topic that is not a protocol v1 up topic'
  const invalid = sent.filter(isUp).length
  const unknownTopics = sent.length - invalid
  await eventually(`${invalid} drop lines for the noisy node`, () => lines.filter(forNoisy).length >= invalid)
  await eventually(`${unknownTopics} drop lines for unknown topics`, () => lines.filter(forTopic).length >= unknownTopics)
  const dropLines = lines.filter(forNoisy)
  t.equal(dropLines.length, invalid, 'exactly one line per dropped message')
  t.equal(lines.filter(forTopic).length, unknownTopics, 'and per message on an unknown topic')
  const minutes = Math.ceil((Date.now() - started) / 60_000) + 1
  const warnings = dropLines.filter((l) => l.level === 40).length
  t.ok(warnings >= 1 && warnings <= 10 * minutes, `at most 10 warnings a minute for the node (${warnings}), the rest at debug`)
  t.ok(dropLines.every((l) => typeof l.reason === 'string' && l.reason.length > 0), 'each line says why')
  t.ok(dropLines.some((l) => /exceeds the limit/.test(l.reason)) && dropLines.some((l) => /not valid JSON/.test(l.reason)), 'oversized and garbage both named')

  const noisyAfter = await registry.get(NODE, '', 'noisy')
  t.equal(noisyAfter.metadata.resourceVersion, noisyNode.metadata.resourceVersion, 'the noisy node\'s Node was not written')
  const events = (await registry.list(KINDS.find((k) => k.kind === 'Event')!, undefined)).items.filter((e: any) => e.source?.host === 'noisy')
  t.same(events, [], 'no event from the noisy node was recorded')
  const writes = (await store.revision()) - revisionBefore
  t.ok(writes <= seq + 2, `the store saw only the quiet node's writes (${writes} revisions for ${seq} statuses)`)
  t.notOk(noisy.disconnected, 'the noisy node itself is still connected: refusing its messages is not a punishment')
})

t.test('a followed log whose client stops reading is cut off, and the node is told to stop sending', async (t) => {
  const node = await joinAndConnect('chatty')
  t.teardown(() => node.endAsync().catch(() => {}))
  await registry.create(POD, 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'chatty-pod' }, spec: { nodeName: 'chatty', containers: [{ name: 'main', image: 'busybox' }] } }, { dryRun: false, fieldValidation: 'Ignore' })
  await eventually('the pod in the gateway\'s cache', () => gateway.pods.get('default/chatty-pod'))
  const requests: RpcRequest[] = []
  let published = 0
  node.on('message', async (topic, payload) => {
    if (!topic.endsWith('/down/rpc')) return
    const req = JSON.parse(payload.toString()) as RpcRequest
    requests.push(req)
    if (req.params.cancel) return
    // 100 chunks of 200 KB: 20 MB of log for a client that reads none of it.
    const chunk = `${'l'.repeat(199 * 1024)}\n`
    for (let i = 0; i < 100 && !requests.some((r) => r.params.cancel === req.id); i++) {
      await node.publishAsync(req.replyTopic, encodeMessage({ id: req.id, ok: true, chunk, done: false }), { qos: 1 })
      published++
    }
  })
  await node.subscribeAsync(nodeDownFilter('chatty'), { qos: 1 })

  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ host: '127.0.0.1', port: server.port, ca: tls.ca }, () => resolve(s))
    s.once('error', reject)
  })
  let received = 0
  socket.on('data', (d: Buffer) => (received += d.length))
  socket.on('error', () => {})
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  const firstData = new Promise<void>((resolve) => socket.once('data', () => resolve()))
  socket.write(`GET /api/v1/namespaces/default/pods/chatty-pod/log?follow=true HTTP/1.1\r\nHost: bramble\r\nAuthorization: Bearer ${tokens.issueUserToken('admin', 'admin')}\r\n\r\n`)
  await firstData
  socket.pause()

  const first = await eventually('the log request on the node', () => requests.find((r) => !r.params.cancel))
  const cancel = await eventually('a cancel sent to the node', () => requests.find((r) => r.params.cancel === first.id))
  t.equal(cancel.method, 'logs', 'the hub cancelled the follow on the node')
  socket.resume()
  await Promise.race([closed, new Promise((r) => setTimeout(r, 30_000).unref())])
  socket.destroy()
  t.ok(received < 20 * 1024 * 1024, `the client got ${(received / 1024 / 1024).toFixed(1)} MB of the 20 MB before its stream was cut`)
  t.comment(`the node had sent ${published} chunks when it was told to stop`)
})

/** MQTT's variable-length encoding of a packet's remaining length. */
function remainingLength(n: number): Buffer {
  const bytes: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    bytes.push(byte)
  } while (n > 0)
  return Buffer.from(bytes)
}

t.test('a node that streams a 200 MB MQTT packet is disconnected once its header is read; the broker buffers none of it', async (t) => {
  const huge = await joinAndConnect('huge')
  const other = await joinAndConnect('bystander')
  t.teardown(async () => {
    huge.end(true)
    await other.endAsync().catch(() => {})
  })
  const socket = (huge as unknown as { stream: TLSSocket }).stream
  const topic = Buffer.from(upTopic('huge', 'events'))
  const total = 200 * 1024 * 1024
  const before = process.memoryUsage()
  let highest = before.arrayBuffers
  const sampler = setInterval(() => (highest = Math.max(highest, process.memoryUsage().arrayBuffers)), 20)
  t.teardown(() => clearInterval(sampler))

  // A PUBLISH (QoS 0) whose header announces 200 MB, then filler written as fast as the socket takes it.
  let sent = 0
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()))
  socket.on('error', () => {})
  socket.write(Buffer.concat([Buffer.from([0x30]), remainingLength(2 + topic.length + total), Buffer.from([topic.length >> 8, topic.length & 0xff]), topic]))
  const filler = Buffer.alloc(64 * 1024, '{')
  let open = true
  void closed.then(() => (open = false))
  while (open && sent < total) {
    sent += filler.length
    if (!socket.write(filler)) await Promise.race([new Promise((r) => socket.once('drain', r)), closed])
  }
  await Promise.race([closed, new Promise((r) => setTimeout(r, 30_000).unref())])
  clearInterval(sampler)
  t.notOk(open, 'the broker closed the connection')
  t.ok(sent < total / 2, `after ${(sent / 1024 / 1024).toFixed(1)} MB of the 200 MB`)
  t.comment(`test process arrayBuffers ${(before.arrayBuffers / 1024 / 1024).toFixed(0)} MB before, highest ${(highest / 1024 / 1024).toFixed(0)} MB`)
  t.ok(highest - before.arrayBuffers < 64 * 1024 * 1024, 'no buffer of the packet grew in the process that holds the broker')
  await eventually('the refusal in the log', () => lines.find((l) => l.component === 'mqtt-broker' && l.msg === 'closed an MQTT connection that sent an oversized or malformed packet' && /exceeds the limit/.test(l.reason)))

  // Everyone else is still served: another node's heartbeat is recorded.
  await other.publishAsync(upTopic('bystander', 'heartbeat'), encodeMessage({ seq: 42, uptimeMs: 1, cpu: 0, memory: 1 }), { qos: 1 })
  await eventually('the bystander\'s heartbeat', () => gateway.heartbeats.get('bystander')?.heartbeat?.seq === 42)
  t.pass('another node\'s heartbeat was recorded')
})
