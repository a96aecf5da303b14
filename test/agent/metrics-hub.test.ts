// Observability end to end on the shared dockerd, with a real hub and a real agent (in-process):
// the hub's /metrics behind the API's tokens and the agent's on its loopback listener, values
// that move (API requests, pods by phase, scheduling, MQTT messages, container operations), a
// running pod's CPU and memory read from its cgroup and served by metrics.k8s.io, `bramble top`
// and the pinned kubectl's `top` printing them.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { request as httpRequest } from 'node:http'
import { parse as parseYaml } from 'yaml'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { openClientContext, type Output } from '../../src/cli/client-context.js'
import { runTopNodes, runTopPods } from '../../src/cli/top-command.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { BRAMBLE_BIN } from '../helpers/hub-process.js'
import { pinnedKubectls, runKubectl } from '../helpers/kubectl.js'
import { sampleValue } from '../helpers/prometheus-text.js'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

function scrapeAgent(port: number): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    httpRequest({ host: '127.0.0.1', port, path: '/metrics' }, (res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
      .on('error', reject)
      .end()
  })
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const root = await mkdtemp(join(tmpdir(), 'mt-metrics-hub-'))
  const hub = await startHub(resolveHubConfig({ dataDir: join(root, 'hub'), listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi', heartbeatInterval: '1s' }, {}), {
    logger: silentLogger(),
    clock: systemClock,
  })
  let agent: RunningAgent | undefined
  t.teardown(async () => {
    await agent?.close()
    await hub.close()
    closeApiAgents()
    await removeClusterContainers(docker, hub.clusterId)
    await rm(root, { recursive: true, force: true })
  })
  const kc = parseYaml(readFileSync(hub.kubeconfigPath, 'utf8'))
  const server = kc.clusters[0].cluster.server
  const ca = Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()
  const admin: ApiTarget = { server, ca, token: kc.users[0].user.token }
  const viewer: ApiTarget = { server, ca, token: await hub.tokens.issueUserToken('mt-viewer', 'read-only') }
  const scrapeHub = async () => {
    const r = await apiRequest(viewer, 'GET', '/metrics')
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.text}`)
    return r.text
  }

  const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
  agent = await startAgent(
    {
      dataDir: join(root, 'node'),
      hub: new URL(hub.url).host,
      token,
      nodeName: 'mt-pi',
      reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
      heartbeatIntervalMs: 1_000,
      resyncMs: 2_000,
      pods: { defaultGraceSeconds: 1 },
      metrics: { host: '127.0.0.1', port: 0 },
    },
    { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() },
  )
  const agentPort = agent.metricsPort!
  await until('Node Ready', async () => {
    const r = await apiRequest(admin, 'GET', '/api/v1/nodes/mt-pi')
    return r.json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
  })

  await t.test("the hub's /metrics needs a token of the API; a read-only one will do", async (t) => {
    t.equal((await apiRequest({ server, ca }, 'GET', '/metrics')).status, 401)
    t.equal((await apiRequest({ server, ca, token: 'not-a-token' }, 'GET', '/metrics')).status, 401)
    const r = await apiRequest(viewer, 'GET', '/metrics')
    t.equal(r.status, 200)
    t.match(String(r.headers['content-type']), /^text\/plain/)
    t.ok(sampleValue(r.text, 'bramble_store_revision')! > 0, 'store revision')
    t.ok(sampleValue(r.text, 'bramble_store_size_bytes')! > 0, 'store size')
    t.ok(sampleValue(r.text, 'process_resident_memory_bytes')! > 0, "the hub's own memory")
  })

  await t.test('the API request counter moves with requests', async (t) => {
    const before = sampleValue(await scrapeHub(), 'bramble_api_requests_total', { verb: 'get', resource: 'nodes', code: '200' }) ?? 0
    for (let i = 0; i < 3; i++) t.equal((await apiRequest(admin, 'GET', '/api/v1/nodes/mt-pi')).status, 200)
    t.equal((await apiRequest(admin, 'GET', '/api/v1/nodes/mt-missing')).status, 404)
    const text = await scrapeHub()
    t.equal(sampleValue(text, 'bramble_api_requests_total', { verb: 'get', resource: 'nodes', code: '200' }), before + 3)
    t.equal(sampleValue(text, 'bramble_api_requests_total', { verb: 'get', resource: 'nodes', code: '404' }), 1)
    t.ok(sampleValue(text, 'bramble_api_request_duration_seconds_count', { verb: 'get', resource: 'nodes' })! >= before + 4, 'latency observed per request')
  })

  await t.test("the nodes' conditions, heartbeat figures and MQTT traffic show on the hub", async (t) => {
    const text = await until('heartbeat figures', async () => {
      const s = await scrapeHub()
      return sampleValue(s, 'bramble_node_memory_bytes', { node: 'mt-pi' }) !== undefined && s
    })
    t.equal(sampleValue(text, 'bramble_nodes', { condition: 'Ready', status: 'True' }), 1)
    t.ok(sampleValue(text, 'bramble_node_memory_bytes', { node: 'mt-pi' })! > 0)
    const cpu = sampleValue(text, 'bramble_node_cpu_ratio', { node: 'mt-pi' })!
    t.ok(cpu >= 0 && cpu <= 1, `cpu ratio ${cpu} within 0..1`)
    t.ok(sampleValue(text, 'bramble_mqtt_messages_total', { direction: 'in', kind: 'heartbeat' })! > 0, 'heartbeats counted in')
    t.ok(sampleValue(text, 'bramble_mqtt_messages_total', { direction: 'out', kind: 'desired' })! > 0, 'desired state counted out')
  })

  await t.test('a running pod is counted by phase on both sides, and its usage comes from its cgroup', async (t) => {
    const before = await scrapeHub()
    t.notOk(sampleValue(before, 'bramble_pods', { phase: 'Running' }), 'no pod runs yet')
    const created = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'mt-busy', labels: { app: 'mt-busy' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        // A little CPU every second and a few MiB of memory held (a shell variable).
        containers: [{ name: 'work', image, command: ['sh', '-c', 'x=$(head -c 4000000 /dev/zero | tr "\\0" a); trap "exit 0" TERM; while :; do i=0; while [ $i -lt 3000 ]; do i=$((i+1)); done; sleep 1; done'] }],
      },
    })
    t.equal(created.status, 201)
    const hubText = await until('Running counted at the hub', async () => {
      const s = await scrapeHub()
      return sampleValue(s, 'bramble_pods', { phase: 'Running' }) === 1 && s
    })
    t.ok(sampleValue(hubText, 'bramble_scheduling_attempts_total', { result: 'scheduled' })! >= 1, 'a scheduling attempt counted')
    t.ok(sampleValue(hubText, 'bramble_scheduling_duration_seconds_count', { result: 'scheduled' })! >= 1, 'its latency observed')

    const agentText = await until('Running counted at the agent', async () => {
      const r = await scrapeAgent(agentPort)
      return r.status === 200 && sampleValue(r.text, 'bramble_agent_pods', { phase: 'Running' }) === 1 && r.text
    })
    t.ok(sampleValue(agentText, 'bramble_agent_container_operations_total', { operation: 'create', result: 'ok' })! >= 2, 'sandbox and app containers created')
    t.ok(sampleValue(agentText, 'bramble_agent_container_operations_total', { operation: 'start', result: 'ok' })! >= 2, 'and started')
    t.ok(sampleValue(agentText, 'bramble_agent_mqtt_messages_total', { direction: 'out', kind: 'heartbeat' })! > 0, 'heartbeats counted out')
    t.ok(sampleValue(agentText, 'bramble_agent_mqtt_messages_total', { direction: 'in', kind: 'desired' })! > 0, 'desired state counted in')
    t.ok(sampleValue(agentText, 'process_resident_memory_bytes')! > 0, "the agent's own memory")
    t.ok(sampleValue(agentText, 'bramble_node_memory_bytes')! > 0, "the node's memory")

    // The shell fills its variable right after it starts: wait for a report made after that.
    const metrics = await until('pod metrics with the CPU used and the 4 MB held', async () => {
      const r = await apiRequest(viewer, 'GET', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/mt-busy')
      const c = r.json?.containers?.[0]
      return r.status === 200 && c && Number.parseInt(c.usage.cpu) > 0 && Number.parseInt(c.usage.memory) * 1024 > 4_000_000 && r.json
    })
    t.equal(metrics.kind, 'PodMetrics')
    t.equal(metrics.containers[0].name, 'work')
    t.match(metrics.containers[0].usage, { cpu: /^\d+n$/, memory: /^\d+Ki$/ })
    t.ok(Number.parseInt(metrics.containers[0].usage.memory) * 1024 > 4_000_000, `the 4 MB the shell holds are counted (${metrics.containers[0].usage.memory})`)
  })

  await t.test('metrics.k8s.io is in discovery and lists nodes and pods', async (t) => {
    const groups = (await apiRequest(viewer, 'GET', '/apis')).json.groups.map((g: any) => g.name)
    t.ok(groups.includes('metrics.k8s.io'))
    const resources = (await apiRequest(viewer, 'GET', '/apis/metrics.k8s.io/v1beta1')).json.resources.map((r: any) => r.name)
    t.same(resources, ['nodes', 'pods'])
    const nodes = (await apiRequest(viewer, 'GET', '/apis/metrics.k8s.io/v1beta1/nodes')).json
    t.equal(nodes.kind, 'NodeMetricsList')
    t.same(nodes.items.map((n: any) => n.metadata.name), ['mt-pi'])
    const selected = (await apiRequest(viewer, 'GET', '/apis/metrics.k8s.io/v1beta1/pods?labelSelector=app%3Dnone')).json
    t.same(selected.items, [], 'the label selector applies')
    const missing = await apiRequest(viewer, 'GET', '/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/mt-nothing')
    t.equal(missing.status, 404)
    t.match(missing.json.message, /pods.metrics.k8s.io "mt-nothing" not found/)
  })

  await t.test("bramble top prints the node's and the running pod's usage", async (t) => {
    let out = ''
    let err = ''
    const io: Output = { out: (s) => (out += s), err: (s) => (err += s) }
    const ctx = openClientContext({ kubeconfig: hub.kubeconfigPath }, {}, io)
    try {
      await runTopPods(ctx, undefined, {})
      t.match(out, /^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\n/)
      t.match(out, /\nmt-busy\s+\d+m\s+\d+Mi\n/)
      out = ''
      await runTopPods(ctx, 'mt-busy', { containers: true })
      t.match(out, /^POD\s+NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\nmt-busy\s+work\s+\d+m\s+\d+Mi\n$/)
      out = ''
      await runTopNodes(ctx, undefined, {})
      t.match(out, /^NAME\s+CPU\(cores\)\s+CPU\(%\)\s+MEMORY\(bytes\)\s+MEMORY\(%\)\s+TEMPERATURE\nmt-pi\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%\s+/)
      t.equal(err, '')
    } finally {
      ctx.client.close()
    }
  })

  await t.test('the bramble binary prints the same through its top command', async (t) => {
    if (!existsSync(BRAMBLE_BIN)) return void t.plan(0, 'dist/ is not built (npm test builds it)')
    const run = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
        execFile(process.execPath, [BRAMBLE_BIN, '--kubeconfig', hub.kubeconfigPath, ...args], { timeout: 60_000 }, (err, stdout, stderr) => resolve({ code: err ? Number((err as any).code ?? 1) : 0, stdout, stderr })),
      )
    const pods = await run(['top', 'pods', '-l', 'app=mt-busy'])
    t.equal(pods.code, 0, pods.stderr)
    t.match(pods.stdout, /^NAME\s+CPU\(cores\)\s+MEMORY\(bytes\)\nmt-busy\s+\d+m\s+\d+Mi\n$/)
    const missing = await run(['top', 'pods', 'mt-nothing'])
    t.equal(missing.code, 1)
    t.match(missing.stderr, /metrics not available for pod default\/mt-nothing/)
  })

  await t.test('every pinned kubectl top works against the hub', async (t) => {
    const kubectls = pinnedKubectls()
    if (kubectls.length === 0) return void t.plan(0, 'no pinned kubectl on this machine')
    const home = join(root, 'kubectl-home')
    for (const { version, bin } of kubectls) {
      const nodes = await runKubectl(bin, hub.kubeconfigPath, home, ['top', 'nodes'])
      t.equal(nodes.code, 0, `kubectl ${version} top nodes: ${nodes.stderr}`)
      t.match(nodes.stdout, /mt-pi\s+\d+m\s+\d+%\s+\d+Mi\s+\d+%/, `kubectl ${version} top nodes`)
      const pods = await runKubectl(bin, hub.kubeconfigPath, home, ['top', 'pods', '--containers'])
      t.equal(pods.code, 0, `kubectl ${version} top pods: ${pods.stderr}`)
      t.match(pods.stdout, /mt-busy\s+work\s+\d+m\s+\d+Mi/, `kubectl ${version} top pods --containers`)
    }
  })
}
