// The mesh as data: peer sets from the mesh topic, the steps to reach them, MTU and addresses.

import t from 'tap'
import { generateWireGuardKeyPair } from '../../src/mesh/wireguard-keys.js'
import {
  canonicalCidr,
  decodeMeshMessage,
  formatEndpoint,
  overlayAddress,
  peerSet,
  planPeers,
  planRoutes,
  tunnelMtu,
  type MeshMessage,
  type WireGuardPeer,
} from '../../src/mesh/wireguard-peers.js'

const key = () => generateWireGuardKeyPair().publicKey
const [ka, kb, kc] = [key(), key(), key()]
const mesh: MeshMessage = {
  nodes: [
    { node: 'c', publicKey: kc, podCIDRs: ['10.42.3.0/24'] },
    { node: 'a', publicKey: ka, endpoint: '10.0.0.1:51820', podCIDRs: ['10.42.1.0/24'] },
    { node: 'b', publicKey: kb, endpoint: '10.0.0.2:51820', podCIDRs: ['10.42.2.0/24'] },
  ],
}

t.test('peers are every other node, by name, with their pod subnets as allowed IPs and routes', async (t) => {
  const set = peerSet(mesh, 'a', { keepaliveSeconds: 25 })
  t.same(set.peers, [
    { publicKey: kb, endpoint: '10.0.0.2:51820', allowedIPs: ['10.42.2.0/24'], persistentKeepalive: 25 },
    { publicKey: kc, allowedIPs: ['10.42.3.0/24'], persistentKeepalive: 25 },
  ])
  t.same(set.routes, ['10.42.2.0/24', '10.42.3.0/24'])
  t.same(set.skipped, [])
})

t.test('no keepalive unless asked; a node alone has no peers', async (t) => {
  t.equal(peerSet(mesh, 'a').peers[0]!.persistentKeepalive, undefined)
  t.same(peerSet({ nodes: [mesh.nodes[1]!] }, 'a').peers, [])
  t.same(peerSet({ nodes: [] }, 'a'), { peers: [], routes: [], skipped: [] })
})

t.test('a node without a pod subnet yet is a peer with nothing routed to it', async (t) => {
  const set = peerSet({ nodes: [...mesh.nodes, { node: 'd', publicKey: key(), podCIDRs: [] }] }, 'a')
  t.same(set.peers.at(-1)!.allowedIPs, [])
  t.same(set.routes, ['10.42.2.0/24', '10.42.3.0/24'])
})

t.test('a key or subnet claimed twice goes to the first node by name, never to two peers', async (t) => {
  const set = peerSet(
    {
      nodes: [
        ...mesh.nodes,
        { node: 'd', publicKey: kb, podCIDRs: ['10.42.4.0/24'] },
        { node: 'e', publicKey: key(), podCIDRs: ['10.42.2.7/24', '10.42.5.0/24'] },
        { node: 'f', publicKey: key(), podCIDRs: ['10.42.1.0/24'] },
      ],
    },
    'a',
  )
  t.same(set.peers.map((p) => p.allowedIPs), [['10.42.2.0/24'], ['10.42.3.0/24'], ['10.42.5.0/24'], []])
  t.same(set.skipped.map((s) => s.node), ['d', 'e', 'f'])
  t.match(set.skipped[0]!.reason, /public key already used by node b/)
  t.match(set.skipped[2]!.reason, /10.42.1.0\/24 already belongs to node a/, "a peer never takes this node's own subnet")
})

t.test('planning peers: nothing to do when the interface matches', async (t) => {
  const desired = peerSet(mesh, 'a', { keepaliveSeconds: 25 }).peers
  t.same(planPeers(desired, desired), [])
  t.same(planPeers(desired, desired.map((p) => ({ ...p, allowedIPs: [...p.allowedIPs].reverse() }))), [])
})

t.test('planning peers: adds new ones, removes deleted nodes, updates changed ones', async (t) => {
  const kd = key()
  const actual: WireGuardPeer[] = [
    { publicKey: kb, endpoint: '10.0.0.2:51820', allowedIPs: ['10.42.2.0/24'] },
    { publicKey: kd, endpoint: '10.0.0.4:51820', allowedIPs: ['10.42.4.0/24'] },
  ]
  const desired: WireGuardPeer[] = [
    { publicKey: kb, endpoint: '10.0.0.9:51820', allowedIPs: ['10.42.2.0/24'] },
    { publicKey: kc, allowedIPs: ['10.42.3.0/24'] },
  ]
  t.same(planPeers(desired, actual), [
    { op: 'remove-peer', publicKey: kd },
    { op: 'set-peer', peer: desired[0], reason: 'changed' },
    { op: 'set-peer', peer: desired[1], reason: 'new' },
  ])
})

t.test('planning peers: keepalive and allowed IPs changes are applied', async (t) => {
  const have: WireGuardPeer = { publicKey: kb, allowedIPs: ['10.42.2.0/24'] }
  t.equal(planPeers([{ ...have, persistentKeepalive: 25 }], [have]).length, 1)
  t.equal(planPeers([{ ...have, allowedIPs: ['10.42.2.0/24', '10.42.9.0/24'] }], [have]).length, 1)
})

t.test("planning peers: a roamed endpoint is left alone while the hub's does not change", async (t) => {
  const desired: WireGuardPeer[] = [{ publicKey: kb, endpoint: '10.0.0.2:51820', allowedIPs: ['10.42.2.0/24'] }]
  const roamed: WireGuardPeer[] = [{ ...desired[0]!, endpoint: '203.0.113.5:40001' }]
  t.same(planPeers(desired, roamed, desired), [], 'the peer behind NAT keeps the address its packets come from')
  const moved = [{ ...desired[0]!, endpoint: '10.0.0.7:51820' }]
  t.same(planPeers(moved, roamed, desired), [{ op: 'set-peer', peer: moved[0], reason: 'changed' }], 'a new endpoint from the hub is applied')
  t.equal(planPeers(desired, roamed).length, 1, 'after a restart (nothing applied yet) the hub is believed')
})

t.test('planning routes', async (t) => {
  t.same(planRoutes(['10.42.2.0/24', '10.42.3.0/24'], ['10.42.3.0/24', '10.42.4.0/24']), [
    { op: 'remove-route', cidr: '10.42.4.0/24' },
    { op: 'add-route', cidr: '10.42.2.0/24' },
  ])
  t.same(planRoutes(['10.42.2.0/24'], ['10.42.2.0/24']), [])
})

t.test('MTU: the link MTU less 80 bytes; too small a link is refused, naming the field', async (t) => {
  t.equal(tunnelMtu(1500), 1420)
  t.equal(tunnelMtu(9000), 8920)
  t.throws(() => tunnelMtu(600), /linkMtu: 600 leaves 520/)
  t.throws(() => tunnelMtu(0), /linkMtu/)
  t.throws(() => tunnelMtu(1500.5), /linkMtu/)
})

t.test('overlay address, endpoints and CIDRs', async (t) => {
  t.equal(overlayAddress('10.42.3.0/24'), '10.42.3.0/32')
  t.equal(overlayAddress('10.42.3.77/24'), '10.42.3.0/32')
  t.throws(() => overlayAddress('10.42.3.0'), /podCIDR/)
  t.throws(() => overlayAddress('fd00::/64'), /podCIDR: .* not IPv4/)
  t.equal(formatEndpoint('10.0.0.1', 51820), '10.0.0.1:51820')
  t.equal(formatEndpoint('fd00::1', 51820), '[fd00::1]:51820')
  t.equal(canonicalCidr('10.42.1.9/16'), '10.42.0.0/16')
})

t.test('decoding the mesh topic keeps valid entries and names the field of each bad one', async (t) => {
  const payload = JSON.stringify({
    nodes: [
      mesh.nodes[1],
      { node: 'Bad_Name', publicKey: kb, podCIDRs: [] },
      { node: 'x', publicKey: 'short', podCIDRs: [] },
      { node: 'y', publicKey: kc, endpoint: '10.0.0.3', podCIDRs: ['10.42.300.0/24'] },
      { node: 'z', publicKey: kc, endpoint: '[fd00::3]:51820', podCIDRs: ['fd00:42::/64'] },
    ],
  })
  const d = decodeMeshMessage(Buffer.from(payload))
  if (!d.ok) throw new Error(d.reason)
  t.same(d.mesh.nodes.map((n) => n.node), ['a', 'z'])
  t.match(d.problems, [/nodes\[1\]\.node/, /nodes\[2\]\.publicKey/, /nodes\[3\]\.endpoint/, /nodes\[3\]\.podCIDRs\[0\]/])
  t.same(decodeMeshMessage('not json'), { ok: false, reason: 'not JSON' })
  t.same(decodeMeshMessage('{"nodes":7}'), { ok: false, reason: 'nodes: expected an array' })
  t.match(decodeMeshMessage(Buffer.alloc(600 * 1024, 32)), { ok: false, reason: /exceeds/ })
})
