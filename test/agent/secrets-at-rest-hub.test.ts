// Secrets at rest, end to end through a real hub and a real agent on Docker: once a pod's Secret
// has reached the node's replica, neither the hub's data dir nor the node's holds its value, raw
// or in base64, while both read it back; the pod reads it from a secret volume kept on tmpfs, not
// under the node's pod directories.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'

const VALUE = 'at-rest-end-to-end-distinctive-3d5e'
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
const docker = dockerClient()

/** Files under `dir` whose raw bytes hold the value or its base64. */
function filesContaining(dir: string): string[] {
  const found: string[] = []
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name)
    if (!statSync(path).isFile()) continue
    const bytes = readFileSync(path)
    for (const v of [VALUE, b64(VALUE)]) if (bytes.includes(Buffer.from(v, 'utf8'))) found.push(`${name} holds ${v}`)
  }
  return found
}

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
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const root = await mkdtemp(join(tmpdir(), 'bramble-secrets-at-rest-'))
  const hubDir = join(root, 'hub')
  const nodeDir = join(root, 'node')
  const secretsDir = await mkdtemp(join('/dev/shm', 'bramble-secrets-at-rest-'))
  const hub = await startHub(resolveHubConfig({ dataDir: hubDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
  let agent: RunningAgent | undefined
  let hubOpen = true
  const kc = parseYaml(readFileSync(hub.kubeconfigPath, 'utf8'))
  const admin: ApiTarget = { server: kc.clusters[0].cluster.server, ca: Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), token: kc.users[0].user.token }
  t.teardown(async () => {
    await agent?.close()
    if (hubOpen) await hub.close()
    closeApiAgents()
    await removeClusterContainers(docker, hub.clusterId)
    await rm(root, { recursive: true, force: true })
    await rm(secretsDir, { recursive: true, force: true })
  })

  await t.test("a pod's Secret is in neither data dir once it reached the node", async (t) => {
    const created = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { pw: VALUE } })
    t.equal(created.status, 201, created.text)
    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
    agent = await startAgent(
      { dataDir: nodeDir, hub: new URL(hub.url).host, token, nodeName: 'pi-at-rest', reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 }, heartbeatIntervalMs: 500, resyncMs: 1_000, pods: { defaultGraceSeconds: 1, secretsDir } },
      { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() },
    )
    // The value goes to the container as an env var and as a secret volume, whose file is on tmpfs.
    const pod = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'user' },
      spec: {
        terminationGracePeriodSeconds: 1,
        volumes: [{ name: 'db', secret: { secretName: 'db' } }],
        containers: [
          {
            name: 'app',
            image,
            env: [{ name: 'PW', valueFrom: { secretKeyRef: { name: 'db', key: 'pw' } } }],
            volumeMounts: [{ name: 'db', mountPath: '/etc/db' }],
            command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'],
          },
        ],
      },
    })
    t.equal(pod.status, 201, pod.text)
    const running = agent
    const held = await until('the Secret in the node replica', () => running.replica.secret('default', 'db'))
    t.equal((held.data as Record<string, string>).pw, b64(VALUE), 'the replica hands the value back')
    const app = await until('the app container running', async () =>
      (await runtime.list({ [LABELS.cluster]: hub.clusterId, [LABELS.podName]: 'user', [LABELS.containerName]: 'app' })).find((c) => c.state.status === 'running'),
    )
    t.equal((await runtime.exec(app.id, ['cat', '/etc/db/pw'])).output, VALUE, 'the pod reads the value from its secret volume')
    t.same(filesContaining(join(nodeDir, 'agent', 'pods')), [], "while no file under the node's pod directories holds it")
    t.equal(filesContaining(secretsDir).length, 1, 'the one file that does is on tmpfs')

    await agent.close()
    agent = undefined
    await hub.close()
    hubOpen = false
    t.same(filesContaining(join(nodeDir, 'agent', 'replica')), [], "the node's replica files hold no trace of the value")
    t.same(filesContaining(nodeDir), [], "nor does any file in the node's data dir")
    t.same(filesContaining(hubDir), [], "nor any file in the hub's data dir")
    t.equal(statSync(join(nodeDir, 'agent', 'secrets.key')).mode & 0o777, 0o600, "the node's at-rest key is owner-only")
    t.equal(statSync(join(hubDir, 'secrets.key')).mode & 0o777, 0o600, "the hub's too")
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
