// The Bus contract: one suite, run against every broker Bramble supports (the embedded Aedes
// broker and a real Mosquitto). Each broker fixture hands out the hub's credentials and issues
// node credentials, as the hub does at join.

import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import type { Duplex } from 'node:stream'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { clusterTopic, downTopic, upTopic, ALL_UP_FILTER } from '../../src/api/protocol.js'
import type { Bus } from '../../src/lib/bus.js'
import { silentLogger } from '../../src/lib/logger.js'
import { connectMqttBus, type MqttBus, type MqttBusOptions } from '../../src/lib/mqtt-bus.js'
import { startEmbeddedBroker } from '../../src/hub/broker.js'
import { NodeCredentials, type MqttCredentials } from '../../src/hub/node-credentials.js'
import { startMosquitto } from '../helpers/mosquitto.js'
import { testTls } from '../helpers/tls.js'

export interface BrokerFixture {
  name: string
  url: string
  ca: string
  credentials: NodeCredentials
  hub: MqttCredentials
  /** The hub's connections go through this in-memory stream instead of TLS (the embedded broker's own hub). */
  hubStream?: () => Duplex
  /** Issues node credentials and makes sure the broker knows them. */
  issueNode(node: string): Promise<MqttCredentials>
  /** Revokes and makes sure the broker has forgotten them. */
  revokeNode(node: string): Promise<void>
  /** Stops the broker and starts it again on the same address, losing its sessions. */
  restart(): Promise<void>
  close(): Promise<void>
}

export type MakeBroker = () => Promise<BrokerFixture>

async function credentialsInTempDir(): Promise<{ credentials: NodeCredentials; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-creds-'))
  return { credentials: await NodeCredentials.open(dir), dir }
}

export const embeddedBroker: MakeBroker = () => startEmbedded(false)
/** The embedded broker with the hub connected in memory, as a hub connects to its own broker. */
export const embeddedBrokerInProcess: MakeBroker = () => startEmbedded(true)

async function startEmbedded(hubInProcess: boolean): Promise<BrokerFixture> {
  const { credentials, dir } = await credentialsInTempDir()
  const tls = testTls()
  const start = (port: number) => startEmbeddedBroker({ port, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
  let broker = await start(0)
  return {
    name: hubInProcess ? 'embedded Aedes broker, hub in process' : 'embedded Aedes broker',
    ...(hubInProcess ? { hubStream: () => broker.connectInProcess() } : {}),
    url: broker.url,
    ca: tls.ca,
    credentials,
    hub: credentials.hubCredentials(),
    issueNode: (node) => credentials.issue(node),
    revokeNode: async (node) => void (await credentials.revoke(node)),
    async restart() {
      await broker.close()
      broker = await start(broker.port)
    },
    async close() {
      await broker.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export const mosquittoBroker: MakeBroker = async () => {
  const { credentials, dir } = await credentialsInTempDir()
  const mosquitto = await startMosquitto(credentials)
  return {
    name: 'Mosquitto',
    url: mosquitto.url,
    ca: mosquitto.ca,
    credentials,
    hub: credentials.hubCredentials(),
    async issueNode(node) {
      const creds = await credentials.issue(node)
      await mosquitto.reload()
      return creds
    },
    async revokeNode(node) {
      await credentials.revoke(node)
      await mosquitto.reload()
    },
    restart: () => mosquitto.restart(),
    async close() {
      await mosquitto.stop()
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export function connectAs(
  broker: BrokerFixture,
  creds: MqttCredentials,
  extra: Partial<MqttBusOptions> = {},
): Promise<MqttBus> {
  const isHub = creds.username === broker.hub.username
  const clientId = isHub ? `${creds.username}:${randomBytes(4).toString('hex')}` : creds.username
  return connectMqttBus({
    url: broker.url,
    ...(isHub && broker.hubStream ? { stream: broker.hubStream } : {}),
    username: creds.username,
    password: creds.password,
    ca: broker.ca,
    clientId,
    logger: silentLogger(),
    reconnect: { minMs: 50, maxMs: 500 },
    connectTimeoutMs: 10_000,
    ...extra,
  })
}

/** Resolves with the first message a handler sees (or rejects after a generous deadline). */
export function nextMessage(bus: Bus, filter: string, deadlineMs = 10_000): Promise<{ topic: string; payload: Buffer }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no message on ${filter} within ${deadlineMs} ms`)), deadlineMs)
    const handler = (topic: string, payload: Buffer) => {
      clearTimeout(timer)
      void bus.unsubscribe(filter, handler)
      resolve({ topic, payload })
    }
    bus.subscribe(filter, handler, { qos: 1 }).catch((err) => (clearTimeout(timer), reject(err)))
  })
}

/** Subscribes once and records every payload; waitFor resolves when one satisfies `pred`. */
export async function collect(bus: Bus, filter: string, deadlineMs = 10_000) {
  const payloads: string[] = []
  const waiters = new Set<() => void>()
  await bus.subscribe(filter, (_topic, payload) => {
    payloads.push(payload.toString())
    for (const w of [...waiters]) w()
  }, { qos: 1 })
  return {
    payloads,
    waitFor(pred: (payload: string) => boolean): Promise<string> {
      return new Promise((resolve, reject) => {
        const check = () => {
          const hit = payloads.find(pred)
          if (hit === undefined) return
          waiters.delete(check)
          clearTimeout(timer)
          resolve(hit)
        }
        const timer = setTimeout(() => (waiters.delete(check), reject(new Error(`expected message on ${filter} within ${deadlineMs} ms; saw ${JSON.stringify(payloads)}`))), deadlineMs)
        waiters.add(check)
        check()
      })
    },
  }
}

export function busContract(t: Test, makeBroker: MakeBroker): void {
  let broker: BrokerFixture
  const open: MqttBus[] = []
  const track = async (p: Promise<MqttBus>) => {
    const bus = await p
    open.push(bus)
    return bus
  }

  t.before(async () => {
    broker = await makeBroker()
  })
  t.afterEach(async () => {
    await Promise.all(open.splice(0).map((b) => b.close().catch(() => {})))
  })
  t.teardown(async () => {
    await broker?.close()
  })

  t.test('a message a node publishes reaches a subscriber of its topic', async (t) => {
    const hub = await track(connectAs(broker, broker.hub))
    const node = await track(connectAs(broker, await broker.issueNode('roundtrip-1')))
    t.equal(hub.connected, true)
    const received: Array<{ topic: string; payload: string }> = []
    const arrived = new Promise<void>((resolve) =>
      hub.subscribe(ALL_UP_FILTER, (topic, payload) => {
        received.push({ topic, payload: payload.toString() })
        resolve()
      }),
    )
    await hub.subscribe(ALL_UP_FILTER, () => {}) // idempotent second handler
    await node.publish(upTopic('roundtrip-1', 'heartbeat'), '{"seq":1}', { qos: 1, retain: false })
    await arrived
    t.same(received, [{ topic: upTopic('roundtrip-1', 'heartbeat'), payload: '{"seq":1}' }])
  })

  t.test('a retained message reaches a subscriber that comes later', async (t) => {
    const hub = await track(connectAs(broker, broker.hub))
    await hub.publish(clusterTopic('services'), '{"v":1}', { qos: 1, retain: true })
    const node = await track(connectAs(broker, await broker.issueNode('retained-1')))
    const msg = await nextMessage(node, clusterTopic('services'))
    t.equal(msg.payload.toString(), '{"v":1}')
  })

  t.test('the Last Will is published when a client dies without disconnecting', async (t) => {
    const hub = await track(connectAs(broker, broker.hub))
    const creds = await broker.issueNode('will-1')
    const presence = upTopic('will-1', 'presence')
    const seen = await collect(hub, presence)
    const node = await connectAs(broker, creds, { will: { topic: presence, payload: '{"online":false,"at":1}', qos: 1, retain: true } })
    await node.publish(presence, '{"online":true,"at":0}', { qos: 1, retain: true })
    await seen.waitFor((p) => p === '{"online":true,"at":0}')
    node.abort()
    await seen.waitFor((p) => p === '{"online":false,"at":1}')
    t.same(seen.payloads, ['{"online":true,"at":0}', '{"online":false,"at":1}'])
  })

  t.test('a clean close publishes no Last Will', async (t) => {
    const hub = await track(connectAs(broker, broker.hub))
    const creds = await broker.issueNode('will-2')
    const presence = upTopic('will-2', 'presence')
    const seen: string[] = []
    await hub.subscribe(presence, (_t, p) => seen.push(p.toString()))
    const node = await connectAs(broker, creds, { will: { topic: presence, payload: 'dead', qos: 1, retain: false } })
    await node.close()
    t.equal(node.connected, false)
    // A marker from the hub itself, sent after the close: once it is back, anything the close
    // caused would have been delivered before it.
    await hub.publish(presence, 'marker', { qos: 1, retain: false })
    await new Promise((r) => setTimeout(r, 200))
    t.same(seen, ['marker'])
  })

  t.test('a QoS 1 message sent while a persistent subscriber was away is delivered when it returns', async (t) => {
    const hub = await track(connectAs(broker, broker.hub))
    const creds = await broker.issueNode('offline-1')
    const desired = downTopic('offline-1', 'desired')
    const first = await connectAs(broker, creds)
    await first.subscribe(desired, () => {}, { qos: 1 })
    await first.close()
    await hub.publish(desired, '{"revision":7}', { qos: 1, retain: false })
    const got = new Promise<string>((resolve) => {
      void track(connectAs(broker, creds, { subscriptions: [{ filter: desired, handler: (_t, p) => resolve(p.toString()), qos: 1 }] }))
    })
    t.equal(await got, '{"revision":7}')
  })

  t.test('after the broker restarts, the bus reconnects, subscribes again and sends what it queued', async (t) => {
    const creds = await broker.issueNode('restart-1')
    const hub = await track(connectAs(broker, broker.hub))
    const node = await track(connectAs(broker, creds))
    const hubSees = await collect(hub, ALL_UP_FILTER)
    const nodeSees = await collect(node, downTopic('restart-1', 'desired'))
    const transitions: boolean[] = []
    node.onConnectionChange((c) => transitions.push(c))
    const bothBack = Promise.all([hub, node].map((b) => new Promise<void>((resolve) => {
      const off = b.onConnectionChange((c) => c && (off(), resolve()))
    })))

    await broker.restart()
    // Published while the link is (or is about to be found) down: kept and sent again once the
    // session is back, so the broker acknowledges it. (Who receives it depends on who had
    // subscribed by then: the restarted broker kept no sessions.)
    const queued = node.publish(upTopic('restart-1', 'ack'), 'sent-while-away', { qos: 1, retain: false })
    await bothBack
    const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error('no PUBACK within 10 s')), 10_000).unref())
    await t.resolves(Promise.race([queued, deadline]), 'the broker acknowledged the message published during the outage')
    await hub.publish(downTopic('restart-1', 'desired'), 'after-restart', { qos: 1, retain: false })
    t.equal(await nodeSees.waitFor((p) => p === 'after-restart'), 'after-restart', 'the node subscribed again')
    await node.publish(upTopic('restart-1', 'ack'), 'up-after-restart', { qos: 1, retain: false })
    t.equal(await hubSees.waitFor((p) => p === 'up-after-restart'), 'up-after-restart', 'the hub subscribed again')
    t.same(transitions, [false, true])
  })

  t.test('closed after its broker died, the bus stops at once and what the broker never acknowledged fails', async (t) => {
    const lone = await makeBroker()
    const hub = await connectAs(lone, lone.hub)
    const lost = new Promise<void>((resolve) => {
      const off = hub.onConnectionChange((c) => !c && (off(), resolve()))
    })
    await lone.close()
    await lost
    const unacknowledged = hub.publish(downTopic('gone-1', 'desired'), 'never-acknowledged', { qos: 1, retain: false })
    unacknowledged.catch(() => {})
    const bound = new Promise((_, reject) => setTimeout(() => reject(new Error('close() still waiting after 10 s')), 10_000).unref())
    await t.resolves(Promise.race([hub.close(), bound]), 'close() returns')
    await t.rejects(unacknowledged, { code: 'BRAMBLE_BUS_CLOSED' }, 'the publish fails with the bus')
  })

  t.test('reports connection changes and refuses to publish once closed', async (t) => {
    const node = await connectAs(broker, await broker.issueNode('lifecycle-1'))
    const changes: boolean[] = []
    node.onConnectionChange((c) => changes.push(c))
    await node.close()
    t.same(changes, [false])
    await t.rejects(node.publish(upTopic('lifecycle-1', 'ack'), '{}', { qos: 1, retain: false }), { code: 'BRAMBLE_BUS_CLOSED' })
  })
}
