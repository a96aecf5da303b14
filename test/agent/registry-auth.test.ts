// Which registry credentials a pull gets from the pod's imagePullSecrets, and the pull-progress line.

import t from 'tap'
import { registryAuthFor, registryOf } from '../../src/agent/registry-auth.js'
import { PullProgressTracker } from '../../src/agent/pull-progress.js'
import { plan, emptyPodState, type PlanSettings } from '../../src/agent/pod-planner.js'

const b64 = (s: string) => Buffer.from(s).toString('base64')
const pod = (names: string[]) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u1' }, spec: { imagePullSecrets: names.map((name) => ({ name })), containers: [] } }) as any
const configJson = (name: string, auths: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', metadata: { name }, data: { '.dockerconfigjson': b64(JSON.stringify({ auths })) } }) as any

t.test('the registry of an image reference, as Docker reads it', async (t) => {
  t.equal(registryOf('busybox'), 'docker.io')
  t.equal(registryOf('library/busybox:1'), 'docker.io')
  t.equal(registryOf('ghcr.io/home-assistant/home-assistant:stable'), 'ghcr.io')
  t.equal(registryOf('127.0.0.1:5000/app:1'), '127.0.0.1:5000')
  t.equal(registryOf('localhost/app'), 'localhost')
  t.equal(registryOf('index.docker.io/library/nginx'), 'docker.io')
})

t.test('a dockerconfigjson entry for the image registry: auth decoded, or username and password', async (t) => {
  const secrets = {
    other: configJson('other', { 'ghcr.io': { username: 'x', password: 'y' } }),
    reg: configJson('reg', { 'http://127.0.0.1:5000/v1/': { auth: b64('me:pa:ss') } }),
  }
  t.same(registryAuthFor('127.0.0.1:5000/app:1', pod(['other', 'reg']), secrets), { username: 'me', password: 'pa:ss', serveraddress: '127.0.0.1:5000' })
  t.same(registryAuthFor('ghcr.io/o/app', pod(['other', 'reg']), secrets), { username: 'x', password: 'y', serveraddress: 'ghcr.io' })
})

t.test('the older dockercfg type, and Docker Hub keys', async (t) => {
  const secret = { kind: 'Secret', type: 'kubernetes.io/dockercfg', metadata: { name: 'old' }, data: { '.dockercfg': b64(JSON.stringify({ 'https://index.docker.io/v1/': { username: 'hub', password: 'pw' } })) } } as any
  t.same(registryAuthFor('nginx:1', pod(['old']), { old: secret }), { username: 'hub', password: 'pw', serveraddress: 'https://index.docker.io/v1/' })
})

t.test('no credentials: no pull secret named, missing, another type, another registry, or unreadable', async (t) => {
  const opaque = { kind: 'Secret', type: 'Opaque', metadata: { name: 'o' }, data: { '.dockerconfigjson': b64('{"auths":{"127.0.0.1:5000":{"auth":"bWU6cA=="}}}') } } as any
  const broken = { kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', metadata: { name: 'b' }, data: { '.dockerconfigjson': b64('{not json') } } as any
  const elsewhere = configJson('e', { 'ghcr.io': { username: 'x', password: 'y' } })
  t.equal(registryAuthFor('127.0.0.1:5000/app:1', pod([]), { e: elsewhere }), undefined)
  t.equal(registryAuthFor('127.0.0.1:5000/app:1', pod(['missing', 'o', 'b', 'e']), { o: opaque, b: broken, e: elsewhere }), undefined)
})

t.test("the planner's pull step carries the credentials; without a pull secret it has none", async (t) => {
  const settings = { clusterId: 'c', podsDir: '/p', secretsDir: '/s', pauseImage: 'pause:1', log: { maxSize: '1m', maxFile: 1 }, defaultGraceSeconds: 1, backoff: { initialMs: 1, maxMs: 2, resetAfterMs: 3 } } as PlanSettings
  const sandbox = { id: 's', name: 'sb', image: 'pause:1', imageId: 'x', labels: { 'io.bramble.cluster': 'c', 'io.bramble.pod.uid': 'u1', 'io.bramble.container.name': 'POD', 'io.bramble.container.role': 'sandbox' }, state: { status: 'running', exitCode: 0, oomKilled: false } } as any
  const withImage = (p: any) => ({ ...p, spec: { ...p.spec, containers: [{ name: 'app', image: '127.0.0.1:5000/app:1' }] } })
  const secrets = { reg: configJson('reg', { '127.0.0.1:5000': { username: 'me', password: 'pw' } }) }
  const pullOf = (p: any) => {
    // The sandbox's hash must match for the planner to go on to the containers: take it from a first plan.
    const first = plan([{ pod: p, configMaps: {}, secrets }], { containers: [], images: new Set(['pause:1']) }, new Map(), 0, settings)
    const spec = (first.find((s) => s.kind === 'create') as any).spec
    const running = { ...sandbox, name: spec.name, labels: { ...sandbox.labels, ...spec.labels } }
    return plan([{ pod: p, configMaps: {}, secrets }], { containers: [running], images: new Set(['pause:1']) }, new Map([['u1', emptyPodState()]]), 0, settings).find((s) => s.kind === 'pull') as any
  }
  t.same(pullOf(withImage(pod(['reg']))).auth, { username: 'me', password: 'pw', serveraddress: '127.0.0.1:5000' })
  t.equal(pullOf(withImage(pod([]))).auth, undefined)
})

t.test('pull progress: one line per interval, layers done and bytes, a summary at the end', async (t) => {
  const p = new PullProgressTracker(2_000)
  t.equal(p.update({ status: 'Pulling from img-test/app', id: '1' }, 0), undefined, 'nothing to say before a layer is named')
  t.equal(p.update({ status: 'Pulling fs layer', id: 'a' }, 10), '0 of 1 layers')
  t.equal(p.update({ status: 'Pulling fs layer', id: 'b' }, 20), undefined, 'not again within the interval')
  t.equal(p.update({ status: 'Downloading', id: 'a', current: 500_000, total: 1_000_000 }, 2_100), '0 of 2 layers, 0.5 MB of 1.0 MB')
  p.update({ status: 'Downloading', id: 'b', current: 1_000_000, total: 3_000_000 }, 2_200)
  p.update({ status: 'Pull complete', id: 'a' }, 2_300)
  t.equal(p.update({ status: 'Extracting', id: 'b', current: 10, total: 20 }, 4_200), '1 of 2 layers, 4.0 MB of 4.0 MB')
  p.update({ status: 'Pull complete', id: 'b' }, 4_300)
  t.equal(p.text(), '2 layers, 4.0 MB')
  t.equal(new PullProgressTracker(1).text(), '', 'empty when the engine named no layer (the image was there)')
})
