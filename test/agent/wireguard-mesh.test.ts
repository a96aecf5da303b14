// Two hosts (network namespaces joined by a veth pair), each running the agent's mesh side with
// the real WireGuard adapter (wireguard-go here): the peers computed from one mesh message carry
// pings across the tunnel, the transfer counters grow, an endpoint change is applied, a deleted
// node's peer and route go, and a restarted agent adopts the interface without duplicates.

import t from 'tap'
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MeshAgent } from '../../src/agent/mesh-agent.js'
import { WireGuardLink } from '../../src/agent/wireguard-link.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import type { MeshMessage } from '../../src/mesh/wireguard-peers.js'
import { connect, uniqueInterfaceName, WireGuardNetns, wireguardNetnsUnavailable } from '../helpers/wireguard-netns.js'

const unavailable = await wireguardNetnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else {
  const root = mkdtempSync(join(tmpdir(), 'bramble-wg-mesh-'))
  const a = await WireGuardNetns.create()
  const b = await WireGuardNetns.create()
  t.teardown(async () => {
    await a.cleanup()
    await b.cleanup()
    rmSync(root, { recursive: true, force: true })
  })
  await connect(a, '10.214.0.1/24', b, '10.214.0.2/24', 1500)
  const ifA = uniqueInterfaceName()
  const ifB = uniqueInterfaceName()
  a.ownLink(ifA)
  b.ownLink(ifB)
  const changes = { a: 0, b: 0 }
  const agent = (ns: WireGuardNetns, node: 'a' | 'b', iface: string, host: string) =>
    new MeshAgent({
      wireguard: new WireGuardLink({ netns: ns.name }),
      node,
      dir: join(root, node),
      interfaceName: iface,
      listenPort: 51820,
      keepaliveSeconds: 25,
      internalIP: host,
      clock: systemClock,
      logger: silentLogger(),
      resyncMs: 3_600_000,
      onChange: () => changes[node]++,
    })
  let meshA = agent(a, 'a', ifA, '10.214.0.1')
  const meshB = agent(b, 'b', ifB, '10.214.0.2')
  t.teardown(() => {
    meshA.stop()
    meshB.stop()
  })
  const wgA = new WireGuardLink({ netns: a.name })
  const wgB = new WireGuardLink({ netns: b.name })
  const send = async (m: MeshMessage) => {
    const payload = Buffer.from(JSON.stringify(m))
    meshA.onMessage('bramble/v1/cluster/mesh', payload)
    meshB.onMessage('bramble/v1/cluster/mesh', payload)
    await meshA.idle()
    await meshB.idle()
  }
  const ping = (ns: WireGuardNetns, address: string) => ns.exec(['busybox', 'ping', '-c', '3', '-W', '2', address]).then(() => true, () => false)
  const both: MeshMessage = {
    nodes: [
      { node: 'a', ...meshA.report().wireguard, podCIDRs: ['10.42.1.0/24'] },
      { node: 'b', ...meshB.report().wireguard, podCIDRs: ['10.42.2.0/24'] },
    ],
  }

  t.test('each node makes its key on first start and keeps the private key owner-only', async (t) => {
    t.equal(statSync(meshA.privateKeyFile).mode & 0o777, 0o600)
    t.not(meshA.publicKey, meshB.publicKey)
    t.same(meshA.report().wireguard, { publicKey: meshA.publicKey, endpoint: '10.214.0.1:51820' })
    t.notOk(JSON.stringify(meshA.report()).includes(join(root, 'a')), 'nothing about the key file goes up')
  })

  t.test('a node alone makes no interface', async (t) => {
    await meshA.start()
    await meshB.start()
    meshA.onMessage('bramble/v1/cluster/mesh', Buffer.from(JSON.stringify({ nodes: [both.nodes[0]] })))
    await meshA.idle()
    t.equal(await wgA.show(ifA), undefined)
    t.match(meshA.report().condition, { status: 'False', reason: 'NoPeers' })
  })

  t.test('with a peer but no pod subnet yet, the interface is up and the overlay waits', async (t) => {
    const noSubnet = { nodes: both.nodes.map((n) => ({ ...n, podCIDRs: [] })) }
    meshA.onMessage('bramble/v1/cluster/mesh', Buffer.from(JSON.stringify(noSubnet)))
    await meshA.idle()
    t.equal((await wgA.show(ifA))?.up, true)
    t.same((await wgA.show(ifA))?.addresses, [])
    t.match(meshA.report().condition, { status: 'True', reason: 'NoPodCIDR' })
  })

  t.test('with the mesh applied, pings cross the tunnel and the transfer counters grow', async (t) => {
    await send(both)
    const sa = await wgA.show(ifA)
    t.same(sa?.addresses, ['10.42.1.0/32'])
    t.equal(sa?.mtu, 1420, 'link MTU 1500 less 80')
    t.same(sa?.routes, ['10.42.2.0/24'])
    t.match(sa?.peers, [{ publicKey: meshB.publicKey, endpoint: '10.214.0.2:51820', allowedIPs: ['10.42.2.0/24'], persistentKeepalive: 25 }])
    t.match(meshA.report().condition, { status: 'False', reason: 'WireGuardUp', message: /up with 1 peers/ })
    t.ok(changes.a >= 2, 'the node status was asked to go up again')
    const before = sa!.peers[0]!
    t.ok(await ping(a, '10.42.2.0'), 'a pings b through the tunnel')
    t.ok(await ping(b, '10.42.1.0'), 'b pings a through the tunnel')
    const after = (await wgA.show(ifA))!.peers[0]!
    t.ok(after.txBytes > before.txBytes, `sent bytes grew (${before.txBytes} → ${after.txBytes})`)
    t.ok(after.rxBytes > before.rxBytes, `received bytes grew (${before.rxBytes} → ${after.rxBytes})`)
    t.ok(after.latestHandshake > 0, 'a handshake happened')
  })

  t.test("an endpoint change is applied: b moves to another address and port", async (t) => {
    await b.exec(['ip', 'address', 'add', '10.214.0.3/24', 'dev', (await b.exec(['ip', '-o', 'link', 'show', 'type', 'veth'])).split(':')[1]!.trim().split('@')[0]!])
    await wgB.ensureLink({ name: ifB, privateKeyFile: meshB.privateKeyFile, listenPort: 51821, mtu: 1420, address: '10.42.2.0/32' })
    const moved: MeshMessage = { nodes: [both.nodes[0]!, { ...both.nodes[1]!, endpoint: '10.214.0.3:51821' }] }
    meshA.onMessage('bramble/v1/cluster/mesh', Buffer.from(JSON.stringify(moved)))
    await meshA.idle()
    t.equal((await wgA.show(ifA))?.peers[0]?.endpoint, '10.214.0.3:51821')
    t.ok(await ping(a, '10.42.2.0'), 'pings go to the new endpoint')
  })

  t.test('a restarted agent adopts the interface: same peers and routes, nothing duplicated', async (t) => {
    meshA.stop()
    meshA = agent(a, 'a', ifA, '10.214.0.1')
    t.equal(meshA.publicKey, both.nodes[0]!.publicKey, 'the same key from the data dir')
    await meshA.start()
    const s = await wgA.show(ifA)
    t.equal(s?.peers.length, 1)
    t.equal(s?.peers[0]?.endpoint, '10.214.0.3:51821', 'the mesh kept on disk was applied')
    t.same(s?.routes, ['10.42.2.0/24'])
    t.same(s?.addresses, ['10.42.1.0/32'])
    t.ok(await ping(a, '10.42.2.0'))
  })

  t.test("a deleted node's peer and route are removed", async (t) => {
    meshA.onMessage('bramble/v1/cluster/mesh', Buffer.from(JSON.stringify({ nodes: [both.nodes[0]] })))
    await meshA.idle()
    const s = await wgA.show(ifA)
    t.same(s?.peers, [])
    t.same(s?.routes, [])
    t.notOk(await a.exec(['busybox', 'ping', '-c', '1', '-W', '1', '10.42.2.0']).then(() => true, () => false), 'b is no longer reachable')
  })
}

t.test("the endpoint follows the node's InternalIP, unless an address is advertised", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-wg-endpoint-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const make = (extra: { advertiseAddress?: string }) =>
    new MeshAgent({ wireguard: new WireGuardLink(), node: 'n', dir, interfaceName: 'unused0', listenPort: 51820, keepaliveSeconds: 0, internalIP: '10.0.0.5', clock: systemClock, logger: silentLogger(), onChange: () => {}, ...extra })
  const plain = make({})
  t.equal(plain.report().wireguard.endpoint, '10.0.0.5:51820')
  t.equal(plain.report('10.0.0.6').wireguard.endpoint, '10.0.0.6:51820', 'a new DHCP lease moves the endpoint')
  t.equal(plain.report().wireguard.endpoint, '10.0.0.6:51820')
  const advertised = make({ advertiseAddress: '203.0.113.7' })
  t.equal(advertised.report('10.0.0.6').wireguard.endpoint, '203.0.113.7:51820')
  t.equal(advertised.publicKey, plain.publicKey, 'one key per data dir')
})

t.test('the private key file is kept owner-only; a corrupt one is refused, naming the file', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-wg-key-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const make = () => new MeshAgent({ wireguard: new WireGuardLink(), node: 'n', dir, interfaceName: 'unused0', listenPort: 51820, keepaliveSeconds: 0, clock: systemClock, logger: silentLogger(), onChange: () => {} })
  const first = make()
  chmodSync(first.privateKeyFile, 0o644)
  const again = make()
  t.equal(statSync(again.privateKeyFile).mode & 0o777, 0o600, 'loose permissions tightened')
  t.equal(again.publicKey, first.publicKey)
  t.equal(first.report().wireguard.endpoint, undefined, 'no address known: no endpoint, the node dials out')
  writeFileSync(first.privateKeyFile, 'not a key\n')
  t.throws(() => make(), new RegExp(`${first.privateKeyFile.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} does not hold a WireGuard private key`))
})
