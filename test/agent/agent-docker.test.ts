// The agent against a real embedded broker and a real dockerd. The hub is a small double built
// from the protocol: it publishes desired state with real MQTT and reads what the node sends up.

import t from 'tap'
import { randomUUID } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createConnection, createServer, type Server, type Socket } from 'node:net'
import { PassThrough } from 'node:stream'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import type { AgentConfig } from '../../src/agent/agent-config.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { saveIdentity } from '../../src/agent/join-client.js'
import { ALL_UP_FILTER, downTopic, encodeMessage, parseTopic, upTopic, DELIVERY, type DesiredMessage, type DesiredObject } from '../../src/api/protocol.js'
import { startEmbeddedBroker, type EmbeddedBroker } from '../../src/hub/broker.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { systemClock } from '../../src/lib/clock.js'
import { createLogger, silentLogger } from '../../src/lib/logger.js'
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

/** A TCP relay in front of the broker: stopping it cuts the node off while the hub stays connected. */
async function startLink(target: number, port = 0): Promise<{ port: number; stop(): Promise<void> }> {
  const sockets = new Set<Socket>()
  const server: Server = createServer((down) => {
    const up = createConnection({ host: '127.0.0.1', port: target })
    for (const s of [down, up]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => {
        sockets.delete(s)
        down.destroy()
        up.destroy()
      })
    }
    down.pipe(up).pipe(down)
  })
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  return {
    port: (server.address() as { port: number }).port,
    async stop() {
      for (const s of sockets) s.destroy()
      await new Promise((r) => server.close(r))
    },
  }
}

interface Up {
  name: string
  message: any
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const clusterId = testClusterId()
  const node = `node-${clusterId.slice(5)}`
  const root = await mkdtemp(join(tmpdir(), 'bramble-agent-'))
  const dataDir = join(root, 'data')
  t.teardown(async () => {
    await removeClusterContainers(docker, clusterId)
    await rm(root, { recursive: true, force: true })
  })

  // The broker, with the hub's and the node's credentials, as the hub would run it.
  const tls = testTls()
  const credentials = await NodeCredentials.open(join(root, 'creds'))
  const startBroker = (port: number) => startEmbeddedBroker({ port, host: '127.0.0.1', tls, credentials, logger: silentLogger() })
  const broker: EmbeddedBroker = await startBroker(0)
  t.teardown(() => broker.close())
  // The node reaches the broker through a link the test can cut.
  let link: { port: number; stop(): Promise<void> } | undefined = await startLink(broker.port)
  const linkPort = link.port
  t.teardown(() => link?.stop())
  const nodeCreds = await credentials.issue(node)
  saveIdentity(dataDir, {
    nodeName: node,
    clusterId,
    apiServer: 'https://127.0.0.1:1',
    ca: tls.ca,
    mqtt: { url: `mqtts://127.0.0.1:${linkPort}`, username: nodeCreds.username, password: nodeCreds.password, clientId: node },
  })

  // The hub double: everything the node sends up, and a way to send desired state down.
  const hub = credentials.hubCredentials()
  const ups: Up[] = []
  const hubBus = await connectMqttBus({
    url: broker.url,
    ca: tls.ca,
    username: hub.username,
    password: hub.password,
    clientId: `${hub.username}:test`,
    logger: silentLogger(),
    reconnect: { minMs: 100, maxMs: 300 },
    subscriptions: [{ filter: ALL_UP_FILTER, handler: (topic, payload) => ups.push({ name: parseTopic(topic)!.name, message: JSON.parse(payload.toString()) }) }],
  })
  t.teardown(() => hubBus.close())
  const upAfter = (mark: number, name: string, pred: (m: any) => boolean = () => true) =>
    until(`up/${name}`, () => ups.slice(mark).find((u) => u.name === name && pred(u.message))?.message)
  const sendDesired = (m: DesiredMessage) => hubBus.publish(downTopic(node, 'desired'), encodeMessage(m), DELIVERY.desired)

  const logLines: any[] = []
  const logSink = new PassThrough()
  logSink.on('data', (b: Buffer) => b.toString().split('\n').filter(Boolean).forEach((l) => logLines.push(JSON.parse(l))))
  if (process.env.BRAMBLE_TEST_DEBUG) logSink.on('data', (b: Buffer) => process.stderr.write(b))
  const config: AgentConfig = {
    dataDir,
    reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
    heartbeatIntervalMs: 300,
    resyncMs: 1_000,
    mqttConnectAttemptMs: 2_000,
    mqttReconnect: { minMs: 100, maxMs: 300 },
    pods: { defaultGraceSeconds: 1, log: { maxSize: '1m', maxFile: 2 }, backoff: { initialMs: 200, maxMs: 1_000, resetAfterMs: 600_000 } },
  }
  const start = () => startAgent(config, { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: createLogger({ level: 'warn', destination: logSink }) })
  let agent: RunningAgent = await start()
  t.teardown(() => agent.close())

  const pod: DesiredObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'greeter', namespace: 'default', uid: randomUUID() },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image, command: ['sh', '-c', 'echo hello from greeter; trap "exit 0" TERM; while :; do sleep 1; done'] }],
    },
  }
  const appContainers = async (state?: string) =>
    (await runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: String(pod.metadata.uid), [LABELS.role]: 'app' })).filter((c) => !state || c.state.status === state)

  await t.test('on connecting, the node says it is online, which revision it holds, and what it is', async (t) => {
    const presence = await upAfter(0, 'presence')
    t.equal(presence.online, true)
    t.same(await upAfter(0, 'sync'), { revision: 0 })
    const status = await upAfter(0, 'node-status')
    t.equal(status.status.conditions.find((c: any) => c.type === 'Ready').status, 'True')
    t.equal(status.labels['kubernetes.io/arch'], process.arch === 'x64' ? 'amd64' : process.arch)
    t.match(status.status.nodeInfo.containerRuntimeVersion, /^docker:\/\//)
    const beat = await upAfter(0, 'heartbeat')
    t.ok(beat.seq >= 1 && beat.memory > 0)
  })

  await t.test('a desired pod is stored, acknowledged, run, and its status published', async (t) => {
    const mark = ups.length
    await sendDesired({ revision: 5, since: 0, full: true, upserts: [pod], deletes: [] })
    t.same(await upAfter(mark, 'ack'), { revision: 5 })
    t.equal(agent.replica.revision(), 5, 'the replica holds the revision it acknowledged')
    const status = await upAfter(mark, 'pod-status', (m) => m.name === 'greeter' && m.status.phase === 'Running')
    t.equal(status.uid, pod.metadata.uid)
    const events = await upAfter(mark, 'events', (m) => m.events.some((e: any) => e.reason === 'Started'))
    t.ok(events.events.length >= 1)
  })

  await t.test('the logs RPC streams the container output back in chunks, then done', async (t) => {
    const id = randomUUID()
    const mark = ups.length
    await hubBus.publish(downTopic(node, 'rpc'), encodeMessage({ id, replyTopic: upTopic(node, 'rpc-reply'), method: 'logs', params: { namespace: 'default', name: 'greeter', tailLines: 10 } }), DELIVERY.rpc)
    await upAfter(mark, 'rpc-reply', (m) => m.id === id && m.done === true)
    const replies = ups.slice(mark).filter((u) => u.name === 'rpc-reply' && u.message.id === id).map((u) => u.message)
    t.ok(replies.every((r) => r.ok))
    t.match(replies.map((r) => r.chunk ?? '').join(''), /hello from greeter/)

    const bad = randomUUID()
    await hubBus.publish(downTopic(node, 'rpc'), encodeMessage({ id: bad, replyTopic: upTopic(node, 'rpc-reply'), method: 'logs', params: { namespace: 'default', name: 'nope' } }), DELIVERY.rpc)
    const err = await upAfter(mark, 'rpc-reply', (m) => m.id === bad)
    t.equal(err.ok, false)
    t.match(err.error, /has no containers on this node/)
  })

  await t.test('a malformed desired payload is logged and dropped; the agent keeps serving', async (t) => {
    await hubBus.publish(downTopic(node, 'desired'), '{"revision": "six", ', DELIVERY.desired)
    await until('the warning', () => logLines.find((l) => /invalid message from the hub/.test(l.msg)))
    const mark = ups.length
    await sendDesired({ revision: 6, since: 5, full: false, upserts: [], deletes: [] })
    t.same(await upAfter(mark, 'ack'), { revision: 6 })
  })

  await t.test('a delta after a gap is not applied: the node asks for a sync instead', async (t) => {
    const mark = ups.length
    await sendDesired({ revision: 12, since: 10, full: false, upserts: [], deletes: [{ kind: 'Pod', namespace: 'default', name: 'greeter' }] })
    t.same(await upAfter(mark, 'sync'), { revision: 6 })
    t.equal(agent.replica.pods().length, 1)
  })

  await t.test('with the hub unreachable, a killed container is restarted anyway', async (t) => {
    await link!.stop()
    link = undefined
    const [running] = await appContainers('running')
    await docker.getContainer(running!.id).kill()
    const restarted = await until('a restarted container', async () => (await appContainers('running')).find((c) => c.id !== running!.id))
    t.equal(restarted.labels[LABELS.attempt], '1')
  })

  await t.test('a new agent instance with the hub unreachable restores the same pods from its replica, without duplicates', async (t) => {
    const before = (await appContainers('running')).map((c) => c.id)
    await agent.close()
    agent = await start()
    t.equal(agent.replica.revision(), 6)
    await agent.idle()
    await new Promise((r) => setTimeout(r, 1_500)) // a resync or two
    await agent.idle()
    t.same((await appContainers('running')).map((c) => c.id), before, 'the running container was adopted, not duplicated')
    const sandboxes = await runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: String(pod.metadata.uid), [LABELS.role]: 'sandbox' })
    t.equal(sandboxes.filter((c) => c.state.status === 'running').length, 1)
  })

  await t.test('when the hub returns, status catches up and a full sync without the pod stops it', async (t) => {
    const mark = ups.length
    link = await startLink(broker.port, linkPort)
    t.same(await upAfter(mark, 'sync'), { revision: 6 })
    await upAfter(mark, 'pod-status', (m) => m.name === 'greeter')
    await sendDesired({ revision: 20, since: 0, full: true, upserts: [], deletes: [] })
    t.same(await upAfter(mark, 'ack', (m) => m.revision === 20), { revision: 20 })
    await until('the pod gone', async () => (await appContainers()).length === 0)
    t.same(agent.replica.pods(), [])
  })

  await t.test('a clean close says the node is offline because its agent stopped, unlike the Last Will', async (t) => {
    const mark = ups.length
    await agent.close()
    const presence = await upAfter(mark, 'presence', (m) => m.online === false)
    t.equal(presence.online, false)
    t.equal(presence.agentStopped, true, 'the hub then judges the node by its silence')
  })
}
