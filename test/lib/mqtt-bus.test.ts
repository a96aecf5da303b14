import t from 'tap'
import { backoffDelayMs } from '../../src/lib/mqtt-bus.js'
import { topicMatches } from '../../src/lib/bus.js'
import { busContract, embeddedBroker, embeddedBrokerInProcess, mosquittoBroker } from '../contract/bus.js'
import { mosquittoAvailable } from '../helpers/mosquitto.js'

t.test('reconnect back-off grows exponentially, stays within its cap, and is jittered', async (t) => {
  t.equal(backoffDelayMs(0, 100, 5000, () => 0), 100)
  t.equal(backoffDelayMs(3, 100, 5000, () => 1), 800)
  t.equal(backoffDelayMs(50, 100, 5000, () => 1), 5000)
  t.equal(backoffDelayMs(50, 100, 5000, () => 0), 100)
  t.not(backoffDelayMs(6, 100, 5000, () => 0.3), backoffDelayMs(6, 100, 5000, () => 0.7))
})

t.test('topic filters match as MQTT says', async (t) => {
  t.ok(topicMatches('a/+/c', 'a/b/c'))
  t.ok(topicMatches('a/#', 'a'))
  t.ok(topicMatches('a/#', 'a/b/c'))
  t.notOk(topicMatches('a/+', 'a/b/c'))
  t.notOk(topicMatches('#', '$SYS/x'))
  t.notOk(topicMatches('a/b', 'a/b/c'))
})

t.test('the bus contract against the embedded broker', async (t) => busContract(t, embeddedBroker))

t.test('the bus contract against the embedded broker, the hub connected in memory as it is to its own broker', async (t) => busContract(t, embeddedBrokerInProcess))

const noMosquitto = (await mosquittoAvailable()) ? false : 'mosquitto is not installed (apt-get install mosquitto)'
t.test('the bus contract against Mosquitto', { skip: noMosquitto }, async (t) => busContract(t, mosquittoBroker))
