// The pod loop against a real dockerd, with images imported from the host's busybox.

import t from 'tap'
import { mkdtemp, rm, access, readFile, readdir, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { DEFAULT_PAUSE_IMAGE } from '../../src/agent/pod-pause-image.js'
import { PodReconciler } from '../../src/agent/pod-reconciler.js'
import type { DesiredPod } from '../../src/agent/desired-pod.js'
import type { PlanSettings } from '../../src/agent/pod-planner.js'
import type { PodEventRecord } from '../../src/agent/pod-events.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
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
  const podsDir = await mkdtemp(join(tmpdir(), 'bramble-pods-'))
  // Secret volumes on tmpfs, as /run is on a Pi.
  const secretsDir = await mkdtemp(join('/dev/shm', 'bramble-secrets-'))
  t.teardown(async () => {
    await removeClusterContainers(docker, clusterId)
    await rm(podsDir, { recursive: true, force: true })
    await rm(secretsDir, { recursive: true, force: true })
  })
  const settings: PlanSettings = {
    clusterId,
    podsDir,
    secretsDir,
    pauseImage: DEFAULT_PAUSE_IMAGE,
    log: { maxSize: '1m', maxFile: 2 },
    defaultGraceSeconds: 1,
    backoff: { initialMs: 300, maxMs: 1_000, resetAfterMs: 600_000 },
  }

  const configMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'site', namespace: 'default' }, data: { 'index.html': 'hello from a configmap' } }
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds', namespace: 'default' }, data: { password: Buffer.from('s3cret').toString('base64') } }
  const webPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'web', namespace: 'default', uid: `uid-web-${clusterId}` },
    spec: {
      terminationGracePeriodSeconds: 1,
      volumes: [{ name: 'site', configMap: { name: 'site' } }, { name: 'creds', secret: { secretName: 'creds', defaultMode: 0o440 } }],
      containers: [
        {
          name: 'server',
          image,
          command: ['httpd', '-f', '-p', '8080', '-h', '/www'],
          volumeMounts: [{ name: 'site', mountPath: '/www' }],
          ports: [{ containerPort: 8080 }],
          readinessProbe: { httpGet: { path: '/index.html', port: 8080 }, periodSeconds: 1 },
          resources: { limits: { cpu: '250m', memory: '32Mi' }, requests: { cpu: '100m' } },
        },
        {
          name: 'client',
          image,
          command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'],
          env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'creds', key: 'password' } } }, { name: 'GREETING', value: 'hi' }],
          volumeMounts: [{ name: 'creds', mountPath: '/etc/creds' }],
        },
      ],
    },
  }
  const crashPod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'crasher', namespace: 'default', uid: `uid-crash-${clusterId}` },
    spec: {
      terminationGracePeriodSeconds: 1,
      initContainers: [{ name: 'setup', image, command: ['sh', '-c', 'echo init done'] }],
      containers: [{ name: 'app', image, command: ['sh', '-c', 'echo crashing; exit 2'] }],
    },
  }
  let desired: DesiredPod[] = [
    { pod: webPod, configMaps: { site: configMap }, secrets: { creds: secret } },
    { pod: crashPod, configMaps: {}, secrets: {} },
  ]
  const statuses = new Map<string, any>()
  const events: PodEventRecord[] = []
  const makeReconciler = () =>
    new PodReconciler({
      runtime,
      clock: systemClock,
      logger: silentLogger(),
      settings,
      hostIP: '192.0.2.10',
      desired: () => desired,
      onPodStatus: (key, _uid, status) => statuses.set(key, status),
      onEvent: (e) => events.push(e),
      resyncMs: 1_000,
    })
  let reconciler = makeReconciler()
  t.teardown(() => reconciler.stop())
  await reconciler.start()

  const podContainers = (uid: string) => runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: uid })
  const running = async (uid: string, name: string) =>
    (await podContainers(uid)).find((c) => c.labels[LABELS.containerName] === name && c.state.status === 'running')

  await t.test('a 2-container pod runs, shares its network namespace, reads its ConfigMap volume and Secret env, and turns Ready', async (t) => {
    const status = await until('web pod Ready', () => {
      const s = statuses.get('default/web')
      return s?.conditions?.find((c: any) => c.type === 'Ready' && c.status === 'True') ? s : undefined
    })
    t.equal(status.phase, 'Running')
    t.match(status.podIP, /^\d+\.\d+\.\d+\.\d+$/)
    t.equal(status.hostIP, '192.0.2.10')
    t.same(status.containerStatuses.map((c: any) => [c.name, c.ready, c.restartCount]), [['server', true, 0], ['client', true, 0]])
    t.match(status.containerStatuses[0].containerID, /^docker:\/\//)

    const client = await until('client running', () => running(webPod.metadata.uid, 'client'))
    const fetched = await runtime.exec(client.id, ['wget', '-qO-', 'http://127.0.0.1:8080/index.html'])
    t.same(fetched, { exitCode: 0, output: 'hello from a configmap' }, 'localhost reaches the other container')
    t.equal((await runtime.exec(client.id, ['sh', '-c', 'echo "$PASSWORD $GREETING"'])).output, 's3cret hi\n')
    t.equal((await runtime.exec(client.id, ['cat', '/etc/creds/password'])).output, 's3cret', 'the Secret volume is read in the pod')
    t.not((await runtime.exec(client.id, ['sh', '-c', 'echo x > /etc/creds/new'])).exitCode, 0, 'the secret volume is read-only')
    const secretFile = join(secretsDir, webPod.metadata.uid, 'creds', 'password')
    t.equal(await readFile(secretFile, 'utf8'), 's3cret', 'the file is at <secretsDir>/<uid>/<volume>/<key>')
    t.equal((await stat(secretFile)).mode & 0o777, 0o440, "with the volume's defaultMode")
    t.equal((await stat(join(secretsDir, webPod.metadata.uid))).mode & 0o777, 0o700, "the pod's secrets directory is owner-only")
    t.same(await filesHolding(podsDir, 's3cret'), [], 'no file under the pod directories holds the value')
    t.ok((await filesHolding(podsDir, 'hello from a configmap')).length > 0, 'while the ConfigMap volume stays there')
    const server = await until('server running', () => running(webPod.metadata.uid, 'server'))
    t.equal((await runtime.exec(server.id, ['cat', '/www/index.html'])).output, 'hello from a configmap')
    t.not((await runtime.exec(server.id, ['sh', '-c', 'echo x > /www/new'])).exitCode, 0, 'the configMap volume is read-only')
    const hostConfig = (await docker.getContainer(server.id).inspect()).HostConfig
    t.equal(hostConfig.NanoCpus, 250_000_000)
    t.equal(hostConfig.Memory, 32 * 1024 * 1024)
    t.equal(server.labels[LABELS.cpuRequest], '100m')
    t.ok(events.some((e) => e.reason === 'Started' && e.involvedObject.name === 'web'), 'a Started event')
  })

  await t.test('an exiting container is restarted with back-off and its restart count rises', async (t) => {
    const status = await until('crasher restarted twice', () => {
      const s = statuses.get('default/crasher')
      return s?.containerStatuses?.[0]?.restartCount >= 2 ? s : undefined
    })
    t.equal(status.initContainerStatuses[0].state.terminated.reason, 'Completed')
    const app = status.containerStatuses[0]
    t.equal(app.lastState.terminated.exitCode, 2)
    t.equal(app.lastState.terminated.reason, 'Error')
    t.ok(events.some((e) => e.reason === 'BackOff' && e.involvedObject.name === 'crasher'), 'a BackOff event')
    const apps = (await podContainers(crashPod.metadata.uid)).filter((c) => c.labels[LABELS.containerName] === 'app')
    t.ok(apps.length <= 2, 'only the latest attempt and the one before it are kept')
  })

  await t.test('a new reconciler (an agent restart) adopts the running containers without duplicates', async (t) => {
    const before = (await podContainers(webPod.metadata.uid)).map((c) => c.id).sort()
    await reconciler.stop()
    statuses.clear()
    // A reboot empties /run: the new agent writes the secret volumes again from its replica.
    await rm(join(secretsDir, webPod.metadata.uid), { recursive: true, force: true })
    reconciler = makeReconciler()
    await reconciler.start()
    await until('web pod Ready again', () => statuses.get('default/web')?.conditions?.find((c: any) => c.type === 'Ready' && c.status === 'True'))
    const after = (await podContainers(webPod.metadata.uid)).map((c) => c.id).sort()
    t.same(after, before, 'the same containers, none added')
    const secretFile = join(secretsDir, webPod.metadata.uid, 'creds', 'password')
    t.equal(await until('secret volume rewritten', () => readFile(secretFile, 'utf8').catch(() => undefined)), 's3cret', 'the wiped secret volume is written again')
  })

  await t.test('deleting a pod stops and removes its containers and its directory', async (t) => {
    desired = []
    await reconciler.resync()
    await until('containers removed', async () => (await runtime.list({ [LABELS.cluster]: clusterId })).length === 0)
    for (const dir of [join(podsDir, webPod.metadata.uid), join(secretsDir, webPod.metadata.uid)]) {
      await until(`${dir} removed`, async () => {
        try {
          await access(dir)
          return false
        } catch {
          return true
        }
      })
    }
    t.pass('nothing of the pods remains')
  })
}

/** Files under `dir` whose content holds `value`. */
async function filesHolding(dir: string, value: string): Promise<string[]> {
  const found: string[] = []
  for (const e of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!e.isFile()) continue
    const path = join(e.parentPath, e.name)
    if ((await readFile(path)).includes(value)) found.push(path)
  }
  return found
}
