import t from 'tap'
import { HUB_USERNAME, clientIdAllowed, filterWithin, mayPublish, mayReceive, maySubscribe, principalOf } from '../../src/hub/broker-acl.js'

const pi1 = { kind: 'node', node: 'pi-1' } as const
const hub = { kind: 'hub' } as const

t.test('usernames map to the hub, a node, or nobody', async (t) => {
  t.same(principalOf(HUB_USERNAME), hub)
  t.same(principalOf('pi-1'), pi1)
  for (const u of [undefined, '', 'Pi-1', 'node:pi-1', 'a/b', '#', 'hub.x']) t.equal(principalOf(u), undefined, String(u))
  t.notOk(principalOf(HUB_USERNAME)?.kind === 'node', 'no node can be named like the hub user')
})

t.test('a node publishes only under its own up/ prefix', async (t) => {
  t.ok(mayPublish(pi1, 'bramble/v1/nodes/pi-1/up/heartbeat'))
  t.ok(mayPublish(pi1, 'bramble/v1/nodes/pi-1/up/rpc-reply'))
  for (const topic of [
    'bramble/v1/nodes/pi-2/up/heartbeat',
    'bramble/v1/nodes/pi-1/down/desired',
    'bramble/v1/nodes/pi-1/up',
    'bramble/v1/nodes/pi-1/upx/a',
    'bramble/v1/nodes/pi-10/up/ack',
    'bramble/v1/cluster/mesh',
    'bramble/v1/nodes/pi-1/up/#',
    'bramble/v1/nodes/pi-1/up/+',
    '',
  ])
    t.notOk(mayPublish(pi1, topic), topic)
})

t.test('a node subscribes only within its own down/ and the cluster topics', async (t) => {
  for (const filter of [
    'bramble/v1/nodes/pi-1/down/desired',
    'bramble/v1/nodes/pi-1/down/+',
    'bramble/v1/nodes/pi-1/down/#',
    'bramble/v1/nodes/pi-1/down',
    'bramble/v1/cluster/#',
    'bramble/v1/cluster/mesh',
    'bramble/v1/cluster/+',
  ])
    t.ok(maySubscribe(pi1, filter), filter)
  for (const filter of [
    '#',
    '+',
    'bramble/#',
    'bramble/v1/#',
    'bramble/v1/+/pi-1/down/desired',
    'bramble/v1/nodes/+/down/desired',
    'bramble/v1/nodes/pi-1/#',
    'bramble/v1/nodes/pi-1/+/desired',
    'bramble/v1/nodes/pi-2/down/desired',
    'bramble/v1/nodes/pi-1/up/heartbeat',
    'bramble/v1/nodes/pi-1/down/#/x',
    'bramble/v1/nodes/pi-1/down/a#',
    '$SYS/#',
    '$share/g/bramble/v1/nodes/pi-1/down/desired',
    '',
  ])
    t.notOk(maySubscribe(pi1, filter), filter)
})

t.test('the hub may publish and subscribe anywhere, but never publish to a wildcard', async (t) => {
  t.ok(mayPublish(hub, 'bramble/v1/nodes/pi-1/down/desired'))
  t.ok(maySubscribe(hub, '#'))
  t.notOk(mayPublish(hub, 'bramble/v1/nodes/+/down/desired'))
})

t.test('delivery is re-checked: a node receives only its own down/ and the cluster topics', async (t) => {
  t.ok(mayReceive(pi1, 'bramble/v1/nodes/pi-1/down/desired'))
  t.ok(mayReceive(pi1, 'bramble/v1/cluster/services'))
  t.notOk(mayReceive(pi1, 'bramble/v1/nodes/pi-2/down/desired'))
  t.notOk(mayReceive(pi1, 'bramble/v1/nodes/pi-1/up/heartbeat'))
  t.notOk(mayReceive(pi1, '$SYS/broker/heartbeat'))
})

t.test('filterWithin holds only for filters that spell the prefix literally', async (t) => {
  t.ok(filterWithin('a/b/#', 'a/b'))
  t.ok(filterWithin('a/b', 'a/b'))
  t.notOk(filterWithin('a/+', 'a/b'))
  t.notOk(filterWithin('a', 'a/b'))
})

t.test('a node must connect with its own name as client id; the hub with its prefix', async (t) => {
  t.ok(clientIdAllowed(pi1, 'pi-1'))
  t.notOk(clientIdAllowed(pi1, 'pi-2'))
  t.notOk(clientIdAllowed(pi1, HUB_USERNAME))
  t.ok(clientIdAllowed(hub, HUB_USERNAME))
  t.ok(clientIdAllowed(hub, `${HUB_USERNAME}:gateway`))
  t.notOk(clientIdAllowed(hub, 'pi-1'))
})
