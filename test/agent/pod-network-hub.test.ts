// Pod networking through the real hub (in-process) and a real agent on the host's dockerd and
// iptables: the joining node is leased the first /24 of --cluster-cidr, `get nodes -o wide` shows
// it, its pod runs with an IP from it, and an agent restart adopts network, rules and pod.

import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { startAgent, type AgentDeps, type RunningAgent } from '../../src/agent/agent.js'
import { DockerBridgeNetworks } from '../../src/agent/docker-networks.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { IptablesFirewall } from '../../src/agent/host-firewall.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { NETWORK_LABELS } from '../../src/agent/pod-network.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { containsIp, parseCidr } from '../../src/mesh/ipam.js'
import { ruleMarker } from '../../src/mesh/pod-network.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { testClusterCidr } from '../helpers/cluster-cidr.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'

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
    await new Promise((r) => setTimeout(r, 200))
  }
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const root = await mkdtemp(join(tmpdir(), 'bramble-podnet-hub-'))
  // A range of this process's own: another test on this dockerd must not hold an overlapping subnet.
  const second = Number(testClusterCidr().split('.')[1])
  const clusterCidr = `10.${second}.0.0/16`
  const hub = await startHub(resolveHubConfig({ dataDir: join(root, 'hub'), listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi', clusterCidr }, {}), {
    logger: silentLogger(),
    clock: systemClock,
  })
  const networks = new DockerBridgeNetworks(docker)
  const firewall = new IptablesFirewall()
  const deps: AgentDeps = { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger(), podNetwork: { networks, firewall, linkMtu: async () => 1500 } }
  const config = { dataDir: join(root, 'node'), hub: new URL(hub.url).host, nodeName: 'pi-net', reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 }, heartbeatIntervalMs: 500, resyncMs: 1_000, pods: { defaultGraceSeconds: 1 } }
  let agent: RunningAgent | undefined
  t.teardown(async () => {
    await agent?.close()
    await hub.close()
    closeApiAgents()
    await removeClusterContainers(docker, hub.clusterId)
    await rm(root, { recursive: true, force: true })
  })
  const kc = parseYaml(readFileSync(hub.kubeconfigPath, 'utf8'))
  const admin: ApiTarget = { server: kc.clusters[0].cluster.server, ca: Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), token: kc.users[0].user.token }
  const podSubnet = `10.${second}.0.0/24`
  const marker = ruleMarker(hub.clusterId, 'pi-net')
  const ourRules = async () => [...(await firewall.list('filter', 'DOCKER-USER', marker)), ...(await firewall.list('nat', 'POSTROUTING', marker))]

  await t.test('the joining node is leased the first /24 of --cluster-cidr and `get nodes -o wide` shows it', async (t) => {
    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
    agent = await startAgent({ ...config, token }, deps)
    const node = await until('the Node with its subnet', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/nodes/pi-net')
      return r.status === 200 && r.json.spec?.podCIDR && r.json
    })
    t.equal(node.spec.podCIDR, podSubnet)
    const table = await apiRequest(admin, 'GET', '/api/v1/nodes', undefined, { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io' })
    const column = table.json.columnDefinitions.findIndex((c: any) => c.name === 'Pod-CIDR')
    t.ok(column >= 0 && table.json.columnDefinitions[column].priority === 1, 'a -o wide column')
    t.equal(table.json.rows[0].cells[column], podSubnet)
  })

  let podIP = ''
  await t.test("a pod runs with an IP from the node's subnet on the node's own bridge (MTU link - 80)", async (t) => {
    const created = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'addr' },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image, command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }] },
    })
    t.equal(created.status, 201)
    const pod = await until('pod Running with an IP', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/addr')
      return r.json.status?.phase === 'Running' && r.json.status.podIP && r.json
    })
    podIP = pod.status.podIP
    t.ok(containsIp(parseCidr(podSubnet), podIP), `${podIP} is in ${podSubnet}`)
    const [network] = await networks.list({ [NETWORK_LABELS.cluster]: hub.clusterId, [NETWORK_LABELS.node]: 'pi-net' })
    t.equal(network?.subnet, podSubnet)
    t.equal(network?.mtu, 1420)
    t.equal(network?.containers, 1, "the pod's sandbox is on it")
    t.equal((await ourRules()).length, 3)
  })

  await t.test('after an agent restart the network, the rules (once each) and the pod are adopted', async (t) => {
    const [before] = await networks.list({ [NETWORK_LABELS.cluster]: hub.clusterId })
    await agent!.close()
    agent = await startAgent(config, deps)
    await agent.idle()
    const after = await networks.list({ [NETWORK_LABELS.cluster]: hub.clusterId })
    t.same(after.map((n) => n.id), [before!.id], 'the same network')
    t.equal((await ourRules()).length, 3, 'no rule twice')
    await new Promise((r) => setTimeout(r, 1_500)) // a resync or two
    const r = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/addr')
    t.equal(r.json.status.podIP, podIP, 'the pod kept its address: not recreated')
    t.equal((await ourRules()).length, 3, 'still once each after resyncs')
  })
}
