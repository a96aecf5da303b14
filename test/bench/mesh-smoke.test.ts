// bench/mesh at its smallest (1 s per iperf3 measurement), run as `npm run bench` runs it: a real
// hub and two agents in network namespaces of its own (prefix `smk`), one pod each. The plain link,
// tunnel and pod-to-pod lines print positive Mbit/s and ratios, and the run leaves no namespace,
// bridge or run folder of its prefix behind. Skipped without netns, WireGuard or iperf3 support.

import { execFileSync, spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { figuresOf, runBench } from '../helpers/bench-child.js'
import { netnsUnavailable } from '../helpers/netns-host.js'
import { wireguardNetnsUnavailable } from '../helpers/wireguard-netns.js'

const PREFIX = 'smk'
const ofPrefix = (names: string[]) => names.filter((n) => new RegExp(`^${PREFIX}\\d+`).test(n))
const netnsNames = () => execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]!)
const linkNames = () => execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' }).split('\n').map((l) => l.split(': ')[1]?.split('@')[0] ?? '')
const runFolders = () => {
  try {
    return readdirSync(join(tmpdir(), 'bramble-netns'))
  } catch {
    return []
  }
}

t.test('prints plain link, tunnel and pod-to-pod throughput with ratios to the plain link, and cleans up', async (t) => {
  const unavailable =
    (await netnsUnavailable()) ??
    (await wireguardNetnsUnavailable()) ??
    (spawnSync('iperf3', ['--version'], { stdio: 'ignore' }).error ? 'iperf3 is not installed (Debian package iperf3)' : undefined)
  if (unavailable) return t.plan(0, unavailable)
  const r = await runBench('mesh', { BENCH_SECONDS: '1', BENCH_NETNS_PREFIX: PREFIX }, 300)
  t.comment(`${r.stdout}(${r.seconds.toFixed(1)} s)`)
  t.equal(r.code, 0, `the bench exits 0 (stderr: ${r.stderr.slice(-3000)})`)
  const [seconds, mtu] = figuresOf(r.stdout, /iperf3, (\d+) s each, between two nodes \(network namespaces\) on one machine; WireGuard MTU (\d+)/, 'header')
  t.equal(seconds, 1, 'the seconds knob was taken')
  t.ok(mtu! >= 1280 && mtu! <= 1500, `the WireGuard MTU is read (${mtu})`)
  const [plain] = figuresOf(r.stdout, /plain link, node to node:\s+(\d+\.\d) Mbit\/s/, 'plain link')
  t.ok(plain! > 0, 'the plain link carried traffic')
  for (const what of ['tunnel, node to node', 'tunnel, pod to pod']) {
    const [mbit, ratio] = figuresOf(r.stdout, new RegExp(`${what}:\\s+(\\d+\\.\\d) Mbit/s   ratio to plain (\\d+\\.\\d{3})`), what)
    t.ok(mbit! > 0, `${what}: ${mbit} Mbit/s, positive`)
    // Printed to 3 decimals, so a slow tunnel next to a fast veth may show 0.000; it must agree with the figures.
    t.ok(Math.abs(ratio! - mbit! / plain!) < 0.0015, `${what}: ratio ${ratio} is its Mbit/s over the plain link's`)
  }
  t.same(ofPrefix(netnsNames()), [], `no ${PREFIX} network namespace is left`)
  t.same(ofPrefix(linkNames()), [], `no ${PREFIX} bridge is left`)
  t.same(ofPrefix(runFolders()), [], `no ${PREFIX} run folder is left`)
})
