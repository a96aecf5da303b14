// Secrets in transit through an external Mosquitto with persistence on and no TLS at all: the
// broker's administrator (the hub's own MQTT user, which Mosquitto's ACL lets read every topic)
// watches live and keeps a parked session whose queued messages Mosquitto writes to its
// persistence file. Neither the live messages nor that file holds a Secret's value, while the pod
// on the node prints it (read from Docker directly: the pod's log through the hub would travel the
// broker as the pod's own output).

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import t from 'tap'
import { LABELS } from '../../src/agent/container-runtime.js'
import { HUB_USERNAME } from '../../src/hub/broker-acl.js'
import { CREDENTIALS_FILE } from '../../src/hub/node-credentials.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { BRAMBLE_BIN, startHubProcess } from '../helpers/hub-process.js'
import { mosquittoAvailable, startHubMosquitto, type HubMosquitto } from '../helpers/mosquitto.js'

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

t.test("an external broker's administrator and its persistence file never see a Secret's value", async (t) => {
  if (!(await mosquittoAvailable())) {
    t.comment('mosquitto is not installed (apt-get install mosquitto): nothing to test against')
    return
  }
  const noDocker = await dockerUnavailable()
  if (noDocker) {
    t.comment(`no Docker engine (${noDocker}): the agent cannot run pods`)
    return
  }
  const VALUE = 'persisted-n0where-5e2b'
  const image = await ensureBusyboxImage(dockerClient())

  const root = mkdtempSync(join(tmpdir(), 'bramble-mosq-secrets-'))
  const dataDir = join(root, 'hub')
  const persistDir = join(root, 'persist')
  mkdirSync(persistDir, { recursive: true, mode: 0o700 })
  let agent: ChildProcess | undefined
  let mosquitto: HubMosquitto | undefined
  t.teardown(async () => {
    agent?.kill('SIGKILL')
    mosquitto?.child.kill('SIGTERM')
    closeApiAgents()
    rmSync(root, { recursive: true, force: true })
  })
  mosquitto = await startHubMosquitto({ dir: root, hubDataDir: dataDir, persistenceDir: persistDir })
  const { port, pidFile } = mosquitto

  const hub = await startHubProcess({ dataDir, args: ['--mqtt-url', `mqtt://127.0.0.1:${port}`, '--mosquitto-pid-file', pidFile] })
  t.teardown(() => hub.cleanup())
  const clusterId = readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim()

  // The administrator: live, and a parked persistent session whose backlog Mosquitto persists.
  const password = JSON.parse(readFileSync(join(dataDir, 'mqtt', CREDENTIALS_FILE), 'utf8')).hub.password
  const admin = (clientId: string, clean: boolean) =>
    until('the administrator to connect', () => mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, { username: HUB_USERNAME, password, clientId, clean, protocolVersion: 4, reconnectPeriod: 0 }), 15_000)
  const parked = await admin(`${HUB_USERNAME}:parked`, false)
  await parked.subscribeAsync('bramble/#', { qos: 1 })
  await parked.endAsync()
  const live = await admin(`${HUB_USERNAME}:live`, true)
  live.on('error', () => {})
  const seen: Array<{ topic: string; payload: string }> = []
  live.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString('utf8') }))
  await live.subscribeAsync('bramble/#', { qos: 1 })
  t.teardown(() => live.endAsync().catch(() => {}))

  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'api-key' }, stringData: { key: VALUE } }
  t.equal((await apiRequest(hub, 'POST', '/api/v1/namespaces/default/secrets', secret)).status, 201, 'the Secret is created')

  const token = await new Promise<string>((resolve, reject) => {
    const c = spawn(process.execPath, [BRAMBLE_BIN, 'token', 'create', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    c.stdout!.on('data', (d) => (out += d))
    c.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`token create exited ${code}`))))
  })
  agent = spawn(process.execPath, [BRAMBLE_BIN, 'agent', '--data-dir', join(root, 'agent'), '--hub', new URL(hub.server).host, '--token', token, '--node-name', 'mosq-sealed', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  await until('the node to be Ready', async () => {
    const res = await apiRequest(hub, 'GET', '/api/v1/nodes/mosq-sealed')
    return res.json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? true : undefined
  })

  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'sealed-reader' },
    spec: {
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image, env: [{ name: 'KEY', valueFrom: { secretKeyRef: { name: 'api-key', key: 'key' } } }], command: ['sh', '-c', 'echo "key=$KEY"; sleep 3600'] }],
    },
  }
  t.equal((await apiRequest(hub, 'POST', '/api/v1/namespaces/default/pods', pod)).status, 201, 'the pod is created')
  const docker = dockerClient()
  const logs = await until('the pod printing its key', async () => {
    const [c] = await docker.listContainers({ all: true, filters: { label: [`${LABELS.cluster}=${clusterId}`, `${LABELS.podName}=sealed-reader`, `${LABELS.containerName}=main`] } })
    const text = c ? (await docker.getContainer(c.Id).logs({ stdout: true, stderr: true })).toString('utf8') : ''
    return text.includes(`key=${VALUE}`) ? text : undefined
  }, 120_000)
  t.match(logs, `key=${VALUE}`, 'the pod has the value')

  const base64 = Buffer.from(VALUE).toString('base64')
  const desired = seen.filter((m) => m.topic === 'bramble/v1/nodes/mosq-sealed/down/desired' && m.payload.includes('"sealed"'))
  t.ok(desired.length > 0, 'the administrator saw the sealed Secret go down')
  t.ok(seen.length > 3, `${seen.length} messages seen`)
  t.same(seen.filter((m) => m.payload.includes(VALUE) || m.payload.includes(base64)).map((m) => m.topic), [], 'no live message carries the value or its base64')

  // Mosquitto writes its persistence file when it stops: the parked session's backlog is in it.
  await apiRequest(hub, 'DELETE', '/api/v1/namespaces/default/pods/sealed-reader')
  agent.kill('SIGKILL')
  mosquitto.child.kill('SIGTERM')
  await mosquitto.exited
  const db = readFileSync(join(persistDir, 'mosquitto.db'))
  t.ok(db.includes('mosq-sealed/down/desired') && db.includes('"sealed"'), "the persistence file holds the node's desired state with the sealed Secret")
  t.notOk(db.includes(VALUE), 'the persistence file holds no plaintext value')
  t.notOk(db.includes(base64), 'nor its base64')
  await removeClusterContainers(dockerClient(), clusterId)
})
