// The ordering and window rules of relayed pod streams (exec, port-forward).

import t from 'tap'
import { ACK_EVERY_BYTES, AckCounter, InOrder, SendWindow, WINDOW_BYTES } from '../../src/lib/stream-window.js'

t.test('InOrder hands messages on in sequence, each once', async (t) => {
  const got: string[] = []
  const inbox = new InOrder<string>((m) => got.push(m))
  t.ok(inbox.push(0, 'a'))
  t.ok(inbox.push(2, 'c'), 'one ahead of a missing one waits')
  t.same(got, ['a'])
  t.ok(inbox.push(1, 'b'))
  t.same(got, ['a', 'b', 'c'], 'the gap filled releases what waited')
  t.ok(inbox.push(1, 'b again'), 'a duplicate (QoS 1 redelivery) is dropped')
  t.ok(inbox.push(2, 'c again'))
  t.same(got, ['a', 'b', 'c'])
})

t.test('InOrder gives up when too many wait behind a lost message', async (t) => {
  const inbox = new InOrder<number>(() => {})
  let ok = true
  for (let seq = 1; seq <= 300 && ok; seq++) ok = inbox.push(seq, seq)
  t.notOk(ok, 'the stream is reported broken instead of buffering without bound')
})

t.test('SendWindow closes after a window of unacknowledged bytes and opens on acknowledgement', async (t) => {
  const window = new SendWindow(100)
  t.ok(window.open)
  window.sending(60)
  t.ok(window.open)
  window.sending(40)
  t.notOk(window.open, 'a full window is closed')
  let opened = false
  const waiting = window.whenOpen().then(() => (opened = true))
  window.acknowledged(500)
  await Promise.resolve()
  t.notOk(opened, 'an acknowledgement of more than was sent is ignored')
  window.acknowledged(30)
  await waiting
  t.ok(opened, 'acknowledged bytes reopen it')
  window.acknowledged(20)
  t.ok(window.open, 'an older (smaller) acknowledgement changes nothing')
  t.equal(WINDOW_BYTES, 256 * 1024)
})

t.test('AckCounter acknowledges a batch, or at once when the sink has caught up, never the same total twice', async (t) => {
  const acks = new AckCounter()
  t.equal(acks.passedOn(1000, false), undefined, 'a little, with the sink busy: wait')
  t.equal(acks.passedOn(ACK_EVERY_BYTES, false), 1000 + ACK_EVERY_BYTES, 'a batch is acknowledged')
  t.equal(acks.passedOn(10, true), 1010 + ACK_EVERY_BYTES, 'an idle sink acknowledges what it has')
  t.equal(acks.passedOn(0, true), undefined, 'nothing new: nothing to say')
})
