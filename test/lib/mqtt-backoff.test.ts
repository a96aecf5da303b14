// The bounds of the MQTT reconnect back-off, for every attempt and every draw of the jitter: a
// restarted broker sees its agents back within a few seconds, spread out rather than in lock step.

import fc from 'fast-check'
import t from 'tap'
import { backoffDelayMs, DEFAULT_RECONNECT } from '../../src/lib/mqtt-bus.js'

t.test('the default back-off is capped at a few seconds', async (t) => {
  t.ok(DEFAULT_RECONNECT.maxMs <= 5_000, `at most ${DEFAULT_RECONNECT.maxMs} ms between attempts`)
  t.ok(DEFAULT_RECONNECT.minMs > 0, 'never a busy loop')
})

t.test('every delay lies between the minimum and min(cap, minimum × 2^attempt)', async (t) => {
  fc.assert(
    fc.property(fc.nat(10_000), fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }), fc.integer({ min: 1, max: 10_000 }), fc.integer({ min: 0, max: 60_000 }), (attempt, draw, minMs, extra) => {
      const maxMs = minMs + extra
      const delay = backoffDelayMs(attempt, minMs, maxMs, () => draw)
      const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
      return Number.isInteger(delay) && delay >= minMs && delay <= ceiling && delay <= maxMs
    }),
    { numRuns: 2_000 },
  )
  t.pass('2,000 generated cases within bounds')
})

t.test('with the defaults, a thousand agents reconnecting late in their back-off spread over seconds', async (t) => {
  const delays = Array.from({ length: 1_000 }, () => backoffDelayMs(12, DEFAULT_RECONNECT.minMs, DEFAULT_RECONNECT.maxMs))
  t.ok(delays.every((d) => d >= DEFAULT_RECONNECT.minMs && d <= DEFAULT_RECONNECT.maxMs), 'all within the bounds')
  const spread = Math.max(...delays) - Math.min(...delays)
  t.ok(spread > (DEFAULT_RECONNECT.maxMs - DEFAULT_RECONNECT.minMs) / 2, `jittered: ${spread} ms between the first and the last`)
  t.ok(new Set(delays).size > 100, 'not in lock step')
})

t.test('the first attempts come quickly: a short broker restart costs well under a second to notice', async (t) => {
  t.equal(backoffDelayMs(0, DEFAULT_RECONNECT.minMs, DEFAULT_RECONNECT.maxMs, () => 0.999), DEFAULT_RECONNECT.minMs)
  t.ok(backoffDelayMs(1, DEFAULT_RECONNECT.minMs, DEFAULT_RECONNECT.maxMs, () => 0.999) <= 2 * DEFAULT_RECONNECT.minMs)
})
