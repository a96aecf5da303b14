// Services from the API to a node, through the real hub (in-process) and a real agent on Docker:
// the Service gets a ClusterIP, the Endpoints controller lists the running pod, the catalog goes
// down the cluster services topic, the agent programs iptables (here in a network namespace of
// its own, so the host is left alone) and its DNS server answers the Service's name. A deleted pod
// leaves rotation within 5 s; with the hub gone, a restarted agent brings the rules back from the
// catalog it kept, without duplicate jumps.

import t from 'tap'
import { execFileSync } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { commandIptables } from '../../src/agent/service-proxy.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { decodeAnswer, encodeQuery } from '../../src/mesh/dns.js'
import { chainsFor } from '../../src/mesh/proxy-rules.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'

const docker = dockerClient()
const unavailable = (await dockerUnavailable(docker)) ?? (process.getuid?.() === 0 ? undefined : 'needs root for iptables in a network namespace')
if (unavailable) t.plan(0, unavailable)
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

async function ask(port: number, name: string) {
  const s = createSocket('udp4')
  try {
    return await new Promise<ReturnType<typeof decodeAnswer>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no DNS answer for ${name}`)), 5000)
      s.on('message', (msg) => {
        clearTimeout(timer)
        resolve(decodeAnswer(msg))
      })
      s.send(encodeQuery(1, name), port, '127.0.0.1')
    })
  } finally {
    s.close()
  }
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const root = await mkdtemp(join(tmpdir(), 'bramble-services-'))
  const ns = `bramble-svc-${process.pid}`
  execFileSync('ip', ['netns', 'add', ns])
  const inNs = ['ip', 'netns', 'exec', ns]
  const save = () => execFileSync(inNs[0]!, [...inNs.slice(1), 'iptables-save', '-t', 'nat'], { encoding: 'utf8' })
  let hub = await startHub(resolveHubConfig({ dataDir: join(root, 'hub'), listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi', serviceCidr: '10.96.0.0/24' }, {}), { logger: silentLogger(), clock: systemClock })
  let agent: RunningAgent | undefined
  t.teardown(async () => {
    await agent?.close()
    await hub.close()
    closeApiAgents()
    await removeClusterContainers(docker, hub.clusterId)
    execFileSync('ip', ['netns', 'del', ns])
    await rm(root, { recursive: true, force: true })
  })
  const kc = parseYaml(readFileSync(hub.kubeconfigPath, 'utf8'))
  const admin: ApiTarget = { server: kc.clusters[0].cluster.server, ca: Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), token: kc.users[0].user.token }
  const agentConfig = (hubAddress: string, token: string) => ({
    dataDir: join(root, 'node'),
    hub: hubAddress,
    token,
    nodeName: 'svc-node',
    reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
    heartbeatIntervalMs: 500,
    resyncMs: 1_000,
    pods: { defaultGraceSeconds: 1 },
    services: { dnsAddress: '127.0.0.1', dnsPort: 0, upstreams: [] },
  })
  const deps = { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger(), iptables: commandIptables(inNs) }
  const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
  agent = await startAgent(agentConfig(new URL(hub.url).host, token), deps)

  let podIP = ''
  await t.test('a Service and its running pod reach the node: rules and DNS', async (t) => {
    const svc = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] } })
    t.equal(svc.status, 201)
    t.equal(svc.json.spec.clusterIP, '10.96.0.1', 'the first address of --service-cidr')
    const pod = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', labels: { app: 'web' } },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image, command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }] },
    })
    t.equal(pod.status, 201)
    const ep = await until('Endpoints with the pod', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/endpoints/web')
      return r.status === 200 && r.json.subsets?.[0]?.addresses?.length === 1 && r.json
    })
    podIP = ep.subsets[0].addresses[0].ip
    const rules = await until('DNAT to the pod on the node', () => save().includes(`--to-destination ${podIP}:8080`) && save())
    t.match(rules, `-A ${chainsFor(hub.clusterId).services} -d 10.96.0.1/32 -p tcp -m tcp --dport 80`)
    t.ok(existsSync(join(root, 'node', 'agent', 'services.json')), 'the catalog is kept on disk')
    const answer = await ask(agent!.services!.dnsPort!, 'web.default.svc.cluster.local')
    t.same(answer.addresses, ['10.96.0.1'], "the node's DNS answers the Service name with its ClusterIP")
  })

  await t.test('a deleted pod leaves rotation on the node within 5 s', async (t) => {
    const started = Date.now()
    await apiRequest(admin, 'DELETE', '/api/v1/namespaces/default/pods/web-1')
    await until('no DNAT to the pod', () => !save().includes(podIP), 5_000)
    t.pass(`out of rotation after ${Date.now() - started} ms`)
    t.match(execFileSync(inNs[0]!, [...inNs.slice(1), 'iptables-save', '-t', 'filter'], { encoding: 'utf8' }), /10\.96\.0\.1\/32 .*has no endpoints" -j REJECT/, 'now refused at once')
  })

  await t.test('with the hub gone, a restarted agent programs the kept catalog again, without duplicates', async (t) => {
    await agent!.close()
    agent = undefined
    await hub.close()
    // Someone flushed the rules while the agent was down.
    const c = chainsFor(hub.clusterId)
    execFileSync(inNs[0]!, [...inNs.slice(1), 'iptables', '-t', 'nat', '-F', c.services])
    agent = await startAgent(agentConfig('', ''), deps)
    await agent.services!.idle()
    const rules = save()
    t.match(rules, `-A ${c.services} -m addrtype --dst-type LOCAL -j ${c.nodePorts}`, 'our chains are back')
    t.equal(rules.split('\n').filter((l) => l.startsWith('-A PREROUTING') && l.includes(c.services)).length, 1, 'one PREROUTING jump')
    t.equal(rules.split('\n').filter((l) => l.startsWith('-A OUTPUT') && l.includes(c.services)).length, 1, 'one OUTPUT jump')
    t.same((await ask(agent.services!.dnsPort!, 'web.default.svc.cluster.local')).addresses, ['10.96.0.1'], 'DNS answers from the kept catalog')
    // The hub process is gone: keep teardown from closing it twice.
    hub = { ...hub, close: async () => {} }
  })
}
