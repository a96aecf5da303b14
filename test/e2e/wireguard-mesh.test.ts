// The WireGuard overlay on a real cluster: `bramble hub` and two `bramble agent`s, each in a network
// namespace of its own with its own dockerd and its own wireguard-go interface. Each agent reports
// its public key and endpoint, the hub leases pod subnets and publishes the mesh, and each agent
// configures the other as a peer: pings between the nodes' overlay addresses cross the tunnel (the
// transfer counters grow), `get nodes -o wide` shows the overlay up, a restarted agent adopts its
// interface without duplicates, and deleting a Node removes its peer and route from the other.

import t from 'tap'
import { WireGuardLink } from '../../src/agent/wireguard-link.js'
import { overlayAddress } from '../../src/mesh/wireguard-peers.js'
import type { WireGuardState } from '../../src/mesh/wireguard-port.js'
import { until } from '../helpers/e2e.js'
import { NetnsCluster, nodeReady, wireguardInterfaceOf, type AgentProcess } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'
import { wireguardNetnsUnavailable } from '../helpers/wireguard-netns.js'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'

const run = promisify(execFile)
const unavailable = (await netnsUnavailable()) ?? (await wireguardNetnsUnavailable())
if (unavailable) t.plan(0, unavailable)
else {
  const cluster = await NetnsCluster.start()
  t.teardown(() => cluster.cleanup())
  const a = await cluster.addNode('wga')
  const b = await cluster.addNode('wgb')
  const wg = (agent: AgentProcess) => new WireGuardLink({ netns: agent.host.netns })
  const show = (agent: AgentProcess): Promise<WireGuardState | undefined> => wg(agent).show(wireguardInterfaceOf(agent.host))
  const ping = (from: AgentProcess, address: string) =>
    run('ip', ['netns', 'exec', from.host.netns, 'busybox', 'ping', '-c', '3', '-W', '2', address], { timeout: 20_000 }).then(() => true, () => false)
  const meshReady = (n: any) => n?.spec?.podCIDR && n.status?.conditions?.some((c: any) => c.type === 'NetworkUnavailable' && c.status === 'False' && c.reason === 'WireGuardUp')
  const withDiagnostics = async <T>(p: Promise<T>): Promise<T> => p.catch(async (err) => Promise.reject(new Error(`${(err as Error).message}\n${await cluster.diagnostics()}`)))

  const [nodeA, nodeB] = await withDiagnostics(
    until('both nodes with a pod subnet and the overlay up', async () => {
      const [na, nb] = [await cluster.get('/api/v1/nodes/wga'), await cluster.get('/api/v1/nodes/wgb')]
      return meshReady(na) && meshReady(nb) && [na, nb]
    }, 90_000),
  )
  const overlayA = overlayAddress(nodeA.spec.podCIDR).replace('/32', '')
  const overlayB = overlayAddress(nodeB.spec.podCIDR).replace('/32', '')

  t.test('each node has the other as its peer, at its advertised endpoint, with its pod subnet', async (t) => {
    const sa = await show(a)
    t.equal(sa?.peers.length, 1)
    t.equal(sa?.peers[0]?.publicKey, nodeB.metadata.annotations['bramble.io/wireguard-public-key'])
    t.equal(sa?.peers[0]?.endpoint, `${b.host.address}:51820`)
    t.same(sa?.peers[0]?.allowedIPs, [nodeB.spec.podCIDR])
    t.equal(sa?.peers[0]?.persistentKeepalive, 25)
    t.same(sa?.routes, [nodeB.spec.podCIDR])
    t.same(sa?.addresses, [`${overlayA}/32`])
    t.equal(sa?.mtu, 1420, 'the veth MTU 1500 less 80')
  })

  t.test('pings cross the tunnel both ways and the transfer counters grow', async (t) => {
    const before = (await show(a))!.peers[0]!
    t.ok(await ping(a, overlayB), `wga reaches ${overlayB}`)
    t.ok(await ping(b, overlayA), `wgb reaches ${overlayA}`)
    const after = (await show(a))!.peers[0]!
    t.ok(after.txBytes > before.txBytes, `sent ${before.txBytes} → ${after.txBytes} bytes`)
    t.ok(after.rxBytes > before.rxBytes, `received ${before.rxBytes} → ${after.rxBytes} bytes`)
  })

  t.test('get nodes -o wide shows the overlay up and the endpoint', async (t) => {
    const out = await cluster.bramble('get', 'nodes', '-o', 'wide')
    t.match(out, /OVERLAY/)
    t.match(out, new RegExp(`wga .*up ${a.host.address.replace(/\./g, '\\.')}:51820`))
    t.match(out, new RegExp(`wgb .*up ${b.host.address.replace(/\./g, '\\.')}:51820`))
  })

  t.test('a restarted agent adopts its interface: one peer, one route, one address', async (t) => {
    await a.stop('SIGTERM')
    t.ok(await ping(b, overlayA), 'the tunnel works while the agent is away')
    const again = await cluster.restartAgent(a)
    await new Promise((r) => setTimeout(r, 2_000))
    const sa = await show(again)
    t.equal(sa?.peers.length, 1)
    t.same(sa?.routes, [nodeB.spec.podCIDR])
    t.same(sa?.addresses, [`${overlayA}/32`])
    t.ok(await ping(again, overlayB))
  })

  t.test("deleting a Node removes its peer and route from the others", async (t) => {
    await cluster.bramble('delete', 'node', 'wgb')
    const sa = await withDiagnostics(until('wga without the wgb peer', async () => {
      const s = await show(cluster.agent('wga'))
      return s && s.peers.length === 0 && s
    }, 60_000))
    t.same(sa.routes, [])
    t.ok(nodeReady(await cluster.get('/api/v1/nodes/wga')), 'wga stays Ready')
  })
}
