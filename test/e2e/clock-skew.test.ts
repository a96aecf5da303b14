// A node whose clock is minutes off, through the real binaries: the agent runs with its wall clock
// 10 minutes ahead of the hub's, then 10 minutes behind (libfaketime; its monotonic clock is left
// alone). Nothing misfires: the node stays Ready well past a short grace period and its pods are
// neither tainted away nor evicted (the hub judges heartbeats by its own monotonic time); TLS to
// the hub works (certificates are backdated); the times the node reports (Node conditions, pod
// conditions and start time, events) read right beside the hub's, as the hub corrects them by the
// offset it learns from heartbeats; and a crash-looping container keeps its back-off, neither
// restarting without delay nor stalling for the skew.
//
// Docker itself cannot be skewed here (Go reads the clock without libc), so the engine's own
// times (a container's startedAt, a pod's startTime) are not checked: on a real node they share
// the node's clock.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { runCli, until } from '../helpers/e2e.js'
import { faultHostUnavailable, startFaultHost, type FaultAgent, type FaultHost } from '../helpers/fault-host.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const NODE = 'f2-skew'
const SKEW_MS = 10 * 60_000
/** Times the hub shows are at second precision and a report takes a moment to arrive. */
const SANE_MS = 10_000
const pod = (name: string, script: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', script] }] },
})

async function run(): Promise<void> {
  let host: FaultHost | undefined
  let hub: HubProcess | undefined
  let agent: FaultAgent | undefined
  let hubLog = ''
  const hubDir = mkdtempSync(join(tmpdir(), 'f2-hub-'))
  const started = Date.now()
  t.teardown(async () => {
    await agent?.stop('SIGKILL')
    await hub?.stop()
    closeApiAgents()
    await host?.cleanup()
    rmSync(hubDir, { recursive: true, force: true })
  })
  host = await startFaultHost('f2skew', 23)
  // A short grace period: a node misjudged silent would be tainted unreachable within seconds. The
  // default toleration stays long enough for the agent's own restart between the two phases.
  hub = await startHubProcess({ dataDir: hubDir, args: ['--listen', host.hubAddress, '--advertise', host.hubAddress, '--node-grace-period', '8s', '--default-toleration-seconds', '120'] })
  hub.child.stdout!.on('data', (d) => (hubLog += d))
  hub.child.stderr!.on('data', (d) => (hubLog += d))
  const hubAddress = `${host.hubAddress}:${new URL(hub.server).port}`
  const agentDir = join(host.dir, 'agent-data')
  const token = await runCli(['token', 'create', '--data-dir', hubDir])
  const api = async (path: string) => (await apiRequest(hub!, 'GET', path)).json
  const getNode = () => api(`/api/v1/nodes/${NODE}`)
  const getPod = (name: string) => api(`/api/v1/namespaces/default/pods/${name}`)
  const containerOf = async (name: string) => (await host!.docker.listContainers({ filters: { label: [`io.bramble.pod.name=${name}`, 'io.bramble.container.role=app'] } }))[0]
  const restarts = async (name: string): Promise<number> => (await getPod(name))?.status?.containerStatuses?.[0]?.restartCount ?? 0

  /** The times the node reports, as the API shows them: none before the test began, none in the future. */
  const checkTimes = async (t: Test, from: number) => {
    const now = Date.now()
    const sane = (what: string, iso: unknown) => {
      const ms = Date.parse(String(iso))
      t.ok(ms >= started - SANE_MS && ms <= now + SANE_MS, `${what} ${String(iso)} lies between the test's start and now (${new Date(now).toISOString()})`)
    }
    for (const c of (await getNode()).status.conditions) {
      sane(`Node ${c.type} lastHeartbeatTime`, c.lastHeartbeatTime)
      sane(`Node ${c.type} lastTransitionTime`, c.lastTransitionTime)
    }
    const steady = await until('steady reports its conditions', async () => {
      const p = await getPod('steady')
      return Array.isArray(p?.status?.conditions) && p.status.conditions.some((c: any) => c.type === 'Ready' && c.status === 'True') && p
    })
    for (const c of steady.status.conditions) sane(`pod ${c.type} lastTransitionTime`, c.lastTransitionTime)
    const events = (await api(`/api/v1/namespaces/default/events`))?.items ?? []
    const recent = events.filter((e: any) => e.reportingComponent === 'bramble-agent' && Date.parse(e.metadata.creationTimestamp) >= from - 1000)
    t.ok(recent.length > 0, `the node reported events in this phase (${recent.length})`)
    for (const e of recent) sane(`event ${e.reason} lastTimestamp`, e.lastTimestamp)
  }

  /** Watches for `ms`: the node stays Ready and untainted, steady keeps its container, nothing is evicted. */
  const staysReady = async (t: Test, ms: number) => {
    const steadyId = (await containerOf('steady'))?.Id
    const end = Date.now() + ms
    let checks = 0
    while (Date.now() < end) {
      const node = await getNode()
      const ready = node?.status?.conditions?.find((c: any) => c.type === 'Ready')
      if (ready?.status !== 'True') return t.fail(`the node left Ready: ${JSON.stringify(ready)}`)
      const taints = (node.spec?.taints ?? []).map((x: any) => x.key)
      if (taints.length > 0) return t.fail(`the node was tainted: ${taints.join(', ')}`)
      const steady = await getPod('steady')
      if (!steady || steady.metadata.deletionTimestamp) return t.fail('the steady pod was evicted')
      checks++
      await new Promise((r) => setTimeout(r, 1000))
    }
    t.pass(`Ready and untainted through ${checks} checks over ${ms / 1000} s (grace period 8 s)`)
    const now = await containerOf('steady')
    const all = now?.Id === steadyId ? [] : await host!.docker.listContainers({ all: true, filters: { label: ['io.bramble.pod.name=steady'] } })
    t.equal(now?.Id, steadyId, `the steady pod kept its container${now?.Id === steadyId ? '' : `; containers: ${JSON.stringify(all.map((c) => [c.Id.slice(0, 12), c.State, c.Status, c.Labels['io.bramble.container.role']]))}; pod: ${JSON.stringify(await getPod('steady'))}; agent log:\n${agent!.output().slice(-12000)}`}`)
  }

  await t.test('a node 10 minutes ahead joins over TLS and stays Ready; its pods stay', async (t) => {
    t.equal(token.code, 0, token.stderr)
    const from = Date.now()
    agent = host!.startAgent({ node: NODE, hub: hubAddress, dataDir: agentDir, token: token.stdout.trim(), clockOffset: `+${SKEW_MS / 1000}s` })
    await until('Node Ready', async () => (await getNode())?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
    for (const p of [pod('steady', 'trap "exit 0" TERM; while :; do sleep 1; done'), pod('crasher', 'exit 1')]) {
      t.equal((await apiRequest(hub!, 'POST', '/api/v1/namespaces/default/pods', p)).status, 201)
    }
    await until('steady Running', async () => (await getPod('steady'))?.status?.phase === 'Running')
    await until('the hub names the skew', () => /clock of node f2-skew is 10m ahead of the hub's/.test(hubLog))
    await staysReady(t, 20_000)
    await checkTimes(t, from)
    t.match(agent!.output(), /"msg":"pod loop started/, 'the agent runs')
  })

  await t.test('10 minutes ahead, the crash-looping container keeps its back-off', async (t) => {
    await until('crasher restarted twice', async () => (await restarts('crasher')) >= 2)
    const before = await restarts('crasher')
    await new Promise((r) => setTimeout(r, 15_000))
    const after = await restarts('crasher')
    t.ok(after - before <= 3, `at most a few restarts in 15 s (${before} → ${after}): the back-off holds`)
  })

  await t.test('the same node 10 minutes behind: still Ready, pods stay, times sane, the crash loop goes on', async (t) => {
    await agent!.stop()
    hubLog = ''
    const from = Date.now()
    const before = await restarts('crasher')
    agent = host!.startAgent({ node: NODE, hub: hubAddress, dataDir: agentDir, clockOffset: `-${SKEW_MS / 1000}s` })
    await until('the hub names the new skew', () => /clock of node f2-skew is 10m behind the hub's/.test(hubLog))
    // Its restart is a short absence (a clean goodbye leaves the node be until its grace period is up): it stays untainted.
    await until('Node Ready and untainted', async () => {
      const n = await getNode()
      return n?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') && (n.spec?.taints ?? []).length === 0
    })
    await staysReady(t, 20_000)
    await checkTimes(t, from)
    // Its last exit is 10 minutes in the agent's future by the engine's clock: no 10-minute stall.
    const later = await until('crasher restarted again', async () => {
      const n = await restarts('crasher')
      return n > before && n
    })
    t.ok(later > before, `restartCount ${before} → ${later}`)
  })
}

const unavailable = await faultHostUnavailable({ faketime: true })
if (unavailable) t.plan(0, unavailable)
else await run()
