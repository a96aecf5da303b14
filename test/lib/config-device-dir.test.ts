// --device-dir: where the agent looks for serial, I2C, video and GPIO devices to advertise; /dev
// unless told otherwise; a relative path is refused with a sentence naming the flag.

import t from 'tap'
import { ConfigError } from '../../src/lib/config-errors.js'
import { resolveAgentFlags } from '../../src/lib/config.js'

const ENV = { HOME: '/home/pi' }

t.test('the agent scans /dev unless told otherwise', async (t) => {
  t.equal(resolveAgentFlags({}, ENV).deviceDir, '/dev')
  t.equal(resolveAgentFlags({ deviceDir: '/srv/devices/' }, ENV).deviceDir, '/srv/devices')
})

t.test('a relative directory is refused naming --device-dir', async (t) => {
  const err = (() => {
    try {
      resolveAgentFlags({ deviceDir: 'dev' }, ENV)
    } catch (e) {
      return e
    }
  })()
  t.ok(err instanceof ConfigError)
  t.match((err as Error).message, /--device-dir must be an absolute directory path, got "dev"/)
})
