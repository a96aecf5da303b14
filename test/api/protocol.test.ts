import t from 'tap'
import {
  ALL_UP_FILTER,
  MAX_PAYLOAD_BYTES,
  clusterTopic,
  downTopic,
  isValidNodeName,
  parseTopic,
  upTopic,
} from '../../src/api/protocol.js'
import { decodeDown, decodeUp, isReplyTopicFor } from '../../src/api/protocol-decode.js'

const json = (v: unknown) => Buffer.from(JSON.stringify(v))

t.test('node names are DNS-1123 labels, which keeps MQTT wildcards out of topics', async (t) => {
  for (const ok of ['pi-1', 'a', '0node', 'x'.repeat(63)]) t.ok(isValidNodeName(ok), ok)
  for (const bad of ['', 'Pi', 'a/b', '+', '#', 'a+b', 'node#', '-a', 'a-', 'a.b', 'a_b', 'x'.repeat(64)]) t.notOk(isValidNodeName(bad), bad)
})

t.test('topic builders place every node topic under bramble/v1/nodes/<node>/', async (t) => {
  t.equal(downTopic('pi-1', 'desired'), 'bramble/v1/nodes/pi-1/down/desired')
  t.equal(upTopic('pi-1', 'rpc-reply'), 'bramble/v1/nodes/pi-1/up/rpc-reply')
  t.equal(clusterTopic('mesh'), 'bramble/v1/cluster/mesh')
  t.equal(ALL_UP_FILTER, 'bramble/v1/nodes/+/up/+')
  t.throws(() => downTopic('#', 'desired'), TypeError)
  t.throws(() => upTopic('a/b', 'ack'), TypeError)
})

t.test('parseTopic reads back exactly the protocol topics and nothing else', async (t) => {
  t.same(parseTopic('bramble/v1/nodes/pi-1/up/heartbeat'), { node: 'pi-1', direction: 'up', name: 'heartbeat' })
  t.same(parseTopic('bramble/v1/nodes/pi-1/down/desired'), { node: 'pi-1', direction: 'down', name: 'desired' })
  for (const bad of [
    'bramble/v2/nodes/pi-1/up/heartbeat',
    'bramble/v1/nodes/pi-1/up/unknown',
    'bramble/v1/nodes/pi-1/down/heartbeat',
    'bramble/v1/nodes/Pi/up/ack',
    'bramble/v1/nodes/pi-1/up/ack/extra',
    'bramble/v1/nodes/+/up/ack',
    'bramble/v1/cluster/mesh',
    '',
  ])
    t.equal(parseTopic(bad), undefined, bad)
})

t.test('decodeUp accepts well-formed messages of every kind', async (t) => {
  const good: Record<string, unknown> = {
    sync: { revision: 0 },
    ack: { revision: 42 },
    heartbeat: { seq: 1, uptimeMs: 1000, cpu: 0.25, memory: 123456, temperature: 51.5 },
    'node-status': { status: { conditions: [] } },
    'pod-status': { namespace: 'default', name: 'web', uid: 'u-1', status: { phase: 'Running' } },
    events: { events: [{ reason: 'Pulled', message: 'ok' }] },
    'rpc-reply': { id: 'r1', ok: true, chunk: 'line\n', done: false },
    presence: { online: true, at: 1700000000000 },
  }
  for (const [name, message] of [...Object.entries(good), ['presence', { online: false, at: 1700000000000, agentStopped: true }] as const]) {
    const r = decodeUp(name, json(message))
    t.ok(r.ok, name)
    if (r.ok) t.same(r.message, message)
  }
})

t.test('decodeUp refuses garbage, truncated JSON, wrong types and missing fields, saying why', async (t) => {
  const cases: Array<[string, Buffer, RegExp]> = [
    ['ack', Buffer.from([0xff, 0x00, 0x13]), /not valid JSON/],
    ['ack', Buffer.from('{"revision": 4'), /not valid JSON/],
    ['ack', Buffer.from(''), /not valid JSON/],
    ['ack', json({ revision: '4' }), /revision: expected a non-negative integer, got a string/],
    ['ack', json({ revision: -1 }), /revision: expected a non-negative integer/],
    ['ack', json({ revision: 1.5 }), /revision/],
    ['ack', json([1]), /expected an object, got an array/],
    ['ack', json(null), /expected an object, got null/],
    ['sync', json({}), /revision: required field is missing/],
    ['heartbeat', json({ seq: 1, uptimeMs: 1, cpu: 'high', memory: 1 }), /cpu: expected a finite number/],
    ['pod-status', json({ namespace: 'd', name: 'n', uid: 'u', status: 'Running' }), /status: expected an object/],
    ['events', json({ events: [{}, 3] }), /events\[1\]: expected an object/],
    ['rpc-reply', json({ id: 'x', ok: 'yes' }), /ok: expected a boolean/],
    ['presence', json({ online: true }), /at: required field is missing/],
    ['presence', json({ online: false, at: 1, agentStopped: 'yes' }), /agentStopped: expected a boolean/],
    ['nonsense', json({}), /unknown upward message "nonsense"/],
  ]
  for (const [name, payload, reason] of cases) {
    const r = decodeUp(name, payload)
    t.equal(r.ok, false, `${name} ${payload.toString('utf8').slice(0, 30)}`)
    if (!r.ok) t.match(r.reason, reason)
  }
})

t.test('oversized payloads are refused before they are parsed, with limits per kind', async (t) => {
  t.equal(MAX_PAYLOAD_BYTES['pod-status'], 64 * 1024)
  t.equal(MAX_PAYLOAD_BYTES.desired, 1024 * 1024)
  const big = json({ namespace: 'd', name: 'n', uid: 'u', status: { pad: 'x'.repeat(64 * 1024) } })
  const r = decodeUp('pod-status', big)
  t.equal(r.ok, false)
  if (!r.ok) t.match(r.reason, /exceeds the limit of 65536 bytes/)
  const notJson = Buffer.alloc(2 * 1024 * 1024, 0x7b)
  const d = decodeDown('desired', notJson)
  t.equal(d.ok, false)
  if (!d.ok) t.match(d.reason, /exceeds the limit of 1048576 bytes/)
})

t.test('decodeDown checks desired state and rpc requests', async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default', uid: 'u1' }, spec: { containers: [] } }
  const good = decodeDown('desired', json({ revision: 9, since: 3, full: false, upserts: [pod], deletes: [{ kind: 'Secret', namespace: 'default', name: 's' }] }))
  t.ok(good.ok)
  const deployment = decodeDown('desired', json({ revision: 9, since: 0, full: true, upserts: [{ ...pod, kind: 'Deployment' }], deletes: [] }))
  t.equal(deployment.ok, false)
  if (!deployment.ok) t.match(deployment.reason, /upserts\[0\]\.kind: expected one of Pod, ConfigMap, Secret/)
  const backwards = decodeDown('desired', json({ revision: 2, since: 5, full: false, upserts: [], deletes: [] }))
  t.equal(backwards.ok, false)
  const nameless = decodeDown('desired', json({ revision: 2, since: 0, full: true, upserts: [{ apiVersion: 'v1', kind: 'Pod', metadata: {} }], deletes: [] }))
  t.equal(nameless.ok, false)
  if (!nameless.ok) t.match(nameless.reason, /upserts\[0\]\.metadata\.name: required field is missing/)

  t.ok(decodeDown('rpc', json({ id: '1', replyTopic: upTopic('pi-1', 'rpc-reply'), method: 'logs', params: { pod: 'web' } })).ok)
  const wild = decodeDown('rpc', json({ id: '1', replyTopic: 'bramble/v1/nodes/+/up/rpc-reply', method: 'logs', params: {} }))
  t.equal(wild.ok, false)
  const method = decodeDown('rpc', json({ id: '1', replyTopic: upTopic('pi-1', 'rpc-reply'), method: 'exec-everything', params: {} }))
  t.equal(method.ok, false)
})

t.test('an rpc reply topic must be the receiving node\'s own rpc-reply topic', async (t) => {
  t.ok(isReplyTopicFor('pi-1', upTopic('pi-1', 'rpc-reply')))
  t.notOk(isReplyTopicFor('pi-1', upTopic('pi-2', 'rpc-reply')))
  t.notOk(isReplyTopicFor('pi-1', upTopic('pi-1', 'pod-status')))
  t.notOk(isReplyTopicFor('pi-1', downTopic('pi-1', 'rpc')))
})
