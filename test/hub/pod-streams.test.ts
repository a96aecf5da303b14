// The hub's side of exec and port-forward sessions over a real embedded broker, the node played by
// the test through its own MQTT credentials (as the protocol peer): input waits for the node's
// window, output is put in order and duplicates dropped, a node that stops answering ends the
// session, and a reply from another node is refused.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DELIVERY, encodeMessage, nodeDownFilter, upTopic, type RpcReply, type RpcRequest } from '../../src/api/protocol.js'
import type { KubeObject } from '../../src/api/types.js'
import { startEmbeddedBroker } from '../../src/hub/broker.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { PodStreams } from '../../src/hub/pod-streams.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { connectMqttBus, type MqttBus } from '../../src/lib/mqtt-bus.js'
import { WINDOW_BYTES } from '../../src/lib/stream-window.js'
import { testTls } from '../helpers/tls.js'

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

const root = await mkdtemp(join(tmpdir(), 'ex-pod-streams-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
const tls = testTls()
const credentials = await NodeCredentials.open(join(root, 'creds'))
const broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
t.teardown(() => broker.close())
const hubCreds = credentials.hubCredentials()
const node = 'ex-node'
const nodeCreds = await credentials.issue(node)
const requests: RpcRequest[] = []
const nodeBus: MqttBus = await connectMqttBus({
  url: broker.url,
  ca: tls.ca,
  username: nodeCreds.username,
  password: nodeCreds.password,
  clientId: node,
  logger: silentLogger(),
  subscriptions: [{ filter: nodeDownFilter(node), handler: (_topic, payload) => requests.push(JSON.parse(payload.toString())) }],
})
t.teardown(() => nodeBus.close())
let streams: PodStreams
const hubBus: MqttBus = await connectMqttBus({
  url: broker.url,
  ca: tls.ca,
  username: hubCreds.username,
  password: hubCreds.password,
  clientId: `${hubCreds.username}:ex-test`,
  logger: silentLogger(),
  subscriptions: [{ filter: upTopic(node, 'rpc-reply').replace(node, '+'), handler: (topic, payload) => streams.onReply(topic.split('/')[3], JSON.parse(payload.toString())) }],
})
t.teardown(() => hubBus.close())
streams = new PodStreams({ bus: hubBus, clock: systemClock, logger: silentLogger(), openTimeoutMs: 5_000, keepaliveMs: 300 })
t.teardown(() => streams.close())

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default', uid: 'u1' }, spec: { nodeName: node }, status: { phase: 'Running' } } as KubeObject
const reply = (r: RpcReply) => nodeBus.publish(upTopic(node, 'rpc-reply'), encodeMessage(r), DELIVERY['rpc-reply'])

function openSession() {
  const output: string[] = []
  let ended: { exitCode?: number; error?: string } | undefined
  const session = streams.open(pod, 'port-forward', { port: 8080 }, {
    output: (_channel, data, passedOn) => {
      output.push(data.toString())
      passedOn()
    },
    end: (result) => (ended = result),
  })
  return { session, output, ended: () => ended }
}

t.test('input beyond the window waits for the node to acknowledge it', async (t) => {
  const { session } = openSession()
  const open = await until('the open request', () => requests.find((r) => r.id === session.id))
  t.equal(open.method, 'port-forward')
  t.same(open.params, { namespace: 'default', name: 'web', uid: 'u1', port: 8080 })
  await reply({ id: session.id, ok: true, seq: 0, done: false, result: { opened: true } })
  let sent = false
  const sending = session.send(1, Buffer.alloc(WINDOW_BYTES + 64 * 1024, 1)).then(() => (sent = true))
  const dataBytes = () => requests.filter((r) => r.method === 'stream' && r.params.session === session.id && typeof r.params.data === 'string').reduce((n, r) => n + Buffer.from(r.params.data as string, 'base64').length, 0)
  await until('a window of input', () => dataBytes() >= WINDOW_BYTES)
  await new Promise((r) => setTimeout(r, 500))
  t.equal(dataBytes(), WINDOW_BYTES, 'no more than a window is sent before an acknowledgement')
  t.notOk(sent)
  await reply({ id: session.id, ok: true, done: false, ack: WINDOW_BYTES })
  await sending
  await until('the rest of the input', () => dataBytes() === WINDOW_BYTES + 64 * 1024)
  t.pass('the rest follows the acknowledgement')
  const seqs = requests.filter((r) => r.method === 'stream' && r.params.session === session.id && typeof r.params.seq === 'number').map((r) => r.params.seq)
  t.same(seqs, seqs.map((_, i) => i), 'input carries consecutive sequence numbers')
  streams.cancel(session)
  await until('the close sent to the node', () => requests.find((r) => r.params.session === session.id && r.params.close === true))
})

t.test('output is passed on in order and once, acknowledged, then the end', async (t) => {
  const { session, output, ended } = openSession()
  await until('the open request', () => requests.find((r) => r.id === session.id))
  const chunk = (seq: number, text: string): RpcReply => ({ id: session.id, ok: true, done: false, seq, channel: 1, chunk: Buffer.from(text).toString('base64') })
  await reply({ id: session.id, ok: true, seq: 0, done: false, result: { opened: true } })
  await reply(chunk(2, 'c'))
  await reply(chunk(1, 'b'))
  await reply(chunk(1, 'b'))
  await reply({ id: session.id, ok: true, seq: 3, done: true, result: {} })
  await until('the end', ended)
  t.same(output, ['b', 'c'])
  t.same(ended(), {})
  // The acknowledgement goes to the node through the broker: it may arrive after the end does.
  await until('the acknowledgement of the bytes passed on', () => requests.some((r) => r.params.session === session.id && r.params.ack === 2))
  t.pass('the bytes passed on are acknowledged')
})

t.test('a node that stops answering ends the session; one that answers keeps it', async (t) => {
  const { session, ended } = openSession()
  await until('the open request', () => requests.find((r) => r.id === session.id))
  await reply({ id: session.id, ok: true, seq: 0, done: false, result: { opened: true } })
  const pings = () => requests.filter((r) => r.params.session === session.id && r.params.ping === true).length
  for (let answered = 0; answered < 4; ) {
    await until('a ping', () => pings() > answered)
    answered = pings()
    await reply({ id: session.id, ok: true, done: false, ack: 0 })
  }
  t.equal(ended(), undefined, 'answered pings keep the session open')
  const end = await until('the session ended', ended, 10_000)
  t.match(end.error, /node ex-node stopped answering/)
})

t.test('a reply from another node is refused', async (t) => {
  const { session, output } = openSession()
  await until('the open request', () => requests.find((r) => r.id === session.id))
  streams.onReply('ex-other', { id: session.id, ok: true, done: false, seq: 0, channel: 1, chunk: Buffer.from('forged').toString('base64') })
  t.same(output, [])
  streams.cancel(session)
})

t.test('a pod not on a node is refused at once', async (t) => {
  const pending = { ...pod, spec: {} } as KubeObject
  t.throws(() => streams.open(pending, 'exec', { command: ['true'] }, { output() {}, end() {} }), /not bound to a node yet/)
  const done = { ...pod, status: { phase: 'Succeeded' } } as KubeObject
  t.throws(() => streams.open(done, 'exec', { command: ['true'] }, { output() {}, end() {} }), /completed pod; current phase is Succeeded/)
})
