// The pod network against a real dockerd and the host's real iptables: the node's bridge network
// owns its pod subnet, pods get addresses from it (both containers of a pod share one), the
// rules are there once, also after an agent restart, and a new lease replaces network and rules.

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { DockerBridgeNetworks } from '../../src/agent/docker-networks.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { IptablesFirewall } from '../../src/agent/host-firewall.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { DEFAULT_PAUSE_IMAGE } from '../../src/agent/pod-pause-image.js'
import { NETWORK_LABELS, PodNetwork } from '../../src/agent/pod-network.js'
import type { PlanSettings } from '../../src/agent/pod-planner.js'
import { PodReconciler } from '../../src/agent/pod-reconciler.js'
import type { KubeObject } from '../../src/api/types.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { containsIp, parseCidr } from '../../src/mesh/ipam.js'
import { ANNOTATION_CLUSTER_CIDR, ruleMarker } from '../../src/mesh/pod-network.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { testClusterCidr } from '../helpers/cluster-cidr.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else if (process.getuid?.() !== 0) t.plan(0, 'iptables needs root')
else await run()

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function run() {
  const clusterId = testClusterId()
  // A range of this process's own: another test on this dockerd must not hold an overlapping subnet.
  const second = Number(testClusterCidr().split('.')[1])
  const clusterCidr = `10.${second}.0.0/16`
  const firstLease = `10.${second}.7.0/24`
  const nextLease = `10.${second}.8.0/24`
  const node = (podCIDR: string): KubeObject =>
    ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1', namespace: '', uid: 'u1', annotations: { [ANNOTATION_CLUSTER_CIDR]: clusterCidr } }, spec: { podCIDR, podCIDRs: [podCIDR] } }) as KubeObject
  const networks = new DockerBridgeNetworks(docker)
  const firewall = new IptablesFirewall()
  const marker = ruleMarker(clusterId, 'pi-1')
  const podNetwork = () => new PodNetwork({ networks, firewall, clusterId, node: 'pi-1', mtu: 1400, logger: silentLogger() })
  const ourRules = async () => [...(await firewall.list('filter', 'DOCKER-USER', marker)), ...(await firewall.list('nat', 'POSTROUTING', marker))].map((r) => `${r.table} ${r.chain} ${r.args.join(' ')}`)
  const podsDir = await mkdtemp(join(tmpdir(), 'bramble-podnet-'))
  t.teardown(async () => {
    await removeClusterContainers(docker, clusterId)
    await rm(podsDir, { recursive: true, force: true })
  })

  t.test('without a subnet from the hub there is no network: pods stay on the default bridge', async (t) => {
    t.equal(await podNetwork().sync(undefined), undefined)
    t.equal(await podNetwork().sync({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1' }, spec: {} } as KubeObject), undefined)
    t.same(await networks.list({ [NETWORK_LABELS.cluster]: clusterId }), [])
    t.same(await ourRules(), [])
  })

  t.test("the firewall tells Docker's DOCKER-USER chain (this dockerd programs iptables) from a chain nobody made", async (t) => {
    t.equal(await firewall.hasChain('filter', 'DOCKER-USER'), true)
    t.equal(await firewall.hasChain('filter', 'FORWARD'), true, 'a built-in chain')
    t.equal(await firewall.hasChain('filter', 'BRAMBLE-NO-SUCH-CHAIN'), false)
  })

  let bridge = ''
  t.test("the node's bridge network owns its subnet, with the MTU asked for and Docker's masquerade off", async (t) => {
    const name = await podNetwork().sync(node(firstLease))
    t.equal(name, `bramble-${clusterId}-10.${second}.7.0-24`)
    const [n] = await networks.list({ [NETWORK_LABELS.cluster]: clusterId, [NETWORK_LABELS.node]: 'pi-1' })
    t.equal(n?.name, name)
    t.equal(n?.subnet, firstLease)
    t.equal(n?.mtu, 1400)
    const inspected = await docker.getNetwork(n!.id).inspect()
    t.equal(inspected.IPAM?.Config?.[0]?.Gateway, `10.${second}.7.1`)
    t.equal(inspected.Options?.['com.docker.network.bridge.enable_ip_masquerade'], 'false')
    bridge = n!.bridge
  })

  t.test('cluster traffic is accepted into and out of the bridge, and only traffic leaving the cluster is masqueraded', async (t) => {
    t.same((await ourRules()).sort(), [
      `filter DOCKER-USER -d ${clusterCidr} -i ${bridge} -m comment --comment ${marker} -j ACCEPT`,
      `filter DOCKER-USER -s ${clusterCidr} -o ${bridge} -m comment --comment ${marker} -j ACCEPT`,
      `nat POSTROUTING -s ${firstLease} ! -d ${clusterCidr} ! -o ${bridge} -m comment --comment ${marker} -j MASQUERADE`,
    ])
  })

  t.test('syncing again, and an agent restart (a new PodNetwork), adopt the network and add no rule twice', async (t) => {
    const before = await networks.list({ [NETWORK_LABELS.cluster]: clusterId })
    await podNetwork().sync(node(firstLease))
    const restarted = podNetwork()
    await restarted.sync(node(firstLease))
    await restarted.sync(node(firstLease))
    const after = await networks.list({ [NETWORK_LABELS.cluster]: clusterId })
    t.same(after.map((n) => n.id), before.map((n) => n.id), 'the same network')
    t.equal((await ourRules()).length, 3, 'each rule once')
  })

  t.test('a lost rule comes back on the next sync', async (t) => {
    const [masquerade] = await firewall.list('nat', 'POSTROUTING', marker)
    await firewall.delete(masquerade!)
    t.equal((await ourRules()).length, 2)
    await podNetwork().sync(node(firstLease))
    t.equal((await ourRules()).length, 3)
  })

  t.test('a pod gets an address in the subnet, its containers share it, and the status reports it', async (t) => {
    const image = await ensureBusyboxImage(docker)
    const runtime = new DockerRuntime(docker)
    const network = await podNetwork().sync(node(firstLease))
    const settings: PlanSettings = {
      clusterId,
      podsDir,
      secretsDir: join(podsDir, 'secrets'),
      pauseImage: DEFAULT_PAUSE_IMAGE,
      network,
      log: { maxSize: '1m', maxFile: 2 },
      defaultGraceSeconds: 1,
      backoff: { initialMs: 300, maxMs: 1_000, resetAfterMs: 600_000 },
    }
    const sleeper = (name: string) => ({ name, image, command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] })
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'two', namespace: 'default', uid: `uid-two-${clusterId}` }, spec: { terminationGracePeriodSeconds: 1, containers: [sleeper('a'), sleeper('b')] } } as KubeObject
    const statuses: any[] = []
    const reconciler = new PodReconciler({
      runtime,
      clock: systemClock,
      logger: silentLogger(),
      settings,
      hostIP: '127.0.0.1',
      desired: () => [{ pod, configMaps: {}, secrets: {} }],
      onPodStatus: (_key, _uid, status) => statuses.push(status),
      onEvent: () => {},
      resyncMs: 1_000,
    })
    await reconciler.start()
    t.teardown(() => reconciler.stop())
    const running = await until('the pod running with an IP', () => statuses.find((s) => s.phase === 'Running' && s.podIP))
    t.ok(containsIp(parseCidr(firstLease), running.podIP), `${running.podIP} is in ${firstLease}`)
    t.same(running.podIPs, [{ ip: running.podIP }])
    for (const name of ['a', 'b']) {
      const [c] = await runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: String(pod.metadata.uid), [LABELS.containerName]: name })
      const out = await runtime.exec(c!.id, ['ip', '-4', '-o', 'addr', 'show', 'eth0'])
      t.match(out.output, new RegExp(` inet ${running.podIP.replaceAll('.', '\\.')}/24 `), `container ${name} has the pod's address`)
      const mtu = await runtime.exec(c!.id, ['cat', '/sys/class/net/eth0/mtu'])
      t.equal(mtu.output.trim(), '1400', `container ${name} has the bridge MTU`)
    }

    t.test('a new lease makes a new network; the pod moves to it and the old network and rules go', async (t) => {
      const moved = await podNetwork().sync(node(nextLease))
      reconciler.setPodNetwork(moved)
      const again = await until('the pod running on the new subnet', () => [...statuses].reverse().find((s) => s.phase === 'Running' && s.podIP && containsIp(parseCidr(nextLease), s.podIP)))
      t.ok(again, `now ${again.podIP}`)
      await podNetwork().sync(node(nextLease))
      const left = await networks.list({ [NETWORK_LABELS.cluster]: clusterId })
      t.same(left.map((n) => n.subnet), [nextLease], 'the old network is removed once no pod uses it')
      const rules = await ourRules()
      t.equal(rules.length, 3)
      t.ok(rules.every((r) => !r.includes(bridge)), "no rule of the old bridge is left")
      t.ok(rules.some((r) => r.includes(`-s ${nextLease} `)), 'the masquerade rule names the new subnet')
    })
  })
}
