// A node plays the attacker with its own, valid credentials, against both brokers. The tests
// assert outcomes: what the victims and the hub receive, never how a broker says no (one drops,
// the other disconnects).

import t, { type Test } from 'tap'
import mqtt, { type MqttClient } from 'mqtt'
import { downTopic, upTopic, clusterTopic, ALL_UP_FILTER, nodeDownFilter } from '../../src/api/protocol.js'
import type { MqttCredentials } from '../../src/hub/node-credentials.js'
import { collect, connectAs, embeddedBroker, mosquittoBroker, type BrokerFixture, type MakeBroker } from '../contract/bus.js'
import { mosquittoAvailable } from '../helpers/mosquitto.js'

/** Long enough for a broker to deliver what it was going to; a deadline, not a measurement. */
const SETTLE_MS = 400
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS))

interface RawClient {
  client: MqttClient
  received: Array<{ topic: string; payload: string }>
  end(): Promise<void>
}

/** A plain MQTT.js client, as an attacker would use: records everything that reaches it. */
async function rawConnect(
  broker: BrokerFixture,
  creds: MqttCredentials,
  extra: { clientId?: string; clean?: boolean; will?: { topic: string; payload: Buffer; qos: 0 | 1; retain: boolean } } = {},
): Promise<RawClient> {
  const client = await mqtt.connectAsync(broker.url, {
    username: creds.username,
    password: creds.password,
    clientId: extra.clientId ?? creds.username,
    clean: extra.clean ?? true,
    ca: [broker.ca],
    rejectUnauthorized: true,
    protocolVersion: 4,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ...(extra.will ? { will: extra.will } : {}),
  })
  const received: RawClient['received'] = []
  client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString() }))
  client.on('error', () => {})
  return { client, received, end: () => client.endAsync(true).catch(() => {}) }
}

function connectFails(broker: BrokerFixture, creds: MqttCredentials, clientId = creds.username): Promise<boolean> {
  return rawConnect(broker, creds, { clientId }).then(
    async (c) => (await c.end(), false),
    () => true,
  )
}

function securitySuite(t: Test, makeBroker: MakeBroker): void {
  let broker: BrokerFixture
  t.before(async () => {
    broker = await makeBroker()
  })
  t.teardown(() => broker?.close())

  t.test('a node cannot publish to another node\'s topics, to down/ or to the cluster topics', async (t) => {
    const attackerCreds = await broker.issueNode('pub-attacker')
    const victimCreds = await broker.issueNode('pub-victim')
    const hub = await connectAs(broker, broker.hub)
    const victim = await connectAs(broker, victimCreds)
    t.teardown(() => Promise.all([hub.close(), victim.close()]))
    const hubSees = await collect(hub, ALL_UP_FILTER)
    const hubSeesCluster = await collect(hub, 'bramble/v1/cluster/#')
    const victimSees = await collect(victim, nodeDownFilter('pub-victim'))

    const forbidden = [
      upTopic('pub-victim', 'pod-status'),
      downTopic('pub-victim', 'desired'),
      downTopic('pub-attacker', 'desired'),
      clusterTopic('mesh'),
      'bramble/v1/nodes/pub-victim/up',
      'elsewhere/entirely',
    ]
    for (const topic of forbidden) {
      // A fresh connection each time: one broker drops the connection after a refusal.
      const attacker = await rawConnect(broker, attackerCreds)
      await attacker.client.publishAsync(upTopic('pub-attacker', 'heartbeat'), 'control', { qos: 1 })
      await attacker.client.publishAsync(topic, 'forged', { qos: 0 }).catch(() => {})
      await settle()
      await attacker.end()
    }
    await hub.publish(downTopic('pub-victim', 'desired'), 'marker', { qos: 1, retain: false })
    await victim.publish(upTopic('pub-victim', 'heartbeat'), 'marker', { qos: 1, retain: false })
    await victimSees.waitFor((p) => p === 'marker')
    await hubSees.waitFor((p) => p === 'marker')
    await settle()

    t.same(victimSees.payloads, ['marker'], 'the victim received only what the hub sent')
    t.notOk(hubSees.payloads.includes('forged'), 'the hub received no forged status')
    t.equal(hubSees.payloads.filter((p) => p === 'control').length, forbidden.length, 'the attacker\'s own topic still worked')
    t.same(hubSeesCluster.payloads, [], 'nothing reached the cluster topics')
  })

  t.test('a node cannot subscribe to # or to another node\'s desired state', async (t) => {
    const attackerCreds = await broker.issueNode('sub-attacker')
    await broker.issueNode('sub-victim')
    const hub = await connectAs(broker, broker.hub)
    t.teardown(() => hub.close())
    const attacker = await rawConnect(broker, attackerCreds)
    t.teardown(() => attacker.end())
    for (const filter of [
      '#',
      'bramble/#',
      'bramble/v1/#',
      'bramble/v1/nodes/+/down/desired',
      'bramble/v1/nodes/+/up/+',
      'bramble/v1/nodes/sub-victim/down/desired',
      'bramble/v1/nodes/sub-victim/#',
      '+/v1/nodes/sub-victim/down/desired',
      'bramble/v1/nodes/sub-attacker/#',
      '$SYS/#',
    ]) {
      await attacker.client.subscribeAsync(filter, { qos: 1 }).catch(() => {})
    }
    await attacker.client.subscribeAsync(nodeDownFilter('sub-attacker'), { qos: 1 })

    await hub.publish(downTopic('sub-victim', 'desired'), 'secret', { qos: 1, retain: false })
    await hub.publish(upTopic('sub-victim', 'pod-status'), 'secret', { qos: 1, retain: false })
    await hub.publish('elsewhere/entirely', 'secret', { qos: 1, retain: false })
    await hub.publish(downTopic('sub-attacker', 'desired'), 'own', { qos: 1, retain: false })
    await settle()

    t.same(attacker.received, [{ topic: downTopic('sub-attacker', 'desired'), payload: 'own' }], 'only its own desired state arrived')
  })

  t.test('a node may read the cluster-wide topics', async (t) => {
    const nodeCreds = await broker.issueNode('cluster-reader')
    const hub = await connectAs(broker, broker.hub)
    t.teardown(() => hub.close())
    const node = await rawConnect(broker, nodeCreds)
    t.teardown(() => node.end())
    await node.client.subscribeAsync('bramble/v1/cluster/#', { qos: 1 })
    await hub.publish(clusterTopic('mesh'), 'peers', { qos: 1, retain: false })
    await settle()
    t.same(node.received, [{ topic: clusterTopic('mesh'), payload: 'peers' }])
  })

  t.test('a node cannot take over another node\'s session by reusing its client id', async (t) => {
    const attackerCreds = await broker.issueNode('id-attacker')
    const victimCreds = await broker.issueNode('id-victim')
    const victim = await rawConnect(broker, victimCreds, { clean: false })
    await victim.client.subscribeAsync(downTopic('id-victim', 'desired'), { qos: 1 })
    await victim.end()
    const hub = await connectAs(broker, broker.hub)
    t.teardown(() => hub.close())
    await hub.publish(downTopic('id-victim', 'desired'), 'queued-secret', { qos: 1, retain: false })

    const attacker = await rawConnect(broker, attackerCreds, { clientId: 'id-victim', clean: false }).catch(() => undefined)
    await settle()
    t.same(attacker?.received ?? [], [], 'nothing queued for the victim reached the attacker')
    await attacker?.end()
  })

  t.test('a node cannot leave a Last Will on another node\'s topic', async (t) => {
    const attackerCreds = await broker.issueNode('will-attacker')
    await broker.issueNode('will-victim')
    const hub = await connectAs(broker, broker.hub)
    t.teardown(() => hub.close())
    const hubSees = await collect(hub, upTopic('will-victim', 'presence'))
    const will = { topic: upTopic('will-victim', 'presence'), payload: Buffer.from('{"online":false,"at":0}'), qos: 1 as const, retain: true }
    const attacker = await rawConnect(broker, attackerCreds, { will }).catch(() => undefined)
    attacker?.client.stream.destroy()
    await settle()
    t.same(hubSees.payloads, [], 'no forged presence')
  })

  t.test('wrong passwords, unknown users and revoked nodes cannot connect', async (t) => {
    const creds = await broker.issueNode('revoke-me')
    t.equal(await connectFails(broker, creds), false, 'the right credentials connect')
    t.equal(await connectFails(broker, { username: 'revoke-me', password: 'x' + creds.password.slice(1) }), true, 'wrong password')
    t.equal(await connectFails(broker, { username: 'revoke-me', password: '' }), true, 'empty password')
    t.equal(await connectFails(broker, { username: 'nobody', password: creds.password }), true, 'unknown user')
    t.equal(await connectFails(broker, { username: 'Revoke-Me', password: creds.password }), true, 'not a node name')
    t.equal(await connectFails(broker, { ...broker.hub, password: creds.password }), true, 'hub user with a node password')

    const live = await rawConnect(broker, creds)
    await live.client.subscribeAsync(nodeDownFilter('revoke-me'), { qos: 1 })
    await broker.revokeNode('revoke-me')
    t.equal(await connectFails(broker, creds), true, 'a revoked node cannot connect')
    const hub = await connectAs(broker, broker.hub)
    t.teardown(() => hub.close())
    await hub.publish(downTopic('revoke-me', 'desired'), 'after-revocation', { qos: 1, retain: false })
    await settle()
    t.same(live.received, [], 'a node connected when it was revoked receives nothing afterwards')
    await live.end()
  })
}

t.test('embedded broker security', async (t) => securitySuite(t, embeddedBroker))

const noMosquitto = (await mosquittoAvailable()) ? false : 'mosquitto is not installed (apt-get install mosquitto)'
t.test('Mosquitto security with the generated password and ACL files', { skip: noMosquitto }, async (t) => securitySuite(t, mosquittoBroker))
