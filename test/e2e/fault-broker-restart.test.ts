// The MQTT broker restarted under a running cluster, both kinds: the embedded one (it lives in the
// hub process, so the hub is restarted on its data dir and ports) and an external Mosquitto (the
// hub, started with --mqtt-url, stays up). The agent reconnects by itself (its back-off is capped
// at 5 s, see test/lib/mqtt-backoff.test.ts); desired-state changes made while it was cut off, a
// ConfigMap's new value and a new pod, reach it afterwards; and the pod that ran through it all
// keeps its containers (same ids, same restartCount). With Mosquitto the changes are made while
// the broker is down; with the embedded broker the API is down with it, so they are made as soon
// as the hub answers again, while the agent is still finding its way back.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, freePort, runCli, until } from '../helpers/e2e.js'
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js'
import { readInContainer } from '../helpers/container-read.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { mosquittoAvailable } from '../helpers/mosquitto.js'

const docker = dockerClient()
const CM = '/api/v1/namespaces/default/configmaps'
const PODS = '/api/v1/namespaces/default/pods'

const steadyPod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'f1-steady' },
  spec: {
    terminationGracePeriodSeconds: 1,
    volumes: [{ name: 'cfg', configMap: { name: 'f1-cfg' } }],
    containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }],
  },
}
const latePod = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'f1-late' },
  spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }] },
}

interface Scenario {
  hub: () => HubProcess
  clusterId: string
  node: string
  agent: AgentProcess
}

/** Sets up the ConfigMap and the steady pod and waits until it runs; returns its containers and restartCount. */
async function steadyBefore(t: Test, s: Scenario) {
  t.equal((await apiRequest(s.hub(), 'POST', CM, { metadata: { name: 'f1-cfg' }, data: { value: 'one' } })).status, 201)
  t.equal((await apiRequest(s.hub(), 'POST', PODS, steadyPod)).status, 201)
  const pod = await until('f1-steady Running', async () => {
    const p = (await apiRequest(s.hub(), 'GET', `${PODS}/f1-steady`)).json
    return p?.status?.phase === 'Running' && p.status.containerStatuses?.[0]?.state?.running && p
  }, 120_000)
  const containers = await steadyContainers(s)
  t.equal(await readInContainer(docker, containers.app, '/cfg/value'), 'one')
  return { containers, restartCount: pod.status.containerStatuses[0].restartCount as number }
}

async function steadyContainers(s: Scenario): Promise<{ app: string; sandbox: string }> {
  const list = await clusterContainers(docker, s.clusterId, { 'io.bramble.pod.name': 'f1-steady' }, false)
  const app = list.filter((c) => c.Labels['io.bramble.container.role'] === 'app')
  const sandbox = list.filter((c) => c.Labels['io.bramble.container.role'] === 'sandbox')
  if (app.length !== 1 || sandbox.length !== 1) throw new Error(`f1-steady runs ${app.length} app and ${sandbox.length} sandbox containers`)
  return { app: app[0]!.Id, sandbox: sandbox[0]!.Id }
}

/** The changes made while the agent is cut off: a new ConfigMap value and a new pod. */
async function changeWhileAway(t: Test, hub: HubProcess) {
  const cm = (await apiRequest(hub, 'GET', `${CM}/f1-cfg`)).json
  t.equal((await apiRequest(hub, 'PUT', `${CM}/f1-cfg`, { ...cm, data: { value: 'two' } })).status, 200, 'ConfigMap updated')
  t.equal((await apiRequest(hub, 'POST', PODS, latePod)).status, 201, 'new pod created')
}

/** The changes arrive and the steady pod was not touched. */
async function convergedWithoutRestarts(t: Test, s: Scenario, before: Awaited<ReturnType<typeof steadyBefore>>, since: number) {
  await until('the new ConfigMap value inside f1-steady', async () => (await readInContainer(docker, before.containers.app, '/cfg/value')) === 'two', 120_000)
  t.comment(`the ConfigMap change reached the pod ${((Date.now() - since) / 1000).toFixed(1)} s after the broker was back`)
  t.pass('the ConfigMap change reached the running pod')
  await until('f1-late Running', async () => (await apiRequest(s.hub(), 'GET', `${PODS}/f1-late`)).json?.status?.phase === 'Running', 120_000)
  t.pass('the pod created while the agent was cut off runs')
  t.same(await steadyContainers(s), before.containers, 'f1-steady keeps its sandbox and app containers (same ids)')
  const pod = (await apiRequest(s.hub(), 'GET', `${PODS}/f1-steady`)).json
  t.equal(pod.status.containerStatuses[0].restartCount, before.restartCount, 'its restartCount did not move')
  t.equal(pod.status.containerStatuses[0].containerID, `docker://${before.containers.app}`)
  t.equal(s.agent.child.exitCode, null, 'the agent kept running')
}

async function run() {
  await ensureBusyboxImage(docker)

  await t.test('embedded broker: the hub restarted on its ports', async (t) => {
    const apiPort = await freePort()
    const mqttPort = await freePort()
    const hubArgs = ['--api-port', String(apiPort), '--mqtt-port', String(mqttPort)]
    const dataDir = mkdtempSync(join(tmpdir(), 'f1-embedded-hub-'))
    let hub = await startHubProcess({ dataDir, args: hubArgs })
    const agentDir = mkdtempSync(join(tmpdir(), 'f1-embedded-agent-'))
    const clusterId = readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim()
    const token = await runCli(['token', 'create', '--data-dir', dataDir])
    t.equal(token.code, 0, token.stderr)
    const agent = startAgentProcess({ dataDir: agentDir, hub: `127.0.0.1:${apiPort}`, node: 'f1-embedded', token: token.stdout.trim() })
    const s: Scenario = { hub: () => hub, clusterId, node: 'f1-embedded', agent }
    t.teardown(async () => {
      await agent.stop()
      await hub.stop()
      closeApiAgents()
      await removeClusterContainers(docker, clusterId)
      rmSync(dataDir, { recursive: true, force: true })
      rmSync(agentDir, { recursive: true, force: true })
    })
    const before = await steadyBefore(t, s)

    await hub.stop('SIGTERM')
    closeApiAgents()
    // Long enough for several reconnect attempts to fail.
    await new Promise((r) => setTimeout(r, 4_000))
    hub = await startHubProcess({ dataDir, args: hubArgs })
    const backAt = Date.now()
    await changeWhileAway(t, hub)
    await convergedWithoutRestarts(t, s, before, backAt)
  })

  await t.test('external Mosquitto: restarted while the hub stays up', { skip: (await mosquittoAvailable()) ? false : 'mosquitto is not installed (apt-get install mosquitto)' }, async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'f1-mosq-'))
    const dataDir = join(root, 'hub')
    const authDir = join(dataDir, 'mosquitto')
    mkdirSync(authDir, { recursive: true, mode: 0o700 })
    writeFileSync(join(authDir, 'mosquitto-passwd'), '', { mode: 0o600 })
    writeFileSync(join(authDir, 'mosquitto-acl'), '', { mode: 0o600 })
    const port = await freePort()
    const pidFile = join(root, 'mosquitto.pid')
    const conf = join(root, 'mosquitto.conf')
    writeFileSync(conf, [`user ${process.env.USER ?? 'root'}`, 'persistence false', `pid_file ${pidFile}`, 'log_dest stderr', 'log_type error', 'per_listener_settings false', 'allow_anonymous false',
      `password_file ${join(authDir, 'mosquitto-passwd')}`, `acl_file ${join(authDir, 'mosquitto-acl')}`, `listener ${port} 127.0.0.1`, ''].join('\n'))
    let mosquitto: ChildProcess
    const startMosquitto = async () => {
      mosquitto = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] })
      // The hub signals this pid to reload the password file; a foreground Mosquitto may not write it.
      writeFileSync(pidFile, `${mosquitto.pid}\n`)
      await until('mosquitto listening', async () => {
        const { connect } = await import('node:net')
        return new Promise<boolean>((res) => {
          const c = connect(port, '127.0.0.1')
          c.once('connect', () => (c.destroy(), res(true)))
          c.once('error', () => res(false))
        })
      }, 15_000)
    }
    const stopMosquitto = async () => {
      if (mosquitto.exitCode !== null || mosquitto.signalCode !== null) return
      const exited = new Promise((r) => mosquitto.once('exit', r))
      mosquitto.kill('SIGTERM')
      await exited
    }
    await startMosquitto()
    t.teardown(() => stopMosquitto())
    const hub = await startHubProcess({ dataDir, args: ['--mqtt-url', `mqtt://127.0.0.1:${port}`, '--mosquitto-pid-file', pidFile] })
    const clusterId = readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim()
    const token = await runCli(['token', 'create', '--data-dir', dataDir])
    t.equal(token.code, 0, token.stderr)
    const agent = startAgentProcess({ dataDir: join(root, 'agent'), hub: new URL(hub.server).host, node: 'f1-mosq', token: token.stdout.trim() })
    const s: Scenario = { hub: () => hub, clusterId, node: 'f1-mosq', agent }
    t.teardown(async () => {
      await agent.stop()
      await hub.stop()
      closeApiAgents()
      await removeClusterContainers(docker, clusterId)
      rmSync(root, { recursive: true, force: true })
    })
    const before = await steadyBefore(t, s)

    await stopMosquitto()
    t.ok(mosquitto!.exitCode !== null || mosquitto!.signalCode !== null, 'Mosquitto is stopped')
    await changeWhileAway(t, hub)
    await new Promise((r) => setTimeout(r, 3_000))
    await startMosquitto()
    const backAt = Date.now()
    await convergedWithoutRestarts(t, s, before, backAt)
    t.equal(hub.child.exitCode, null, 'the hub kept running through the broker restart')
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
