// bench/wireguard: TCP throughput between two hosts (network namespaces joined by a veth pair)
// through the WireGuard tunnel the agent's mesh side sets up (kernel WireGuard where the kernel has
// it, wireguard-go here), and in the same run over the plain link between them, measured with
// iperf3. Prints both and their ratio: what the overlay costs on this machine.
//
//   npm run bench:wireguard        (BENCH_SECONDS: each measurement's length, default 10)
//
// Needs root, iproute2, wireguard-tools, wireguard-go and iperf3.

import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { MeshAgent } from '../src/agent/mesh-agent.js'
import { WireGuardLink } from '../src/agent/wireguard-link.js'
import { systemClock } from '../src/lib/clock.js'
import { silentLogger } from '../src/lib/logger.js'
import { connect, uniqueInterfaceName, WireGuardNetns, wireguardNetnsUnavailable } from '../test/helpers/wireguard-netns.js'

const run = promisify(execFile)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)

/** Bits per second the receiver saw, from `iperf3 -J`, with a one-off server in `server`'s namespace. */
async function throughput(client: WireGuardNetns, server: WireGuardNetns, address: string): Promise<number> {
  const daemon = spawn('ip', ['netns', 'exec', server.name, 'iperf3', '-s', '-1', '-B', address], { stdio: 'ignore' })
  try {
    await new Promise((r) => setTimeout(r, 500))
    const { stdout } = await run('ip', ['netns', 'exec', client.name, 'iperf3', '-c', address, '-t', String(SECONDS), '-J'], { timeout: (SECONDS + 30) * 1000 })
    return JSON.parse(stdout).end.sum_received.bits_per_second
  } finally {
    daemon.kill()
  }
}

async function main(): Promise<void> {
  const unavailable = (await wireguardNetnsUnavailable()) ?? (await run('sh', ['-c', 'command -v iperf3']).then(() => undefined, () => 'iperf3 is not installed'))
  if (unavailable) throw new Error(unavailable)
  const root = mkdtempSync(join(tmpdir(), 'bramble-bench-wg-'))
  const a = await WireGuardNetns.create()
  const b = await WireGuardNetns.create()
  const agents: MeshAgent[] = []
  try {
    await connect(a, '10.214.0.1/24', b, '10.214.0.2/24', 1500)
    const hosts = [
      { ns: a, node: 'a', address: '10.214.0.1', podCIDR: '10.42.1.0/24' },
      { ns: b, node: 'b', address: '10.214.0.2', podCIDR: '10.42.2.0/24' },
    ]
    for (const h of hosts) {
      const iface = uniqueInterfaceName()
      h.ns.ownLink(iface)
      agents.push(
        new MeshAgent({
          wireguard: new WireGuardLink({ netns: h.ns.name }),
          node: h.node,
          dir: join(root, h.node),
          interfaceName: iface,
          listenPort: 51820,
          keepaliveSeconds: 25,
          advertiseAddress: h.address,
          clock: systemClock,
          logger: silentLogger(),
          resyncMs: 3_600_000,
          onChange: () => {},
        }),
      )
    }
    const mesh = Buffer.from(JSON.stringify({ nodes: hosts.map((h, i) => ({ node: h.node, ...agents[i]!.report().wireguard, podCIDRs: [h.podCIDR] })) }))
    for (const agent of agents) {
      agent.onMessage('bramble/v1/cluster/mesh', mesh)
      await agent.idle()
      const condition = agent.report().condition
      if (condition.status !== 'False') throw new Error(`the tunnel did not come up: ${condition.message}`)
    }
    const plain = await throughput(a, b, '10.214.0.2')
    const tunnel = await throughput(a, b, '10.42.2.0')
    const mbit = (bps: number) => (bps / 1e6).toFixed(1)
    console.log(`plain link:   ${mbit(plain)} Mbit/s`)
    console.log(`tunnel:       ${mbit(tunnel)} Mbit/s (wireguard-go or kernel, MTU 1420)`)
    console.log(`ratio tunnel/plain: ${(tunnel / plain).toFixed(3)}`)
  } finally {
    for (const agent of agents) agent.stop()
    await a.cleanup()
    await b.cleanup()
    rmSync(root, { recursive: true, force: true })
  }
}

await main()
