// imagePullSecrets against a real private registry on loopback (Debian's docker-registry with
// htpasswd auth): the busybox test image is pushed there and removed locally; a pod without the
// pull secret shows ErrImagePull with the registry's refusal, one with it runs, and its status
// said how far the pull got while it ran.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { DEFAULT_PAUSE_IMAGE } from '../../src/agent/pod-pause-image.js'
import { PodReconciler } from '../../src/agent/pod-reconciler.js'
import type { DesiredPod } from '../../src/agent/desired-pod.js'
import type { PlanSettings } from '../../src/agent/pod-planner.js'
import type { PodEventRecord } from '../../src/agent/pod-events.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'
import { importUniqueImage } from '../helpers/unique-image.js'
import { pushImage, registryUnavailable, startLocalRegistry } from '../helpers/local-registry.js'

const docker = dockerClient()
const unavailable = (await dockerUnavailable(docker)) ?? registryUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()

async function until<T>(what: string, fn: () => T | undefined | Promise<T | undefined>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function run() {
  const registry = await startLocalRegistry()
  t.teardown(() => registry.stop())
  const tag = randomBytes(3).toString('hex')
  const local = `img-test/unique:${tag}`
  const image = `${registry.address}/img-test/busybox:${tag}`
  await importUniqueImage(docker, local)
  await pushImage(docker, registry, local, image)
  // Gone from the engine, layers and all: the pod's pull must fetch them from the registry.
  await docker.getImage(image).remove()
  await docker.getImage(local).remove()
  t.teardown(() => docker.getImage(image).remove({ force: true }).catch(() => {}))

  const runtime = new DockerRuntime(docker)
  const clusterId = testClusterId()
  const podsDir = await mkdtemp(join(tmpdir(), 'img-pods-'))
  const secretsDir = await mkdtemp(join('/dev/shm', 'img-secrets-'))
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
    backoff: { initialMs: 500, maxMs: 2_000, resetAfterMs: 600_000 },
  }
  const pod = (name: string, pullSecret?: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}-${clusterId}` },
    spec: {
      terminationGracePeriodSeconds: 1,
      ...(pullSecret ? { imagePullSecrets: [{ name: pullSecret }] } : {}),
      containers: [{ name: 'app', image, command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }],
    },
  })
  const dockerConfig = { auths: { [registry.address]: { auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') } } }
  const pullSecret = {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/dockerconfigjson',
    metadata: { name: 'regcred', namespace: 'default' },
    data: { '.dockerconfigjson': Buffer.from(JSON.stringify(dockerConfig)).toString('base64') },
  }
  let desired: DesiredPod[] = [{ pod: pod('no-creds'), configMaps: {}, secrets: {} }]
  const statuses = new Map<string, any[]>()
  const events: PodEventRecord[] = []
  const reconciler = new PodReconciler({
    runtime,
    clock: systemClock,
    logger: silentLogger(),
    settings,
    hostIP: '192.0.2.10',
    desired: () => desired,
    onPodStatus: (key, _uid, status) => statuses.set(key, [...(statuses.get(key) ?? []), status]),
    onEvent: (e) => events.push(e),
    resyncMs: 1_000,
  })
  t.teardown(() => reconciler.stop())
  await reconciler.start()
  const latest = (key: string) => statuses.get(key)?.at(-1)

  await t.test('without the pull secret the pod shows ErrImagePull with the registry refusal', async (t) => {
    const waiting = await until('ErrImagePull', () =>
      (statuses.get('default/no-creds') ?? []).map((s) => s.containerStatuses?.[0]?.state?.waiting).find((w) => w?.reason === 'ErrImagePull'),
    )
    t.match(waiting.message, image, 'the message names the image')
    t.match(waiting.message, /no basic auth credentials|unauthorized|authentication required/i, "and carries the registry's refusal")
    t.ok(events.some((e) => e.reason === 'Failed' && e.involvedObject.name === 'no-creds' && /no basic auth credentials|unauthorized|authentication required/i.test(e.message)), 'a Failed event says it too')
    await until('ImagePullBackOff next', () => latest('default/no-creds')?.containerStatuses?.[0]?.state?.waiting?.reason === 'ImagePullBackOff')
    t.equal(await runtime.imageId(image), undefined, 'the image is still not on the node')
  })

  await t.test('with a dockerconfigjson pull secret the image is pulled and the pod runs', async (t) => {
    desired = [{ pod: pod('with-creds', 'regcred'), configMaps: {}, secrets: { regcred: pullSecret } }]
    await reconciler.resync()
    const status = await until('running', () => {
      const s = latest('default/with-creds')
      return s?.containerStatuses?.[0]?.state?.running ? s : undefined
    })
    t.equal(status.phase, 'Running')
    t.ok(await runtime.imageId(image), 'the image is on the node now')
    const progress = (statuses.get('default/with-creds') ?? []).map((s) => s.containerStatuses?.[0]?.state?.waiting?.message).filter(Boolean)
    t.match(progress.join('\n'), new RegExp(`Pulling image "${image.replace(/[.]/g, '\\.')}": \\d+ of \\d+ layers`), 'the waiting message said how far the pull got')
    const pulled = events.find((e) => e.reason === 'Pulled' && e.involvedObject.name === 'with-creds')
    t.match(pulled?.message, /^Successfully pulled image ".+" in [\d.]+s \(\d+ layers?, [\d.]+ MB\)$/, 'the Pulled event gives the time and size')
  })
}
