// --image-gc-high-threshold and --image-gc-low-threshold: the kubelet's defaults (85% and 80%),
// whole percents, low below high; a bad value is refused with a sentence naming the flag.

import t from 'tap'
import { ConfigError } from '../../src/lib/config-errors.js'
import { resolveAgentFlags } from '../../src/lib/config.js'

const ENV = { HOME: '/home/pi' }

function refusal(raw: Record<string, unknown>): ConfigError {
  try {
    resolveAgentFlags(raw, ENV)
  } catch (e) {
    if (e instanceof ConfigError) return e
    throw e
  }
  throw new Error('expected a ConfigError')
}

t.test('85% and 80% unless told otherwise', async (t) => {
  const flags = resolveAgentFlags({}, ENV)
  t.same([flags.imageGcHighPercent, flags.imageGcLowPercent], [85, 80])
  const set = resolveAgentFlags({ imageGcHighThreshold: '70', imageGcLowThreshold: '50' }, ENV)
  t.same([set.imageGcHighPercent, set.imageGcLowPercent], [70, 50])
})

t.test('out of range or not a whole percent is refused naming the flag', async (t) => {
  t.match(refusal({ imageGcHighThreshold: '101' }).message, /^--image-gc-high-threshold must be a whole percent from 1 to 100, got "101"/)
  t.match(refusal({ imageGcLowThreshold: '7.5' }).message, /^--image-gc-low-threshold must be a whole percent from 0 to 99, got "7.5"/)
})

t.test('a low threshold not below the high one is refused', async (t) => {
  const err = refusal({ imageGcHighThreshold: '60', imageGcLowThreshold: '60' })
  t.equal(err.flag, '--image-gc-low-threshold')
  t.match(err.message, /must be below --image-gc-high-threshold \(60\), got 60/)
})
