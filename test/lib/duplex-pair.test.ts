// The in-memory stream pair the hub's own MQTT client uses to reach its embedded broker: bytes
// arrive in order both ways, never inside the writer's call, a slow reader holds the writer back,
// and ending or destroying one end reaches the other.

import t from 'tap'
import { once } from 'node:events'
import { duplexPair } from '../../src/lib/duplex-pair.js'

t.test('what one end writes the other reads, in order, both ways', async (t) => {
  const [a, b] = duplexPair()
  const atB: Buffer[] = []
  const atA: Buffer[] = []
  b.on('data', (c: Buffer) => atB.push(c))
  a.on('data', (c: Buffer) => atA.push(c))
  for (let i = 0; i < 100; i++) a.write(`a${i};`)
  b.write('from b')
  await new Promise((r) => setTimeout(r, 20))
  t.equal(Buffer.concat(atB).toString(), Array.from({ length: 100 }, (_, i) => `a${i};`).join(''))
  t.equal(Buffer.concat(atA).toString(), 'from b')
  t.ok(atB.length < 100, `writes made while a hand-over was pending went together (${atB.length} chunks for 100 writes)`)
})

t.test('a write is never read inside the writer\'s own call', async (t) => {
  const [a, b] = duplexPair()
  let writing = false
  let readWhileWriting = false
  b.on('data', () => {
    if (writing) readWhileWriting = true
  })
  writing = true
  a.write('x')
  writing = false
  await once(b, 'data')
  t.notOk(readWhileWriting)
})

t.test('a reader that does not read holds the writer back; reading lets it go on', async (t) => {
  const [a, b] = duplexPair()
  const chunk = Buffer.alloc(16 * 1024)
  let accepted = 0
  // b is never read: once its buffer passes the high-water mark the writer's callbacks stop.
  for (let i = 0; i < 64; i++) a.write(chunk, () => accepted++)
  await new Promise((r) => setTimeout(r, 50))
  t.ok(accepted < 64, `the writer was held back (${accepted} of 64 writes accepted)`)
  t.ok(b.readableLength <= b.readableHighWaterMark + 64 * chunk.length, 'the reader buffered what was handed over')
  let read = 0
  b.on('data', (c: Buffer) => (read += c.length))
  await new Promise((r) => setTimeout(r, 50))
  t.equal(accepted, 64, 'every write accepted once the reader read')
  t.equal(read, 64 * chunk.length, 'every byte read')
})

t.test('ending one end ends the other after what was written; destroying one closes the other', async (t) => {
  const [a, b] = duplexPair()
  const got: string[] = []
  b.on('data', (c: Buffer) => got.push(c.toString()))
  a.end('last words')
  await once(b, 'end')
  t.same(got, ['last words'])

  const [c, d] = duplexPair()
  d.on('error', () => {})
  c.destroy()
  await once(d, 'close')
  t.ok(d.destroyed, 'the peer is destroyed too')
})
