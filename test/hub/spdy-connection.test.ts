// The SPDY/3.1 pieces kubectl's tunneled port-forward needs: the header dictionary (as the spec
// defines it: Go's spdy and Chromium use the same 1423 bytes), header blocks through zlib with that
// dictionary, and frame layouts.

import t from 'tap'
import { constants, deflateSync, inflateSync } from 'node:zlib'
import { controlFrame, dataFrame, decodeHeaderBlock, encodeHeaderBlock, SPDY_DICTIONARY } from '../../src/hub/spdy-connection.js'

t.test('the SPDY/3 dictionary is the one of the spec', async (t) => {
  t.equal(SPDY_DICTIONARY.length, 1423)
  t.same([...SPDY_DICTIONARY.subarray(0, 11)], [0, 0, 0, 7, 0x6f, 0x70, 0x74, 0x69, 0x6f, 0x6e, 0x73], 'starts with the length-prefixed "options"')
  t.equal(SPDY_DICTIONARY.subarray(-6).toString('latin1'), 'enq=0.', 'ends with the text tail')
})

t.test('header blocks round-trip through zlib with the dictionary, names read lower-case', async (t) => {
  const block = encodeHeaderBlock({ streamtype: 'data', port: '8080', requestid: '0' })
  const compressed = deflateSync(block, { dictionary: SPDY_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH })
  const headers = decodeHeaderBlock(inflateSync(compressed, { dictionary: SPDY_DICTIONARY, finishFlush: constants.Z_SYNC_FLUSH }))
  t.same(headers, { streamtype: 'data', port: '8080', requestid: '0' })
  const multi = Buffer.concat([Buffer.from([0, 0, 0, 1, 0, 0, 0, 4]), Buffer.from('Port'), Buffer.from([0, 0, 0, 9]), Buffer.from('8080\u00009090')])
  t.same(decodeHeaderBlock(multi), { port: '8080' }, 'of NUL-joined values the first serves')
})

t.test('control and data frames are laid out as SPDY/3 says', async (t) => {
  const reply = controlFrame(2, 0, Buffer.from([0, 0, 0, 1]))
  t.same([...reply.subarray(0, 8)], [0x80, 0x03, 0x00, 0x02, 0x00, 0x00, 0x00, 0x04], 'control bit, version 3, type SYN_REPLY, flags, 24-bit length')
  const fin = dataFrame(5, 1, Buffer.from('hi'))
  t.same([...fin], [0, 0, 0, 5, 0x01, 0, 0, 2, 0x68, 0x69], 'stream id, FIN, length, payload')
})
