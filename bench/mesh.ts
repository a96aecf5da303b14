// bench/mesh: TCP throughput between pods on two nodes across the WireGuard tunnel, and in the same
// run over the plain link between the two nodes. A real cluster as the e2e tests make it: `bramble
// hub` in the root namespace and two `bramble agent`s, each in a network namespace of its own with
// its own dockerd (its iptables rules on, as on a host) and wireguard-go interface; one pod per
// node on the node's pod subnet. Measured with iperf3, three figures:
//   - plain link: node to node over the veths and bridge between the namespaces (the baseline);
//   - tunnel, node to node: the agents' overlay addresses, through WireGuard only;
//   - tunnel, pod to pod: pod IP to pod IP (bridge, forward rules, WireGuard, the other bridge).
// iperf3 runs inside each pod's network namespace with `nsenter --net` (the pod's container pid
// from `docker inspect`), not from an image: busybox has no iperf3, and the pod's network
// namespace is the whole path being measured. Prints each figure and its ratio to the plain link.
//
//   npm run bench:mesh        (BENCH_SECONDS: each measurement's length, default 10;
//                              BENCH_NETNS_PREFIX: 2-3 letters naming its namespaces, default bm)
//
// Needs root, iproute2, util-linux (nsenter), docker.io, iptables, wireguard-tools, wireguard-go
// and iperf3.

import { execFile, spawn } from 'node:child_process'
import { promisify } from 'node:util'
import { WireGuardLink } from '../src/agent/wireguard-link.js'
import { overlayAddress } from '../src/mesh/wireguard-peers.js'
import { apiRequest } from '../test/helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../test/helpers/busybox-image.js'
import { until } from '../test/helpers/e2e.js'
import { NetnsCluster, podReady, wireguardInterfaceOf, type AgentProcess } from '../test/helpers/netns-cluster.js'
import { netnsUnavailable } from '../test/helpers/netns-host.js'
import { wireguardNetnsUnavailable } from '../test/helpers/wireguard-netns.js'

const run = promisify(execFile)
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10)
const PORT = 5201

/** Where iperf3 runs: the network namespace of a node's agent, or of one of its pods (a pid's). */
type Place = { netns: string } | { pid: number }

const nsenter = (place: Place, command: string[]) => ['nsenter', 'netns' in place ? `--net=/var/run/netns/${place.netns}` : `--net=/proc/${place.pid}/ns/net`, ...command]

/**
 * Bits per second the receiver saw, from `iperf3 -J`. A run that measured nothing (iperf3 reports an
 * error and no totals) is tried again with a new server, at most three times in all.
 */
async function throughput(client: Place, server: Place, address: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await measureOnce(client, server, address)
    } catch (err) {
      if (attempt >= 3) throw err
      console.error(`bench/mesh: iperf3 to ${address} failed (${(err as Error).message}); trying again`)
    }
  }
}

/** One measurement, with a one-off server listening at `address` in `server`. */
async function measureOnce(client: Place, server: Place, address: string): Promise<number> {
  const [file, ...args] = nsenter(server, ['iperf3', '-s', '-1', '-B', address, '-p', String(PORT)])
  const daemon = spawn(file!, args, { stdio: 'ignore' })
  try {
    // The server listens within a moment; the client retries its connection until then.
    const deadline = Date.now() + 10_000
    for (;;) {
      const [cfile, ...cargs] = nsenter(client, ['iperf3', '-c', address, '-p', String(PORT), '-t', String(SECONDS), '-J'])
      try {
        const { stdout } = await run(cfile!, cargs, { timeout: (SECONDS + 30) * 1000 })
        const report = JSON.parse(stdout)
        const bits = report.end?.sum_received?.bits_per_second
        if (typeof bits !== 'number') throw new Error(`iperf3 measured nothing: ${report.error ?? stdout.slice(0, 300)}`)
        return bits
      } catch (err) {
        if (Date.now() > deadline || !/Connection refused|unable to connect/i.test(String((err as { stdout?: string }).stdout ?? '') + (err as Error).message)) throw err
        await new Promise((r) => setTimeout(r, 200))
      }
    }
  } finally {
    daemon.kill()
  }
}

/** A pod that only waits, on `node`; resolves with its IP and the pid of its container. */
async function startPod(cluster: NetnsCluster, agent: AgentProcess): Promise<{ ip: string; pid: number }> {
  const name = `iperf-${agent.node}`
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: agent.node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'wait', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }],
    },
  }
  const res = await apiRequest(cluster.hub, 'POST', '/api/v1/namespaces/default/pods', pod)
  if (res.status !== 201) throw new Error(`creating pod ${name}: ${res.status} ${res.text}`)
  const ip: string = await until(`pod ${name} running`, async () => {
    const p = await cluster.get(`/api/v1/namespaces/default/pods/${name}`)
    return p && podReady(p) && p.status.podIP
  }, 90_000)
  const [container] = await agent.host.docker.listContainers({ filters: { label: [`io.bramble.pod.name=${name}`, 'io.bramble.container.name=wait'] } })
  if (!container) throw new Error(`no container of pod ${name} on ${agent.node}`)
  const pid = (await agent.host.docker.getContainer(container.Id).inspect()).State.Pid
  return { ip, pid }
}

async function main(): Promise<void> {
  const unavailable =
    (await netnsUnavailable()) ?? (await wireguardNetnsUnavailable()) ?? (await run('sh', ['-c', 'command -v iperf3']).then(() => undefined, () => 'iperf3 is not installed (Debian package iperf3)'))
  if (unavailable) throw new Error(unavailable)
  if (!(SECONDS > 0 && SECONDS <= 300)) throw new Error(`BENCH_SECONDS must be a number of seconds from 1 to 300, not ${process.env.BENCH_SECONDS}`)
  const prefix = process.env.BENCH_NETNS_PREFIX
  if (prefix !== undefined && !/^[a-z]{2,3}$/.test(prefix)) throw new Error(`BENCH_NETNS_PREFIX must be two or three lowercase letters, not ${JSON.stringify(prefix)}`)
  const cluster = await NetnsCluster.start({ prefix })
  try {
    const a = await cluster.addNode('bench-a', { dockerIptables: true })
    const b = await cluster.addNode('bench-b', { dockerIptables: true })
    const nodeB = await until('both nodes with the overlay up', async () => {
      const nodes = await Promise.all(['bench-a', 'bench-b'].map((n) => cluster.get(`/api/v1/nodes/${n}`)))
      const up = nodes.every((n) => n?.spec?.podCIDR && n.status?.conditions?.some((c: any) => c.type === 'NetworkUnavailable' && c.status === 'False'))
      return up && nodes[1]
    }, 90_000)
    const [podA, podB] = [await startPod(cluster, a), await startPod(cluster, b)]
    const hostA = { netns: a.host.netns }
    const hostB = { netns: b.host.netns }
    const plain = await throughput(hostA, hostB, b.host.address)
    const tunnel = await throughput(hostA, hostB, overlayAddress(nodeB.spec.podCIDR).replace('/32', ''))
    const pods = await throughput({ pid: podA.pid }, { pid: podB.pid }, podB.ip)
    const mtu = (await new WireGuardLink({ netns: a.host.netns }).show(wireguardInterfaceOf(a.host)))?.mtu
    const mbit = (bps: number) => `${(bps / 1e6).toFixed(1).padStart(8)} Mbit/s`
    console.log(`iperf3, ${SECONDS} s each, between two nodes (network namespaces) on one machine; WireGuard MTU ${mtu}`)
    console.log(`plain link, node to node:      ${mbit(plain)}`)
    console.log(`tunnel, node to node:          ${mbit(tunnel)}   ratio to plain ${(tunnel / plain).toFixed(3)}`)
    console.log(`tunnel, pod to pod:            ${mbit(pods)}   ratio to plain ${(pods / plain).toFixed(3)}`)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${await cluster.diagnostics()}`, { cause: err })
  } finally {
    await cluster.cleanup()
  }
}

await main()
