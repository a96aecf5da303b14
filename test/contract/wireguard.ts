// The WireGuard port's contract: one suite, run against the real adapter (kernel WireGuard or
// wireguard-go through `wg`/`ip`) in a network namespace of its own
// (test/agent/wireguard-link.test.ts).

import type { Test } from 'tap'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateWireGuardKeyPair, wireGuardPublicKey } from '../../src/mesh/wireguard-keys.js'
import type { WireGuard, WireGuardLinkSettings } from '../../src/mesh/wireguard-port.js'

export interface WireGuardFixture {
  wireguard: WireGuard
  /** The same machine's WireGuard seen by a second instance: an agent restarted. */
  reopen(): WireGuard
  /** The same machine's WireGuard from another network namespace (its /var/run/wireguard is shared). */
  otherNamespace?: () => WireGuard
  /** An interface name no one else uses. */
  interfaceName: string
  close(): Promise<void>
}

export function wireGuardContract(t: Test, name: string, make: () => Promise<WireGuardFixture>): void {
  t.test(`WireGuard contract: ${name}`, async (t) => {
    const f = await make()
    const dir = mkdtempSync(join(tmpdir(), 'bramble-wg-contract-'))
    t.teardown(async () => {
      await f.wireguard.deleteLink(f.interfaceName).catch(() => {})
      await f.close()
      rmSync(dir, { recursive: true, force: true })
    })
    const wg = f.wireguard
    const iface = f.interfaceName
    const keys = generateWireGuardKeyPair()
    const keyFile = join(dir, 'private.key')
    writeFileSync(keyFile, keys.privateKey + '\n', { mode: 0o600 })
    const settings: WireGuardLinkSettings = { name: iface, privateKeyFile: keyFile, listenPort: 51900, mtu: 1420, address: '10.42.7.0/32' }
    const peerA = generateWireGuardKeyPair().publicKey
    const peerB = generateWireGuardKeyPair().publicKey

    await t.test('shows nothing for an interface that does not exist', async (t) => {
      t.equal(await wg.show(iface), undefined)
    })

    await t.test('creates the interface with its key, port, MTU and address, up', async (t) => {
      const made = await wg.ensureLink(settings)
      t.equal(made.created, true)
      t.match(made.mode, /^(kernel|userspace)$/)
      const s = await wg.show(iface)
      t.equal(s?.publicKey, wireGuardPublicKey(keys.privateKey), 'the public key is the one of the key file')
      t.equal(s?.listenPort, 51900)
      t.equal(s?.mtu, 1420)
      t.equal(s?.up, true)
      t.same(s?.addresses, ['10.42.7.0/32'])
      t.same(s?.peers, [])
    })

    await t.test('ensuring it again changes nothing and duplicates nothing', async (t) => {
      const again = await wg.ensureLink(settings)
      t.equal(again.created, false)
      const s = await wg.show(iface)
      t.same(s?.addresses, ['10.42.7.0/32'])
      t.equal(s?.mtu, 1420)
    })

    await t.test('adds a peer, then updates its endpoint, allowed IPs and keepalive', async (t) => {
      await wg.setPeer(iface, { publicKey: peerA, endpoint: '192.0.2.10:51820', allowedIPs: ['10.42.8.0/24'], persistentKeepalive: 25 })
      let p = (await wg.show(iface))?.peers
      t.equal(p?.length, 1)
      t.match(p?.[0], { publicKey: peerA, endpoint: '192.0.2.10:51820', allowedIPs: ['10.42.8.0/24'], persistentKeepalive: 25, latestHandshake: 0, rxBytes: 0, txBytes: 0 })
      await wg.setPeer(iface, { publicKey: peerA, endpoint: '192.0.2.11:51821', allowedIPs: ['10.42.9.0/24'] })
      p = (await wg.show(iface))?.peers
      t.equal(p?.length, 1, 'still one peer')
      t.equal(p?.[0]?.endpoint, '192.0.2.11:51821')
      t.same(p?.[0]?.allowedIPs, ['10.42.9.0/24'], 'allowed IPs are replaced, not added to')
      t.equal(p?.[0]?.persistentKeepalive, undefined, 'keepalive off')
    })

    await t.test('a peer without an endpoint waits for the other side to dial', async (t) => {
      await wg.setPeer(iface, { publicKey: peerB, allowedIPs: [] })
      const p = (await wg.show(iface))?.peers.find((x) => x.publicKey === peerB)
      t.equal(p?.endpoint, undefined)
      t.same(p?.allowedIPs, [])
    })

    await t.test('removes a peer', async (t) => {
      await wg.removePeer(iface, peerB)
      t.same((await wg.show(iface))?.peers.map((p) => p.publicKey), [peerA])
    })

    await t.test('routes a subnet through the interface once, however often asked, and removes it', async (t) => {
      await wg.addRoute(iface, '10.42.9.0/24')
      await wg.addRoute(iface, '10.42.9.0/24')
      t.same((await wg.show(iface))?.routes, ['10.42.9.0/24'])
      await wg.removeRoute(iface, '10.42.9.0/24')
      t.same((await wg.show(iface))?.routes, [])
      await wg.removeRoute(iface, '10.42.9.0/24')
      t.pass('removing an absent route is not an error')
    })

    await t.test('a new pod subnet replaces the interface address', async (t) => {
      await wg.ensureLink({ ...settings, address: '10.42.10.0/32', mtu: 1380 })
      const s = await wg.show(iface)
      t.same(s?.addresses, ['10.42.10.0/32'])
      t.equal(s?.mtu, 1380)
    })

    await t.test('a restarted agent adopts the interface with its peers', async (t) => {
      await wg.addRoute(iface, '10.42.9.0/24')
      const again = f.reopen()
      const made = await again.ensureLink({ ...settings, address: '10.42.10.0/32', mtu: 1380 })
      t.equal(made.created, false)
      const s = await again.show(iface)
      t.same(s?.peers.map((p) => p.publicKey), [peerA], 'peers kept')
      t.same(s?.routes, ['10.42.9.0/24'], 'routes kept')
    })

    await t.test("reads the MTU of the link that holds an address", async (t) => {
      t.equal(await wg.linkMtu('10.42.10.0'), 1380, 'the interface holding the address')
      t.equal(await wg.linkMtu('192.0.2.250'), undefined, 'no link holds it')
    })

    await t.test('refuses bad settings, naming the field', async (t) => {
      await t.rejects(wg.ensureLink({ ...settings, name: 'name-longer-than-15' }), /interface/)
      await t.rejects(wg.ensureLink({ ...settings, listenPort: 70000 }), /listenPort/)
      await t.rejects(wg.ensureLink({ ...settings, mtu: 100 }), /mtu/)
    })

    await t.test('refuses a name whose wireguard-go socket belongs to another network namespace', { skip: f.otherNamespace ? false : 'no second namespace in this fixture' }, async (t) => {
      const other = f.otherNamespace!()
      await t.rejects(other.ensureLink(settings), /another network namespace/)
      t.equal((await wg.show(iface))?.listenPort, 51900, 'the first namespace keeps its interface')
    })

    await t.test('deletes the interface; deleting it again is not an error', async (t) => {
      await wg.deleteLink(iface)
      t.equal(await wg.show(iface), undefined)
      await wg.deleteLink(iface)
    })

    await t.test('makes the interface again after it was deleted', async (t) => {
      const made = await wg.ensureLink(settings)
      t.equal(made.created, true)
      t.same((await wg.show(iface))?.peers, [], 'no peers survive a deleted interface')
    })
  })
}
