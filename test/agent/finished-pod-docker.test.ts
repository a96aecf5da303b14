// Finished pods on a real dockerd, through the real agent and the embedded broker (the hub is a
// double speaking the protocol, as in agent-docker.test.ts): a Succeeded or Failed pod keeps its
// exited containers and its logs until it is deleted, and neither an agent restart nor a reboot
// (its containers killed while the agent is down) runs it again.

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { access, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import type { AgentConfig } from '../../src/agent/agent-config.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { agentDir, saveIdentity } from '../../src/agent/join-client.js'
import { ALL_UP_FILTER, DELIVERY, downTopic, encodeMessage, parseTopic, upTopic, type DesiredMessage, type DesiredObject } from '../../src/api/protocol.js'
import { startEmbeddedBroker } from '../../src/hub/broker.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { connectMqttBus } from '../../src/lib/mqtt-bus.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'
import { testTls } from '../helpers/tls.js'

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
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const clusterId = testClusterId()
  const node = `node-${clusterId.slice(5)}`
  const root = await mkdtemp(join(tmpdir(), 'bramble-finished-'))
  const dataDir = join(root, 'data')
  t.teardown(async () => {
    await removeClusterContainers(docker, clusterId)
    await rm(root, { recursive: true, force: true })
  })

  const tls = testTls()
  const credentials = await NodeCredentials.open(join(root, 'creds'))
  const broker = await startEmbeddedBroker({ port: 0, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
  t.teardown(() => broker.close())
  const nodeCreds = await credentials.issue(node)
  saveIdentity(dataDir, {
    nodeName: node,
    clusterId,
    apiServer: 'https://127.0.0.1:1',
    ca: tls.ca,
    mqtt: { url: broker.url, username: nodeCreds.username, password: nodeCreds.password, clientId: node },
  })

  // The hub double: what the node sends up, and desired state going down.
  const hub = credentials.hubCredentials()
  const ups: Array<{ name: string; message: any }> = []
  const hubBus = await connectMqttBus({
    url: broker.url,
    ca: tls.ca,
    username: hub.username,
    password: hub.password,
    clientId: `${hub.username}:test`,
    logger: silentLogger(),
    subscriptions: [{ filter: ALL_UP_FILTER, handler: (topic, payload) => ups.push({ name: parseTopic(topic)!.name, message: JSON.parse(payload.toString()) }) }],
  })
  t.teardown(() => hubBus.close())
  const upAfter = (mark: number, name: string, pred: (m: any) => boolean = () => true) =>
    until(`up/${name}`, () => ups.slice(mark).find((u) => u.name === name && pred(u.message))?.message)
  let revision = 0
  const sendDesired = async (m: Omit<DesiredMessage, 'revision' | 'since'>) => {
    const mark = ups.length
    const since = revision
    revision += 1
    await hubBus.publish(downTopic(node, 'desired'), encodeMessage({ ...m, revision, since }), DELIVERY.desired)
    await upAfter(mark, 'ack', (a) => a.revision === revision)
  }
  const logsOf = async (name: string): Promise<string> => {
    const id = randomUUID()
    const mark = ups.length
    await hubBus.publish(downTopic(node, 'rpc'), encodeMessage({ id, replyTopic: upTopic(node, 'rpc-reply'), method: 'logs', params: { namespace: 'default', name } }), DELIVERY.rpc)
    await upAfter(mark, 'rpc-reply', (m) => m.id === id && (m.done === true || m.ok === false))
    const replies = ups.slice(mark).filter((u) => u.name === 'rpc-reply' && u.message.id === id).map((u) => u.message)
    const failed = replies.find((r) => !r.ok)
    if (failed) throw new Error(`logs of ${name}: ${failed.error}`)
    return replies.map((r) => r.chunk ?? '').join('')
  }

  const config: AgentConfig = {
    dataDir,
    reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
    heartbeatIntervalMs: 1_000,
    resyncMs: 1_000,
    mqttConnectAttemptMs: 2_000,
    pods: { defaultGraceSeconds: 1, log: { maxSize: '1m', maxFile: 2 }, backoff: { initialMs: 200, maxMs: 1_000, resetAfterMs: 600_000 } },
  }
  const start = () => startAgent(config, { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() })
  let agent: RunningAgent = await start()
  t.teardown(() => agent.close())
  await upAfter(0, 'sync')

  const makePod = (name: string, restartPolicy: string, script: string): DesiredObject => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: randomUUID() },
    spec: {
      nodeName: node,
      restartPolicy,
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: 'scratch', emptyDir: {} }],
      containers: [{ name: 'main', image, command: ['sh', '-c', script], volumeMounts: [{ name: 'scratch', mountPath: '/scratch' }] }],
    },
  })
  const job = makePod('job', 'Never', 'echo line one; echo line two; exit 0')
  const broken = makePod('broken', 'OnFailure', 'echo trying; [ -e /scratch/tried ] || { touch /scratch/tried; exit 1; }; echo made it')
  const failing = makePod('failing', 'Never', 'echo about to fail; exit 3')
  const longJob = makePod('long', 'Never', 'echo started long; trap "" TERM; while :; do sleep 1; done')
  const containersOf = (pod: DesiredObject) => runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: String(pod.metadata.uid) })
  const apps = async (pod: DesiredObject) => (await containersOf(pod)).filter((c) => c.labels[LABELS.role] !== 'sandbox')
  const sandboxes = async (pod: DesiredObject) => (await containersOf(pod)).filter((c) => c.labels[LABELS.role] === 'sandbox')
  const finalStatus = (mark: number, pod: DesiredObject, phase: string) =>
    upAfter(mark, 'pod-status', (m) => m.uid === pod.metadata.uid && m.status.phase === phase).then((m) => m.status)
  const withPhase = (pod: DesiredObject, status: any): DesiredObject => ({ ...pod, status, metadata: { ...pod.metadata, resourceVersion: String(revision + 1) } })

  const statuses = new Map<string, any>()
  await t.test('finished pods report their final phase and exit codes; their containers stay, exited; their sandboxes go', async (t) => {
    const mark = ups.length
    await sendDesired({ full: true, upserts: [job, broken, failing, longJob], deletes: [] })
    statuses.set('job', await finalStatus(mark, job, 'Succeeded'))
    statuses.set('broken', await finalStatus(mark, broken, 'Succeeded'))
    statuses.set('failing', await finalStatus(mark, failing, 'Failed'))
    await upAfter(mark, 'pod-status', (m) => m.uid === longJob.metadata.uid && m.status.phase === 'Running')

    t.equal(statuses.get('job').containerStatuses[0].state.terminated.exitCode, 0)
    t.equal(statuses.get('job').containerStatuses[0].state.terminated.reason, 'Completed')
    t.equal(statuses.get('failing').containerStatuses[0].state.terminated.exitCode, 3)
    t.equal(statuses.get('broken').containerStatuses[0].restartCount, 1, 'OnFailure ran it again once, until it succeeded')
    t.match(statuses.get('job').podIP, /^\d+\.\d+\.\d+\.\d+$/, 'a finished pod still shows the address it had')
    for (const pod of [job, broken, failing]) {
      const name = pod.metadata.name
      const left = await until(`${name}'s sandbox removed`, async () => ((await sandboxes(pod)).length === 0 ? apps(pod) : undefined))
      t.ok(left.length >= 1 && left.every((c) => c.state.status === 'exited'), `${name}: its containers stay, exited`)
    }
  })

  await t.test('the logs of finished pods are readable', async (t) => {
    t.equal(await logsOf('job'), 'line one\nline two\n')
    t.equal(await logsOf('failing'), 'about to fail\n')
    t.match(await logsOf('broken'), /made it/)
  })

  await t.test('the hub writes the final phases down; the pods stay desired', async (t) => {
    await sendDesired({ full: false, upserts: [withPhase(job, statuses.get('job')), withPhase(failing, statuses.get('failing')), withPhase(broken, statuses.get('broken'))], deletes: [] })
    await agent.idle()
    t.equal(agent.replica.pods().length, 4)
    t.equal((await apps(job)).length, 1)
  })

  await t.test('an agent restart does not run a finished pod again; a reboot ends a running Never pod as Failed instead of rerunning it', async (t) => {
    const before = new Map<string, string[]>()
    for (const pod of [job, broken, failing]) before.set(pod.metadata.name!, (await apps(pod)).map((c) => c.id).sort())
    await agent.close()
    // A reboot while the agent is down: whatever ran is killed.
    for (const c of await containersOf(longJob)) await docker.getContainer(c.id).kill().catch(() => {})
    await until('long killed', async () => (await containersOf(longJob)).every((c) => c.state.status === 'exited'))
    const mark = ups.length
    agent = await start()
    const long = await finalStatus(mark, longJob, 'Failed')
    t.equal(long.containerStatuses[0].state.terminated.exitCode, 137, 'its exit code says how it ended')
    await new Promise((r) => setTimeout(r, 2_500)) // resyncs
    await agent.idle()
    for (const pod of [job, broken, failing]) {
      const now = await apps(pod)
      t.same(now.map((c) => c.id).sort(), before.get(pod.metadata.name!), `${pod.metadata.name}: the same containers, none added`)
      t.ok(now.every((c) => c.state.status === 'exited'), `${pod.metadata.name}: not started again`)
      t.equal((await sandboxes(pod)).length, 0, `${pod.metadata.name}: no sandbox made again`)
    }
    t.same((await apps(longJob)).map((c) => c.labels[LABELS.attempt]), ['0'], 'long: not run again')
    t.equal((await sandboxes(longJob)).length, 0)
    const reported = ups.slice(mark).filter((u) => u.name === 'pod-status' && u.message.uid !== longJob.metadata.uid).map((u) => u.message.status.phase)
    t.ok(reported.every((p) => p === 'Succeeded' || p === 'Failed'), `only final phases reported after the restart (${reported.join(', ') || 'none'})`)
    t.equal(await logsOf('job'), 'line one\nline two\n', 'logs still readable')
    t.match(await logsOf('long'), /started long/)
  })

  await t.test('deleting finished pods removes their containers and directories', async (t) => {
    const all = [job, broken, failing, longJob]
    await sendDesired({ full: false, upserts: [], deletes: all.map((p) => ({ kind: 'Pod' as const, namespace: 'default', name: p.metadata.name!, uid: p.metadata.uid })) })
    await until('containers removed', async () => (await runtime.list({ [LABELS.cluster]: clusterId })).length === 0)
    for (const pod of all) {
      await until(`${pod.metadata.name}'s directory removed`, () => access(join(agentDir(dataDir), 'pods', String(pod.metadata.uid))).then(() => false, () => true))
    }
    t.same(agent.replica.pods(), [])
    t.pass('nothing of the finished pods remains')
  })
}
