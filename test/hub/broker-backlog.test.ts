// The embedded broker under a backlog: a subscriber stops reading (as the hub's own connection does
// behind thousands of nodes) while nodes flood the broker in single socket writes. With Aedes'
// default cap on messages in delivery, the queued messages that complete at once (no subscriber)
// are started one inside the other when the subscriber reads again, and the stack overflows
// (aedes#193; it killed the hub at ~9,700 simulated nodes). The scenario runs in a child with a
// small stack (`node --stack-size`), once against a plain Aedes with its defaults, to show it
// reproduces the overflow, and once against Bramble's embedded broker, which must survive it and
// deliver what follows. Then, in this process: messages on one topic, from a node and from the
// hub, reach every subscriber in the order they were published, through the same backlog.

import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer as createPlainServer, connect as plainConnect, type AddressInfo, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { connect as tlsConnect } from 'node:tls'
import { fileURLToPath } from 'node:url'
import { Aedes } from 'aedes'
import mqttPacket, { type Packet } from 'mqtt-packet'
import MQEmitter from 'mqemitter'
import { clusterTopic, upTopic } from '../../src/api/protocol.js'
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/hub/broker.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { silentLogger } from '../../src/lib/logger.js'
import { connectMqttBus } from '../../src/lib/mqtt-bus.js'
import { testTls } from '../helpers/tls.js'

const CHILD_ENV = 'BRAMBLE_BROKER_BACKLOG_CHILD'
/** KiB of stack for the child: small enough that a few thousand nested calls overflow it. */
const CHILD_STACK_KIB = 250
const FLOODERS = 8
const FLOOD_PER_NODE = 2_000
/** Large messages for the stalled subscriber: enough to fill the socket buffers between them. */
const STALL_MESSAGES = 150
const STALL_PAYLOAD_BYTES = 100_000

interface RawClient {
  socket: Socket
  received: Packet[]
  /** Resolves when a packet satisfying `pred` has arrived. */
  waitFor(pred: (p: Packet) => boolean, what: string, deadlineMs?: number): Promise<Packet>
}

interface Target {
  port: number
  /** PEM of the CA for TLS; absent: plain TCP. */
  ca?: string
  creds(name: string): Promise<{ username: string; password: string; clientId: string }>
}

/** A bare MQTT client on a socket, to write many packets in one write and to stop reading at will. */
async function rawClient(target: Target, name: string): Promise<RawClient> {
  const { username, password, clientId } = await target.creds(name)
  const socket: Socket = target.ca
    ? tlsConnect({ host: '127.0.0.1', port: target.port, ca: [target.ca], servername: 'localhost' })
    : plainConnect({ host: '127.0.0.1', port: target.port })
  await once(socket, target.ca ? 'secureConnect' : 'connect')
  const received: Packet[] = []
  const waiters = new Set<() => void>()
  const parser = mqttPacket.parser({ protocolVersion: 4 })
  parser.on('packet', (p) => {
    received.push(p)
    for (const w of [...waiters]) w()
  })
  socket.on('data', (d) => parser.parse(d))
  socket.on('error', () => {})
  const client: RawClient = {
    socket,
    received,
    waitFor(pred, what, deadlineMs = 60_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = received.find(pred)
          if (!hit) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(hit)
        }
        const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`${name}: no ${what} within ${deadlineMs} ms`))), deadlineMs)
        waiters.add(check)
        check()
      })
    },
  }
  socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId, keepalive: 0, username, password: Buffer.from(password) }))
  const connack = (await client.waitFor((p) => p.cmd === 'connack', 'CONNACK')) as mqttPacket.IConnackPacket
  if (connack.returnCode !== 0) throw new Error(`${name}: CONNACK ${connack.returnCode}`)
  return client
}

async function subscribe(client: RawClient, topic: string, qos: 0 | 1, messageId: number): Promise<void> {
  client.socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId, subscriptions: [{ topic, qos }] }))
  await client.waitFor((p) => p.cmd === 'suback' && p.messageId === messageId, `SUBACK ${messageId}`)
}

const publish = (topic: string, payload: string | Buffer, qos: 0 | 1 = 0, messageId?: number) =>
  mqttPacket.generate({ cmd: 'publish', topic, payload, qos, retain: false, dup: false, ...(qos > 0 ? { messageId } : {}) })

const isPublishOn = (topic: string) => (p: Packet): p is mqttPacket.IPublishPacket => p.cmd === 'publish' && p.topic === topic

/**
 * The backlog: the hub's subscription stalls on large messages, then each flooder writes, in one
 * write, thousands of messages no one subscribes to and a last one the hub does. Resumes reading
 * once Aedes has queued `queuedEnough` messages or has taken in every flooded one, and resolves
 * with the deepest queue seen once every flooder's last message has reached the hub.
 */
async function runBacklog(target: Target, queuedEnough: number): Promise<{ deepestQueue: number; floodedTakenIn: number }> {
  let deepestQueue = 0
  let floodedTakenIn = 0
  // Observes Aedes' router (one shared module): how deep its queue gets, how many flooded messages it took in.
  const emit = MQEmitter.prototype.emit
  MQEmitter.prototype.emit = function (this: ReturnType<typeof MQEmitter> & { _messageQueue: unknown[] }, message: { topic: string }, cb?: (err?: Error) => void) {
    if (message.topic.endsWith('/up/flood/unheard')) floodedTakenIn++
    const result = emit.call(this, message as never, cb)
    deepestQueue = Math.max(deepestQueue, this._messageQueue.length)
    return result
  }
  const hub = await rawClient(target, 'hub')
  await subscribe(hub, 'bramble/v1/nodes/+/up/+', 0, 1)
  hub.socket.pause()
  const staller = await rawClient(target, 'stall-node')
  const big = Buffer.alloc(STALL_PAYLOAD_BYTES, 'x')
  staller.socket.write(Buffer.concat(Array.from({ length: STALL_MESSAGES }, () => publish(upTopic('stall-node', 'heartbeat'), big))))
  const flooders = await Promise.all(Array.from({ length: FLOODERS }, (_, i) => rawClient(target, `flood-${i}`)))
  for (const [i, f] of flooders.entries()) {
    const unheard = publish(`bramble/v1/nodes/flood-${i}/up/flood/unheard`, 'u')
    f.socket.write(Buffer.concat([...Array.from({ length: FLOOD_PER_NODE }, () => unheard), publish(upTopic(`flood-${i}`, 'heartbeat'), 'last')]))
  }
  const deadline = Date.now() + 60_000
  while (deepestQueue < queuedEnough && floodedTakenIn < FLOODERS * FLOOD_PER_NODE && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  hub.socket.resume()
  await Promise.all(flooders.map((_, i) => hub.waitFor((p) => isPublishOn(upTopic(`flood-${i}`, 'heartbeat'))(p) && p.payload.toString() === 'last', `the last message of flood-${i}`)))
  for (const c of [hub, staller, ...flooders]) c.socket.destroy()
  return { deepestQueue, floodedTakenIn }
}

async function childMain(mode: string): Promise<void> {
  if (mode === 'aedes-defaults') {
    const broker = await Aedes.createBroker()
    const server = createPlainServer((socket) => broker.handle(socket))
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    const port = (server.address() as AddressInfo).port
    const result = await runBacklog({ port, creds: async (name) => ({ username: name, password: 'any', clientId: name }) }, 2_000)
    console.log(`survived ${JSON.stringify(result)}`)
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'bramble-broker-backlog-'))
    const credentials = await NodeCredentials.open(dir)
    const tls = testTls()
    const broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
    const creds = async (name: string) => {
      if (name === 'hub') {
        const hub = credentials.hubCredentials()
        return { ...hub, clientId: `${hub.username}:backlog` }
      }
      return { ...(await credentials.issue(name)), clientId: name }
    }
    const result = await runBacklog({ port: broker.port, ca: tls.ca, creds }, 2_000)
    console.log(`survived ${JSON.stringify(result)}`)
    await broker.close()
    await rm(dir, { recursive: true, force: true })
  }
  process.exit(0)
}

/** Runs the scenario in a child with a small stack; its exit code and output. */
async function runChild(mode: string): Promise<{ code: number | null; output: string }> {
  const self = fileURLToPath(import.meta.url)
  const loader = process.execArgv.filter((a) => a.includes('@tapjs/') || a.startsWith('--import') || a.startsWith('--loader') || a === '--enable-source-maps')
  const child = spawn(process.execPath, [`--stack-size=${CHILD_STACK_KIB}`, ...loader, self], { env: { ...process.env, [CHILD_ENV]: mode }, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const timer = setTimeout(() => child.kill('SIGKILL'), 180_000)
  const [code] = (await once(child, 'exit')) as [number | null]
  clearTimeout(timer)
  return { code, output }
}

if (process.env[CHILD_ENV]) {
  await childMain(process.env[CHILD_ENV])
} else {
  t.test('the backlog overflows the stack of an Aedes broker with its default settings', async (t) => {
    const { code, output } = await runChild('aedes-defaults')
    t.not(code, 0, 'the broker process died')
    t.match(output, /Maximum call stack size exceeded/, `of a stack overflow; output: ${output.slice(-600)}`)
  })

  t.test("Bramble's embedded broker survives the same backlog and delivers what follows it", async (t) => {
    const { code, output } = await runChild('embedded')
    t.equal(code, 0, `the broker process lived; output: ${output.slice(-600)}`)
    const line = /survived (\{.*\})/.exec(output)
    t.ok(line, 'every flooder\'s last message reached the hub')
    const result = JSON.parse(line?.[1] ?? '{}') as { deepestQueue: number; floodedTakenIn: number }
    t.equal(result.floodedTakenIn, FLOODERS * FLOOD_PER_NODE, 'every flooded message was taken in')
    t.equal(result.deepestQueue, 0, 'none waited in a queue for a delivery slot')
  })

  t.test('messages on one topic reach every subscriber in publish order, from a node and from the hub, through a backlog', async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'bramble-broker-order-'))
    const credentials = await NodeCredentials.open(dir)
    const tls = testTls()
    const broker: EmbeddedBroker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
    t.teardown(async () => {
      await broker.close()
      await rm(dir, { recursive: true, force: true })
    })
    const target: Target = {
      port: broker.port,
      ca: tls.ca,
      creds: async (name) => (name === 'hub' ? { ...credentials.hubCredentials(), clientId: `${credentials.hubCredentials().username}:order` } : { ...(await credentials.issue(name)), clientId: name }),
    }
    const N = 3_000
    const nodeTopic = upTopic('order-node', 'pod-status')
    const heartbeatTopic = upTopic('order-node', 'heartbeat')
    const hubTopic = clusterTopic('services')

    // Subscribers: the hub's raw connection (stalls at first) for the node's topic; two nodes for the hub's.
    const hubReader = await rawClient(target, 'hub')
    await subscribe(hubReader, nodeTopic, 1, 1)
    await subscribe(hubReader, heartbeatTopic, 1, 2)
    const slowNode = await rawClient(target, 'order-slow')
    await subscribe(slowNode, hubTopic, 1, 1)
    const quickNode = await rawClient(target, 'order-quick')
    await subscribe(quickNode, hubTopic, 1, 1)
    hubReader.socket.pause()
    slowNode.socket.pause()

    // The node writes all its messages in one write, as the protocol sends them (pod statuses at QoS 1,
    // heartbeats at QoS 0: MQTT orders a topic's messages of one QoS), with one no one hears after each.
    const sender = await rawClient(target, 'order-node')
    const packets: Buffer[] = []
    for (let i = 1; i <= N; i++) {
      packets.push(publish(nodeTopic, String(i), 1, i))
      packets.push(publish(heartbeatTopic, String(i), 0))
      packets.push(publish('bramble/v1/nodes/order-node/up/flood/unheard', 'u'))
    }
    sender.socket.write(Buffer.concat(packets))
    // The hub publishes through its real Bus, without waiting for one acknowledgement before the next.
    const hubBus = await connectMqttBus({ url: broker.url, ca: tls.ca, ...credentials.hubCredentials(), clientId: `${credentials.hubCredentials().username}:order-pub`, logger: silentLogger() })
    t.teardown(() => hubBus.close())
    const published = Array.from({ length: N }, (_, i) => hubBus.publish(hubTopic, String(i + 1), { qos: 1, retain: false }))

    // Each reader acknowledges QoS 1 deliveries, as a client must for the broker to go on, and keeps what it saw.
    const seen = new Map<RawClient, Packet[]>()
    for (const reader of [hubReader, slowNode, quickNode]) {
      const kept: Packet[] = []
      seen.set(reader, kept)
      const take = () => {
        for (const p of reader.received.splice(0)) {
          if (p.cmd === 'publish' && p.qos === 1) reader.socket.write(mqttPacket.generate({ cmd: 'puback', messageId: p.messageId! }))
          kept.push(p)
        }
      }
      take()
      reader.socket.on('data', take)
    }
    await new Promise((r) => setTimeout(r, 500))
    hubReader.socket.resume()
    slowNode.socket.resume()
    await Promise.all(published)
    const sequence = async (reader: RawClient, topic: string): Promise<number[]> => {
      const deadline = Date.now() + 60_000
      const numbers = () => seen.get(reader)!.filter(isPublishOn(topic)).map((p) => Number(p.payload.toString()))
      while (numbers().length < N && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      return numbers()
    }
    const expected = Array.from({ length: N }, (_, i) => i + 1)
    t.same(await sequence(hubReader, nodeTopic), expected, "the hub saw the node's pod statuses, each once, in order")
    t.same(await sequence(hubReader, heartbeatTopic), expected, "the hub saw the node's heartbeats, each once, in order")
    t.same(await sequence(slowNode, hubTopic), expected, "the node that stalled saw the hub's messages, each once, in order")
    t.same(await sequence(quickNode, hubTopic), expected, "the other node saw the hub's messages, each once, in order")
    for (const c of [hubReader, slowNode, quickNode, sender]) c.socket.destroy()
  })
}
