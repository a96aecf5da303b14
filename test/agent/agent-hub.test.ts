// End to end through the real hub (in-process): the agent joins with a token from the hub, its
// Node turns Ready, a Pod applied through the API runs on it, logs come back through the hub,
// and deleting the Pod removes its containers.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { JoinRefusedError } from '../../src/agent/errors.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
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
  const root = await mkdtemp(join(tmpdir(), 'bramble-agent-hub-'))
  const hubDir = join(root, 'hub')
  const hub = await startHub(resolveHubConfig({ dataDir: hubDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
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
  const address = new URL(hub.url).host

  await t.test('an expired token is refused by the real join endpoint with a clear sentence', async (t) => {
    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 1 })
    await new Promise((r) => setTimeout(r, 20))
    const err = await startAgent(
      { dataDir: join(root, 'expired'), hub: address, token, nodeName: 'late', reserve: { cpuMillis: 100, memoryBytes: 0 }, heartbeatIntervalMs: 500 },
      { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() },
    ).catch((e) => e)
    t.ok(err instanceof JoinRefusedError)
    t.equal(err.reason, 'expired')
  })

  await t.test('the agent joins, and its Node turns Ready with its architecture label', async (t) => {
    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
    agent = await startAgent(
      { dataDir: join(root, 'node'), hub: address, token, nodeName: 'pi-e2e', reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 }, heartbeatIntervalMs: 500, resyncMs: 1_000, pods: { defaultGraceSeconds: 1 } },
      { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() },
    )
    const nodeObj = await until('Node Ready', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/nodes/pi-e2e')
      return r.status === 200 && r.json.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') && r.json
    })
    t.equal(nodeObj.metadata.labels['kubernetes.io/arch'], process.arch === 'x64' ? 'amd64' : process.arch)
    t.ok(nodeObj.status.allocatable.cpu)
  })

  await t.test('a pod applied through the API runs on the node, shows Running, and its logs come through the hub', async (t) => {
    const created = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'hello' },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image, command: ['sh', '-c', 'echo hello through the hub; trap "exit 0" TERM; while :; do sleep 1; done'] }] },
    })
    t.equal(created.status, 201)
    const pod = await until('pod Running', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/hello')
      return r.json.status?.phase === 'Running' && r.json
    })
    t.equal(pod.spec.nodeName, 'pi-e2e')
    const logs = await until('logs', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/hello/log')
      return r.status === 200 && /hello through the hub/.test(r.text) && r.text
    })
    t.match(logs, /hello through the hub/)
  })

  await t.test('deleting the pod removes its containers from the node', async (t) => {
    const del = await apiRequest(admin, 'DELETE', '/api/v1/namespaces/default/pods/hello')
    t.ok(del.status === 200 || del.status === 202)
    await until('containers gone', async () => (await runtime.list({ [LABELS.cluster]: hub.clusterId, [LABELS.podName]: 'hello' })).length === 0)
    t.pass('no containers of the pod remain')
  })
}
