// --metrics-address: where the agent serves /metrics, on loopback unless told otherwise; none
// turns it off; anything else is refused with a sentence naming the flag.

import t from 'tap'
import { ConfigError } from '../../src/lib/config-errors.js'
import { resolveAgentFlags } from '../../src/lib/config.js'

const ENV = { HOME: '/home/pi' }

t.test('the agent serves /metrics on 127.0.0.1:10255 unless told otherwise', async (t) => {
  t.same(resolveAgentFlags({}, ENV).metricsAddress, { host: '127.0.0.1', port: 10255 })
})

t.test('an IPv4 or bracketed IPv6 address with a port is taken; none turns it off', async (t) => {
  t.same(resolveAgentFlags({ metricsAddress: '0.0.0.0:9100' }, ENV).metricsAddress, { host: '0.0.0.0', port: 9100 })
  t.same(resolveAgentFlags({ metricsAddress: '[::1]:0' }, ENV).metricsAddress, { host: '::1', port: 0 })
  t.equal(resolveAgentFlags({ metricsAddress: 'none' }, ENV).metricsAddress, undefined)
})

t.test('a bad address is refused naming --metrics-address', async (t) => {
  for (const bad of ['10255', 'localhost:10255', '127.0.0.1', '127.0.0.1:65536', '127.0.0.1:http', '::1:10255', '']) {
    const err = (() => {
      try {
        resolveAgentFlags({ metricsAddress: bad }, ENV)
      } catch (e) {
        return e
      }
    })()
    t.ok(err instanceof ConfigError, `"${bad}" refused`)
    t.match((err as Error).message, /^--metrics-address must be IP:PORT with a port 0-65535 .* or none, got "/, `"${bad}" explained`)
  }
})
