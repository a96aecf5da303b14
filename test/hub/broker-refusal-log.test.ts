import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import mqtt from 'mqtt'
import { createLogger } from '../../src/lib/logger.js'
import { startEmbeddedBroker } from '../../src/hub/broker.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { testTls } from '../helpers/tls.js'

t.test('the embedded broker logs each refusal once, naming the node and the topic', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-refusal-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const lines: any[] = []
  const destination = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l))
      done()
    },
  })
  const credentials = await NodeCredentials.open(dir)
  const tls = testTls()
  const broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: createLogger({ level: 'warn', destination }) })
  t.teardown(() => broker.close())
  const { username, password } = await credentials.issue('pi-1')
  const client = await mqtt.connectAsync(broker.url, { username, password, clientId: 'pi-1', ca: [tls.ca], reconnectPeriod: 0, protocolVersion: 4 })
  for (let i = 0; i < 3; i++) await client.subscribeAsync('#', { qos: 1 }).catch(() => {}) // refused: SUBACK 0x80
  await client.endAsync()
  await mqtt.connectAsync(broker.url, { username, password: 'wrong', clientId: 'pi-1', ca: [tls.ca], reconnectPeriod: 0, protocolVersion: 4 }).then(
    (c) => c.endAsync(),
    () => {},
  )

  const subscribes = lines.filter((l) => l.action === 'subscribe')
  t.equal(subscribes.length, 1, 'three identical refusals, one line')
  t.match(subscribes[0], { who: 'node pi-1', topic: '#', component: 'mqtt-broker' })
  t.equal(lines.filter((l) => l.action === 'connect' && l.username === 'pi-1').length, 1, 'the wrong password is logged too')
  t.notOk(JSON.stringify(lines).includes(password), 'no password in the log')
})
