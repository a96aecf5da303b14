// A power cut, through the real binaries: while API writes stream in and the node's pods are
// relabelled (desired-state messages the agent's replica stores), the hub and the agent are
// SIGKILLed together and every container of the node is killed, as when the power goes. Both come
// back on their data dirs: the store and the replica open, every acknowledged write is there, the
// agent runs the same pods again, each container once, and the API's pod status converges to
// what runs.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type Docker from 'dockerode'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { freePort, runCli, until } from '../helpers/e2e.js'
import { faultHostUnavailable, startFaultHost, type FaultAgent, type FaultHost } from '../helpers/fault-host.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const NODE = 'f2-power'
const WRITERS = 4
const LOOP = 'trap "exit 0" TERM; while :; do sleep 1; done'
const container = (name: string) => ({ name, image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', LOOP] })
const PODS = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'pair' }, spec: { terminationGracePeriodSeconds: 1, containers: [container('first'), container('second')] } },
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'single' }, spec: { terminationGracePeriodSeconds: 1, containers: [container('only')] } },
]
const POD_CONTAINERS = ['pair/first', 'pair/second', 'single/only']

async function run(): Promise<void> {
  let host: FaultHost | undefined
  let hub: HubProcess | undefined
  let agent: FaultAgent | undefined
  const hubDir = mkdtempSync(join(tmpdir(), 'f2-hub-'))
  t.teardown(async () => {
    await agent?.stop('SIGKILL')
    await hub?.stop()
    closeApiAgents()
    await host?.cleanup()
    rmSync(hubDir, { recursive: true, force: true })
  })
  host = await startFaultHost('f2power', 22)
  const ports = ['--api-port', String(await freePort()), '--mqtt-port', String(await freePort())]
  const hubArgs = ['--listen', host.hubAddress, '--advertise', host.hubAddress, ...ports]
  hub = await startHubProcess({ dataDir: hubDir, args: hubArgs })
  const hubAddress = `${host.hubAddress}:${new URL(hub.server).port}`
  const agentDir = join(host.dir, 'agent-data')
  const api = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => apiRequest(hub!, method, path, body, headers)
  const pods = async () => (await api('GET', '/api/v1/namespaces/default/pods')).json?.items ?? []

  /** Running app containers on the node, as `pod/container` → containers. */
  const runningByPodContainer = async (): Promise<Map<string, Docker.ContainerInfo[]>> => {
    const m = new Map<string, Docker.ContainerInfo[]>()
    for (const c of await host!.docker.listContainers({ filters: { label: ['io.bramble.container.role=app'] } })) {
      const key = `${c.Labels['io.bramble.pod.name']}/${c.Labels['io.bramble.container.name']}`
      m.set(key, [...(m.get(key) ?? []), c])
    }
    return m
  }
  const exactlyOneEach = async () => {
    const m = await runningByPodContainer()
    return [...m.keys()].sort().join() === POD_CONTAINERS.join() && [...m.values()].every((l) => l.length === 1) && m
  }

  await t.test('setup: a node runs two pods', async (t) => {
    const token = await runCli(['token', 'create', '--data-dir', hubDir])
    t.equal(token.code, 0, token.stderr)
    agent = host!.startAgent({ node: NODE, hub: hubAddress, dataDir: agentDir, token: token.stdout.trim() })
    await until('Node Ready', async () => (await api('GET', `/api/v1/nodes/${NODE}`)).json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
    for (const p of PODS) t.equal((await api('POST', '/api/v1/namespaces/default/pods', p)).status, 201)
    await until('both pods Running', async () => (await pods()).filter((p: any) => p.status?.phase === 'Running').length === 2)
    t.ok(await until('each container once', exactlyOneEach))
  })

  const acked: string[] = []
  /** The last label value acknowledged for each pod: what the pod must carry after the cut. */
  const lastLabel = new Map<string, number>()

  await t.test('the power goes while writes stream in: hub and agent SIGKILLed together, every container killed', async (t) => {
    let cut = false
    const writer = async (w: number) => {
      for (let i = 0; !cut && i < 2000; i++) {
        try {
          const res = await api('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: `w${w}-${i}` }, data: { i: String(i) } })
          if (res.status === 201) acked.push(`w${w}-${i}`)
        } catch {
          return // the hub is gone
        }
      }
    }
    // Relabelling the node's pods sends it desired state its replica stores as the power goes.
    const relabeller = async (pod: string) => {
      for (let i = 0; !cut && i < 2000; i++) {
        try {
          const res = await api('PATCH', `/api/v1/namespaces/default/pods/${pod}`, { metadata: { labels: { round: String(i) } } }, { 'Content-Type': 'application/merge-patch+json' })
          if (res.status === 200) lastLabel.set(pod, i)
        } catch {
          return
        }
      }
    }
    const writing = Promise.all([...Array.from({ length: WRITERS }, (_, w) => writer(w)), relabeller('pair'), relabeller('single')])
    await until('a good number of acknowledged writes', () => acked.length >= 200 && (lastLabel.get('pair') ?? 0) >= 10)
    cut = true
    hub!.child.kill('SIGKILL')
    agent!.child.kill('SIGKILL')
    const containers = await host!.docker.listContainers()
    await Promise.all(containers.map((c) => host!.docker.getContainer(c.Id).kill().catch(() => {})))
    await writing
    await Promise.all([hub!.stop(), agent!.stop()])
    closeApiAgents()
    t.equal((await host!.docker.listContainers()).length, 0, 'nothing runs on the node')
    t.ok(acked.length >= 200, `${acked.length} writes acknowledged before the cut`)
  })

  await t.test('the power returns: store and replica open, every acknowledged write is there, the same pods run once each', async (t) => {
    hub = await startHubProcess({ dataDir: hubDir, args: hubArgs })
    agent = host!.startAgent({ node: NODE, hub: hubAddress, dataDir: agentDir })
    const stored = new Set(((await api('GET', '/api/v1/namespaces/default/configmaps')).json?.items ?? []).map((c: any) => c.metadata.name))
    t.same(acked.filter((n) => !stored.has(n)), [], 'no acknowledged write is missing')
    for (const [pod, round] of lastLabel) {
      const labels = (await api('GET', `/api/v1/namespaces/default/pods/${pod}`)).json?.metadata?.labels ?? {}
      t.ok(Number(labels.round) >= round, `${pod} carries its last acknowledged label (round ${labels.round} >= ${round})`)
    }
    await until('Node Ready again', async () => (await api('GET', `/api/v1/nodes/${NODE}`)).json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
    const running = await until('every pod container running once again', exactlyOneEach, 120_000)
    t.same([...running.keys()].sort(), POD_CONTAINERS, 'the same pods, no others')
    // Give a wrong reconcile time to show itself.
    await new Promise((r) => setTimeout(r, 5_000))
    t.ok(await exactlyOneEach(), 'no duplicates appear later either')
    t.equal(agent!.child.exitCode, null, 'the agent runs on')
    t.notMatch(agent!.output(), /could not store desired state|replica.*(corrupt|invalid)/i, 'the replica opened and stores desired state')
  })

  await t.test('status converges: the API shows the containers that run now', async (t) => {
    const running = await runningByPodContainer()
    const converged = await until('pod status converged', async () => {
      const list = await pods()
      return (
        list.length === 2 &&
        list.every((p: any) =>
          p.status?.phase === 'Running' &&
          (p.status.containerStatuses ?? []).length === p.spec.containers.length &&
          p.status.containerStatuses.every((s: any) => s.state?.running && s.containerID === `docker://${running.get(`${p.metadata.name}/${s.name}`)?.[0]?.Id}`),
        ) &&
        list
      )
    })
    t.equal(converged.length, 2)
    for (const p of converged) for (const s of p.status.containerStatuses) t.ok(s.restartCount >= 1, `${p.metadata.name}/${s.name} counts the restart the power cut caused (${s.restartCount})`)
  })
}

const unavailable = await faultHostUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
