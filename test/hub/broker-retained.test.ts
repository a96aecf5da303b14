// Retained messages in the embedded broker (broker-retained.ts): the index answers MQTT topic
// filters as the protocol defines them, and through the real broker a new subscription gets the
// retained messages its filter selects, and only those.

import t from 'tap'
import { clusterTopic, downTopic, nodeDownFilter, upTopic, ALL_UP_FILTER } from '../../src/api/protocol.js'
import { RetainedIndex, type RetainedPacket } from '../../src/hub/broker-retained.js'
import { collect, connectAs, embeddedBroker } from '../contract/bus.js'

const packet = (topic: string, payload = topic): RetainedPacket => ({ topic, payload: Buffer.from(payload), retain: true, qos: 1 })
const topicsOf = (index: RetainedIndex, filter: string) => [...index.match(filter)].map((p) => p.topic).sort()

t.test('the index selects what an MQTT filter matches', async (t) => {
  const index = new RetainedIndex()
  for (const topic of ['a', 'a/b', 'a/b/c', 'a/x/c', 'a/b/c/d', 'b/b', '$SYS/x', 'a//c']) index.store(packet(topic))
  t.same(topicsOf(index, 'a/b'), ['a/b'], 'a plain topic: itself')
  t.same(topicsOf(index, 'a/nothing'), [], 'a topic with nothing retained: nothing')
  t.same(topicsOf(index, 'a/+/c'), ['a//c', 'a/b/c', 'a/x/c'], '+ stands for one level, an empty one too')
  t.same(topicsOf(index, 'a/#'), ['a', 'a//c', 'a/b', 'a/b/c', 'a/b/c/d', 'a/x/c'], '# stands for the level above and everything under it')
  t.same(topicsOf(index, '+/b'), ['a/b', 'b/b'], 'a leading + reaches every first level')
  t.same(topicsOf(index, '#'), ['a', 'a//c', 'a/b', 'a/b/c', 'a/b/c/d', 'a/x/c', 'b/b'], 'a leading wildcard skips $ topics (MQTT-4.7.2-1)')
  t.same(topicsOf(index, '$SYS/#'), ['$SYS/x'], 'a filter naming $SYS reaches it')
})

t.test('a new retained message replaces the old one, and an empty one clears it', async (t) => {
  const index = new RetainedIndex()
  index.store(packet('n/1/up/presence', 'online'))
  index.store(packet('n/1/up/presence', 'offline'))
  t.same([...index.match('n/+/up/presence')].map((p) => p.payload.toString()), ['offline'], 'the latest is kept, once')
  index.store(packet('n/1/up/presence', ''))
  t.same(topicsOf(index, '#'), [], 'cleared: nothing retained is left')
  index.store(packet('n/1/up/presence', 'back'))
  t.same(topicsOf(index, 'n/#'), ['n/1/up/presence'], 'the topic can be retained again after a clear')
})

t.test('the index keeps its own copy of a packet', async (t) => {
  const index = new RetainedIndex()
  const original = packet('a/b', 'one')
  index.store(original)
  original.topic = 'changed'
  t.same(topicsOf(index, 'a/b'), ['a/b'], 'changing the stored-from object changes nothing')
})

t.test('through the embedded broker, a subscription gets the retained messages its filter selects', async (t) => {
  const broker = await embeddedBroker()
  t.teardown(() => broker.close())
  const hubBus = await connectAs(broker, broker.hub)
  t.teardown(() => hubBus.close())
  const nodes = ['ret-a', 'ret-b', 'ret-c']
  const creds = await Promise.all(nodes.map((n) => broker.issueNode(n)))
  for (const [i, node] of nodes.entries()) {
    const bus = await connectAs(broker, creds[i]!)
    await bus.publish(upTopic(node, 'presence'), JSON.stringify({ online: true, node }), { qos: 1, retain: true })
    await bus.close()
  }
  await hubBus.publish(downTopic('ret-a', 'desired'), 'for ret-a', { qos: 1, retain: true })
  await hubBus.publish(downTopic('ret-b', 'desired'), 'for ret-b', { qos: 1, retain: true })
  await hubBus.publish(clusterTopic('mesh'), 'mesh v1', { qos: 1, retain: true })
  await hubBus.publish(clusterTopic('mesh'), 'mesh v2', { qos: 1, retain: true })
  await hubBus.publish(clusterTopic('services'), 'services', { qos: 1, retain: true })
  await hubBus.publish(clusterTopic('services'), '', { qos: 1, retain: true }) // cleared

  const hubSees = await collect(await connectAs(broker, broker.hub).then((b) => (t.teardown(() => b.close()), b)), ALL_UP_FILTER)
  for (const node of nodes) await hubSees.waitFor((p) => p.includes(`"node":"${node}"`))
  t.equal(hubSees.payloads.length, 3, "the hub's filter over every node's up topics gets each node's presence once")

  const nodeA = await connectAs(broker, creds[0]!)
  t.teardown(() => nodeA.close())
  const ownDown = await collect(nodeA, nodeDownFilter('ret-a'))
  const cluster = await collect(nodeA, 'bramble/v1/cluster/#')
  await ownDown.waitFor((p) => p === 'for ret-a')
  await cluster.waitFor((p) => p === 'mesh v2')
  // A later message through the same subscriptions marks the point by which retained ones have arrived.
  await hubBus.publish(downTopic('ret-a', 'desired'), 'marker', { qos: 1, retain: false })
  await hubBus.publish(clusterTopic('mesh'), 'marker', { qos: 1, retain: false })
  await ownDown.waitFor((p) => p === 'marker')
  await cluster.waitFor((p) => p === 'marker')
  t.same(ownDown.payloads, ['for ret-a', 'marker'], "a node's own down filter gets its retained desired state, not another node's")
  t.same(cluster.payloads, ['mesh v2', 'marker'], 'the cluster filter gets the latest mesh and no cleared services message')
})
