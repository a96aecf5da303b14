// RandomHex: event-name suffixes from a refilled pool of random bytes.

import t from 'tap'
import { RandomHex } from '../../src/lib/random-hex.js'

t.test('gives hex strings of twice the byte count, none repeated across pool refills', async (t) => {
  const hex = new RandomHex(8)
  const seen = new Set<string>()
  // 4096 / 8 = 512 per pool: this crosses several refills.
  for (let i = 0; i < 2000; i++) {
    const s = hex.next()
    t.match(s, /^[0-9a-f]{16}$/)
    seen.add(s)
  }
  t.equal(seen.size, 2000, 'no repeats')
})

t.test('a byte count outside 1..4096 is refused, naming it', async (t) => {
  t.throws(() => new RandomHex(0), /bytes must be a whole number from 1 to 4096, got 0/)
  t.throws(() => new RandomHex(4097), /got 4097/)
  t.throws(() => new RandomHex(1.5), /got 1.5/)
})

t.test('a byte count that does not divide the pool still gives full strings', async (t) => {
  const hex = new RandomHex(3000)
  for (let i = 0; i < 3; i++) t.match(hex.next(), /^[0-9a-f]{6000}$/)
})
