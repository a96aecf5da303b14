// Offline autonomy through the real binaries: `bramble hub` and `bramble agent` as separate
// processes on the real Docker engine. With the hub gone, a killed container is restarted anyway;
// an agent restarted while the hub is still down (also after its containers died, as in a power
// cut) runs the same pods again from its replica, with no duplicates; when the hub comes back on
// its data dir and ports, the pods' status in the API converges to what runs, and a pod deleted
// while its agent was away is stopped when the agent returns.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type Docker from 'dockerode'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, freePort, runCli, until } from '../helpers/e2e.js'
import { BRAMBLE_BIN, startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const NODE = 'offline-e2e'
const docker = dockerClient()

const PODS = `
apiVersion: v1
kind: Pod
metadata: {name: steady}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: first
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
  - name: second
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
---
apiVersion: v1
kind: Pod
metadata: {name: keeper}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: only
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`
/** Every app container of the pods above, as `pod/container`. */
const POD_CONTAINERS = ['keeper/only', 'steady/first', 'steady/second']

interface AgentProcess {
  child: ChildProcess
  output(): string
  stop(signal?: NodeJS.Signals): Promise<void>
}

function startAgentProcess(dataDir: string, hub: string, token?: string): AgentProcess {
  const args = [BRAMBLE_BIN, 'agent', '--data-dir', dataDir, '--hub', hub, '--node-name', NODE, '--log-level', 'warn', ...(token ? ['--token', token] : [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  return {
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
  }
}

/** Running app containers of the cluster, grouped as `pod/container` → container ids. */
async function runningByPodContainer(clusterId: string): Promise<Map<string, Docker.ContainerInfo[]>> {
  const m = new Map<string, Docker.ContainerInfo[]>()
  for (const c of await clusterContainers(docker, clusterId, { 'io.bramble.container.role': 'app' }, false)) {
    const key = `${c.Labels['io.bramble.pod.name']}/${c.Labels['io.bramble.container.name']}`
    m.set(key, [...(m.get(key) ?? []), c])
  }
  return m
}

/** True when every pod container runs exactly once (and nothing else runs). */
async function exactlyOneEach(clusterId: string, expected = POD_CONTAINERS): Promise<Map<string, Docker.ContainerInfo[]> | false> {
  const m = await runningByPodContainer(clusterId)
  const keys = [...m.keys()].sort()
  return keys.join() === [...expected].sort().join() && [...m.values()].every((l) => l.length === 1) && m
}

async function run() {
  await ensureBusyboxImage(docker)
  const apiPort = await freePort()
  const mqttPort = await freePort()
  const hubArgs = ['--api-port', String(apiPort), '--mqtt-port', String(mqttPort)]
  let hub: HubProcess = await startHubProcess({ command: 'hub', args: hubArgs })
  const hubDir = hub.dataDir
  const agentDir = mkdtempSync(join(tmpdir(), 'bramble-agent-'))
  const clusterId = readFileSync(join(hubDir, 'cluster-id'), 'utf8').trim()
  const hubAddress = `127.0.0.1:${apiPort}`
  let agent: AgentProcess | undefined
  t.teardown(async () => {
    await agent?.stop()
    await hub.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    rmSync(hubDir, { recursive: true, force: true })
    rmSync(agentDir, { recursive: true, force: true })
  })
  const bramble = (...args: string[]) => runCli(args, { kubeconfig: hub.kubeconfig })
  const getJson = async (...args: string[]) => {
    const r = await bramble('get', ...args, '-o', 'json')
    return r.code === 0 ? JSON.parse(r.stdout) : undefined
  }
  const containerOf = async (pod: string, container: string) => (await runningByPodContainer(clusterId)).get(`${pod}/${container}`)?.[0]

  await t.test('setup: the agent joins with a token and runs two pods', async (t) => {
    t.equal(hub.server, `https://127.0.0.1:${apiPort}`, 'the hub listens on the port picked for it')
    const token = await runCli(['token', 'create', '--data-dir', hubDir])
    t.equal(token.code, 0, token.stderr)
    agent = startAgentProcess(agentDir, hubAddress, token.stdout.trim())
    await until('Node Ready', async () => (await getJson('node', NODE))?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
    const file = join(agentDir, 'pods.yaml')
    writeFileSync(file, PODS)
    const applied = await bramble('apply', '-f', file)
    t.equal(applied.code, 0, applied.stderr)
    await until('both pods Running', async () => {
      const list = await getJson('pods')
      return list?.items.length === 2 && list.items.every((p: any) => p.status?.phase === 'Running')
    })
    t.ok(await until('one container per pod container', () => exactlyOneEach(clusterId)))
  })

  await t.test('with the hub stopped, a container killed with `docker kill` is restarted anyway', async (t) => {
    await hub.stop('SIGKILL')
    const before = (await containerOf('steady', 'first'))!
    await docker.getContainer(before.Id).kill()
    const after = await until('a new running container for steady/first', async () => {
      const c = await containerOf('steady', 'first')
      return c && c.Id !== before.Id && c
    })
    t.not(after.Id, before.Id)
    t.ok(Number(after.Labels['io.bramble.container.attempt']) > Number(before.Labels['io.bramble.container.attempt']), 'a later attempt: a restart')
    t.ok(await until('still one container per pod container', () => exactlyOneEach(clusterId)))
  })

  await t.test('an agent restarted while the hub is down runs the same pods again, with no duplicates', async (t) => {
    await agent!.stop('SIGKILL')
    // While no agent runs, a container dies: the next agent finds it from its replica.
    const second = (await containerOf('steady', 'second'))!
    await docker.getContainer(second.Id).kill()
    const before = await runningByPodContainer(clusterId)
    t.notOk(before.has('steady/second'))
    agent = startAgentProcess(agentDir, hubAddress) // no token: the agent runs from its stored identity
    const running = await until('every pod container running once again', () => exactlyOneEach(clusterId))
    t.equal(running.get('keeper/only')![0]!.Id, before.get('keeper/only')![0]!.Id, 'what ran is adopted, not started again')
    t.equal(running.get('steady/first')![0]!.Id, before.get('steady/first')![0]!.Id)
    // Give a wrong reconcile time to show itself: still exactly one of each after a few more passes.
    await new Promise((r) => setTimeout(r, 3_000))
    t.ok(await exactlyOneEach(clusterId), 'no duplicates appear later either')
  })

  await t.test('after a power cut (agent and every container stopped), the agent brings its pods back with the hub still down', async (t) => {
    await agent!.stop('SIGKILL')
    for (const c of await clusterContainers(docker, clusterId, {}, false)) await docker.getContainer(c.Id).kill().catch(() => {})
    t.equal((await clusterContainers(docker, clusterId, {}, false)).length, 0, 'nothing of the cluster runs')
    agent = startAgentProcess(agentDir, hubAddress)
    t.ok(await until('every pod container running once again', () => exactlyOneEach(clusterId)))
    const sandboxes = await clusterContainers(docker, clusterId, { 'io.bramble.container.role': 'sandbox' }, false)
    t.same(sandboxes.map((c) => c.Labels['io.bramble.pod.name']).sort(), ['keeper', 'steady'], 'one running sandbox per pod')
  })

  await t.test('the hub back on its data dir and ports: pod status converges to what runs, restart counts included', async (t) => {
    hub = await startHubProcess({ command: 'hub', dataDir: hubDir, args: hubArgs })
    t.equal(hub.server, `https://127.0.0.1:${apiPort}`)
    await until('Node Ready again', async () => (await getJson('node', NODE))?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
    const running = await runningByPodContainer(clusterId)
    const pods = await until('the API shows the containers that run now', async () => {
      const list = await getJson('pods')
      const converged = list?.items.every((p: any) =>
        p.status?.phase === 'Running' &&
        (p.status.containerStatuses ?? []).every((s: any) => s.state?.running && s.containerID === `docker://${running.get(`${p.metadata.name}/${s.name}`)?.[0]?.Id}`),
      )
      return converged && list.items
    })
    const restarts = Object.fromEntries(pods.flatMap((p: any) => p.status.containerStatuses.map((s: any) => [`${p.metadata.name}/${s.name}`, s.restartCount])))
    t.ok(restarts['steady/first'] >= 2, `steady/first was killed, then stopped by the power cut: restartCount ${restarts['steady/first']}`)
    t.ok(restarts['steady/second'] >= 2, `steady/second was killed, then stopped by the power cut: restartCount ${restarts['steady/second']}`)
    t.ok(restarts['keeper/only'] >= 1, `keeper/only was stopped by the power cut: restartCount ${restarts['keeper/only']}`)
    const table = await bramble('get', 'pods')
    t.match(table.stdout, /^steady\s+2\/2\s+Running\s+[1-9]\d*\s/m, '`get pods` shows the restarts')
  })

  await t.test('a pod deleted while its agent is away is stopped when the agent returns; the others keep running', async (t) => {
    await agent!.stop('SIGTERM')
    const del = await bramble('delete', 'pod', 'keeper')
    t.equal(del.code, 0, del.stderr)
    const steadyBefore = await runningByPodContainer(clusterId)
    agent = startAgentProcess(agentDir, hubAddress)
    await until('keeper has no container left', async () => (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'keeper' })).length === 0)
    const after = await until('steady alone runs, once', () => exactlyOneEach(clusterId, ['steady/first', 'steady/second']))
    t.equal(after.get('steady/first')![0]!.Id, steadyBefore.get('steady/first')![0]!.Id, 'steady was adopted, not restarted')
    await until('keeper gone from the API', async () => (await bramble('get', 'pod', 'keeper')).code === 1)
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
