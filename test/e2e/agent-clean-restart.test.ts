// A clean agent restart is not a node failure (real hub and agent processes on this machine's
// Docker engine, hub flags --node-grace-period 20s --default-toleration-seconds 2): the agent is
// stopped with SIGTERM and started again at once; its node is never tainted unreachable, its pod
// is never evicted and keeps its container. An agent stopped with SIGTERM and left stopped is
// judged by its silence: its node is tainted unreachable once the grace period has passed, and its
// pod is evicted 2 s later. (An agent killed with SIGKILL, whose Last Will arrives, is in
// node-failure.test.ts.)

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const docker = dockerClient()
const NODE = 'ev-restart'
const POD = 'ev-sleeper'
const POD_PATH = `/api/v1/namespaces/default/pods/${POD}`
// The default grace period: a restart under heavy load took 16.8 s once (Node's start-up, the
// TLS handshakes), past the 6 s this test used before.
const GRACE_S = 20
const TOLERATION_S = 2
const UNREACHABLE = 'node.kubernetes.io/unreachable'

/** What the node and the pod looked like at each poll while something happened. */
interface Sighting {
  atMs: number
  unreachable: boolean
  ready?: string
  podUid?: string
  podDeleting: boolean
}

/** Polls the node and the pod every 100 ms until stopped: a taint that comes and goes is seen. */
function observe(hub: HubProcess): { stop(): Promise<Sighting[]> } {
  const seen: Sighting[] = []
  let stopped = false
  const loop = (async () => {
    while (!stopped) {
      const [node, pod] = await Promise.all([apiRequest(hub, 'GET', `/api/v1/nodes/${NODE}`), apiRequest(hub, 'GET', POD_PATH)])
      seen.push({
        atMs: Date.now(),
        unreachable: ((node.json?.spec?.taints ?? []) as any[]).some((x) => x.key === UNREACHABLE),
        ready: ((node.json?.status?.conditions ?? []) as any[]).find((c) => c.type === 'Ready')?.status,
        podUid: pod.status === 200 ? pod.json.metadata.uid : undefined,
        podDeleting: pod.status === 200 && Boolean(pod.json.metadata.deletionTimestamp),
      })
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  return {
    async stop() {
      stopped = true
      await loop
      return seen
    },
  }
}

async function run() {
  await ensureBusyboxImage(docker)
  const hubDir = mkdtempSync(join(tmpdir(), 'ev-restart-hub-'))
  const agentDir = mkdtempSync(join(tmpdir(), 'ev-restart-agent-'))
  let hub: HubProcess | undefined
  let agent: AgentProcess | undefined
  let clusterId: string | undefined
  // One teardown, registered before anything starts: processes first, then containers, then dirs.
  t.teardown(async () => {
    await agent?.stop()
    await hub?.stop()
    closeApiAgents()
    if (clusterId) await removeClusterContainers(docker, clusterId)
    rmSync(agentDir, { recursive: true, force: true })
    rmSync(hubDir, { recursive: true, force: true })
  })
  const hubStartedAt = Date.now()
  hub = await startHubProcess({ dataDir: hubDir, args: ['--node-grace-period', `${GRACE_S}s`, '--default-toleration-seconds', String(TOLERATION_S), '--heartbeat-interval', '1s'] })
  clusterId = readFileSync(join(hub.dataDir, 'cluster-id'), 'utf8').trim()
  const token = await runCli(['token', 'create', '--data-dir', hub.dataDir])
  if (token.code !== 0) throw new Error(`token create: ${token.stderr}`)
  const startAgent = (withToken: boolean) =>
    startAgentProcess({ dataDir: agentDir, hub: new URL(hub.server).host, node: NODE, args: ['--heartbeat-interval', '1s'], ...(withToken ? { token: token.stdout.trim() } : {}) })
  agent = startAgent(true)
  await until('the node registered', async () => (await apiRequest(hub, 'GET', `/api/v1/nodes/${NODE}`)).status === 200, 60_000)
  // The one node of this cluster would otherwise make a full disruption, which pauses evictions.
  const labelled = await apiRequest(hub, 'PATCH', `/api/v1/nodes/${NODE}`, { metadata: { labels: { 'node.kubernetes.io/exclude-disruption': '' } } }, { 'Content-Type': 'application/merge-patch+json' })
  if (labelled.status !== 200) throw new Error(`labelling the node: ${labelled.status} ${labelled.text}`)
  const created = await apiRequest(hub, 'POST', '/api/v1/namespaces/default/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }] },
  })
  if (created.status !== 201) throw new Error(`creating the pod: ${created.status} ${created.text}`)
  const uid = created.json.metadata.uid
  const tolerations = (created.json.spec.tolerations as any[]).map((x) => `${x.key}:${x.tolerationSeconds}`)
  await until('the pod Running', async () => (await apiRequest(hub, 'GET', POD_PATH)).json?.status?.phase === 'Running', 120_000)
  const appContainer = async () => (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': POD }, false)).filter((c) => c.Labels['io.bramble.container.name'] === 'app')
  const [before] = await appContainer()
  // Past the hub's start-up hold (one grace period), so an eviction would not be held back.
  await new Promise((r) => setTimeout(r, Math.max(0, hubStartedAt + (GRACE_S + 1) * 1000 - Date.now())))

  await t.test('an agent stopped with SIGTERM and started again at once: its node is never unreachable, its pod stays', async (t) => {
    t.same(tolerations, [`node.kubernetes.io/not-ready:${TOLERATION_S}`, `${UNREACHABLE}:${TOLERATION_S}`], `the pod tolerates the node taints for ${TOLERATION_S} s`)
    t.ok(before, 'the pod runs a container')
    const watch = observe(hub)
    const stoppedAt = Date.now()
    await agent!.stop('SIGTERM')
    agent = startAgent(false)
    await until('the restarted agent connected to the broker', () => agent!.output().includes('connected to the MQTT broker'), 60_000)
    t.comment(`agent stopped and connected again in ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s`)
    // Long enough for a taint added at the stop to have run out its toleration several times over.
    await new Promise((r) => setTimeout(r, (GRACE_S + TOLERATION_S * 3) * 1000))
    const seen = await watch.stop()
    t.ok(seen.length > 10, `${seen.length} looks at the node and the pod`)
    t.notOk(seen.some((s) => s.unreachable), 'the node was never tainted unreachable')
    t.ok(seen.every((s) => s.podUid === uid && !s.podDeleting), 'the pod was never deleted nor marked for deletion')
    const events = (await apiRequest(hub, 'GET', '/api/v1/namespaces/default/events')).json.items as any[]
    t.notOk(events.some((e) => e.reason === 'TaintManagerEviction'), 'no TaintManagerEviction event')
    const pod = (await apiRequest(hub, 'GET', POD_PATH)).json
    t.equal(pod.status?.phase, 'Running', 'the pod is Running')
    const [after] = await appContainer()
    t.equal(after?.Id, before?.Id, 'the restarted agent adopted the same container')
    t.equal(after?.State, 'running', 'which kept running')
  })

  await t.test('an agent stopped with SIGTERM and left stopped: unreachable after the grace period, its pod evicted after its toleration', async (t) => {
    const stoppedAt = Date.now()
    await agent!.stop('SIGTERM')
    agent = undefined
    const tainted = await until('the node tainted unreachable', async () => ((await apiRequest(hub, 'GET', `/api/v1/nodes/${NODE}`)).json?.spec?.taints ?? []).find((x: any) => x.key === UNREACHABLE), 60_000)
    const taintedAfterS = (Date.parse(tainted.timeAdded) - stoppedAt) / 1000
    t.comment(`tainted ${taintedAfterS.toFixed(1)} s after the stop`)
    // The grace period runs from the last heartbeat (1 s apart) and timeAdded has whole seconds.
    t.ok(taintedAfterS >= GRACE_S - 2, `not before the ${GRACE_S} s grace period (${taintedAfterS.toFixed(1)} s)`)
    await until('the pod evicted', async () => (await apiRequest(hub, 'GET', POD_PATH)).status === 404, 60_000)
    const events = (await apiRequest(hub, 'GET', '/api/v1/namespaces/default/events')).json.items as any[]
    t.ok(events.some((e) => e.reason === 'TaintManagerEviction' && e.involvedObject?.name === POD), 'with a TaintManagerEviction event')
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
