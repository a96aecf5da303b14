// Secrets in transit, end to end through a real hub, its embedded broker and a real agent on
// Docker: a subscriber with the broker administrator's rights (the hub's own MQTT credentials,
// subscribed to everything) sees the node's desired state go by and finds no trace of a Secret's
// value, while the pod on the node gets the value in its env and its secret volume.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import mqtt from 'mqtt'
import { parse as parseYaml } from 'yaml'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { SECRETS_KEY_FILE } from '../../src/agent/secrets-transit.js'
import { ANNOTATION_SECRETS_PUBLIC_KEY, sealingPublicKey } from '../../src/api/sealed-secret.js'
import { HUB_USERNAME } from '../../src/hub/broker-acl.js'
import { startHub } from '../../src/hub/hub.js'
import { CREDENTIALS_FILE } from '../../src/hub/node-credentials.js'
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
  const VALUE = 'tr4nsit-only-for-pi-7c1e'
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const root = await mkdtemp(join(tmpdir(), 'bramble-secrets-transit-'))
  const hubDir = join(root, 'hub')
  const nodeDir = join(root, 'node')
  const hub = await startHub(resolveHubConfig({ dataDir: hubDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
  let agent: RunningAgent | undefined
  const kc = parseYaml(readFileSync(hub.kubeconfigPath, 'utf8'))
  const ca = Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()
  const admin: ApiTarget = { server: kc.clusters[0].cluster.server, ca, token: kc.users[0].user.token }

  // The broker's administrator: the hub's own MQTT user, which may read every topic.
  const hubPassword = JSON.parse(readFileSync(join(hubDir, 'mqtt', CREDENTIALS_FILE), 'utf8')).hub.password
  const spy = await mqtt.connectAsync(hub.brokerUrl, { username: HUB_USERNAME, password: hubPassword, clientId: `${HUB_USERNAME}:spy`, ca: [ca], protocolVersion: 4, reconnectPeriod: 0 })
  spy.on('error', () => {})
  const seen: Array<{ topic: string; payload: string }> = []
  spy.on('message', (topic, payload) => seen.push({ topic, payload: payload.toString('utf8') }))
  await spy.subscribeAsync('#', { qos: 1 })

  t.teardown(async () => {
    await spy.endAsync().catch(() => {})
    await agent?.close()
    await hub.close()
    closeApiAgents()
    await removeClusterContainers(docker, hub.clusterId)
    await rm(root, { recursive: true, force: true })
  })

  await t.test('the pod gets the value; the broker administrator sees the desired state but never the value', async (t) => {
    const created = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/secrets', {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'db', annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { pw: VALUE } }) } },
      data: { pw: Buffer.from(VALUE).toString('base64') },
    })
    t.equal(created.status, 201, 'the Secret is created')

    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
    agent = await startAgent(
      { dataDir: nodeDir, hub: new URL(hub.url).host, token, nodeName: 'pi-sealed', reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 }, heartbeatIntervalMs: 500, resyncMs: 1_000, pods: { defaultGraceSeconds: 1 } },
      { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() },
    )

    const pod = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'reader' },
      spec: {
        terminationGracePeriodSeconds: 1,
        volumes: [{ name: 'creds', secret: { secretName: 'db' } }],
        containers: [
          {
            name: 'app',
            image,
            env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }],
            volumeMounts: [{ name: 'creds', mountPath: '/etc/creds' }],
            command: ['sh', '-c', 'echo "env=$PW"; echo "file=$(cat /etc/creds/pw)"; trap "exit 0" TERM; while :; do sleep 1; done'],
          },
        ],
      },
    })
    t.equal(pod.status, 201, 'the pod is created')
    const logs = await until('the pod printing its secret', async () => {
      const r = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/reader/log')
      return r.status === 200 && r.text.includes(`file=${VALUE}`) && r.text
    })
    t.match(logs, `env=${VALUE}`, 'the env var holds the value')
    t.match(logs, `file=${VALUE}`, 'so does the secret volume')

    const desired = seen.filter((m) => m.topic === 'bramble/v1/nodes/pi-sealed/down/desired')
    const withSecret = desired.filter((m) => JSON.parse(m.payload).upserts.some((o: any) => o.kind === 'Secret'))
    t.ok(withSecret.length > 0, 'the administrator saw the Secret go down to the node')
    const box = JSON.parse(withSecret[0]!.payload).upserts.find((o: any) => o.kind === 'Secret')
    t.same(Object.keys(box).sort(), ['apiVersion', 'kind', 'metadata', 'sealed'], 'sealed: nothing but its identity in the clear')
    t.equal(box.metadata.annotations, undefined, 'no annotations (last-applied-configuration holds the value too)')

    // The pod's logs went by too (the rpc reply carries them): only desired state and status count here.
    const carried = seen.filter((m) => !m.topic.endsWith('/up/rpc-reply'))
    t.ok(carried.length > 3, `${carried.length} messages seen`)
    for (const needle of [VALUE, Buffer.from(VALUE).toString('base64')]) {
      t.same(carried.filter((m) => m.payload.includes(needle)).map((m) => m.topic), [], `no message carries ${needle === VALUE ? 'the value' : 'its base64'}`)
    }
  })

  await t.test('the key is the node\'s own: kept owner-only in its data dir, its public half on the Node', async (t) => {
    const path = join(nodeDir, 'agent', SECRETS_KEY_FILE)
    t.equal(statSync(path).mode & 0o777, 0o600)
    const node = await apiRequest(admin, 'GET', '/api/v1/nodes/pi-sealed')
    t.equal(node.json.metadata.annotations[ANNOTATION_SECRETS_PUBLIC_KEY], sealingPublicKey(readFileSync(path, 'utf8').trim()))
  })
}
