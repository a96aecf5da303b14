import t from 'tap'
import { LABELS, type ContainerInfo } from '../../src/agent/container-runtime.js'
import { appContainerSpec, sandboxSpec } from '../../src/agent/pod-container-spec.js'
import type { DesiredPod } from '../../src/agent/desired-pod.js'
import { emptyPodState, plan, type PlanSettings, type PodRuntimeState, type Step } from '../../src/agent/pod-planner.js'

const settings: PlanSettings = {
  clusterId: 'c1',
  podsDir: '/var/lib/bramble/pods',
  secretsDir: '/run/bramble/c1/pods',
  pauseImage: 'bramble/pause:1',
  log: { maxSize: '10m', maxFile: 3 },
  defaultGraceSeconds: 30,
  backoff: { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 },
}
const NOW = Date.parse('2026-01-01T00:10:00Z')
const iso = (ms: number) => new Date(ms).toISOString()

function pod(spec: any, name = 'p'): DesiredPod {
  return { pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid: `uid-${name}` }, spec }, configMaps: {}, secrets: {} }
}

let nextId = 0
function container(d: DesiredPod, name: string, status: 'running' | 'exited' | 'created', extra: { attempt?: number; exitCode?: number; startedAt?: number; finishedAt?: number } = {}): ContainerInfo {
  const attempt = extra.attempt ?? 0
  const spec =
    name === 'POD'
      ? sandboxSpec(d, settings, attempt)
      : (appContainerSpec(d, [...(d.pod.spec.initContainers ?? []), ...d.pod.spec.containers].find((c: any) => c.name === name), d.pod.spec.initContainers?.some((c: any) => c.name === name) ? 'init' : 'app', settings, sandboxSpec(d, settings, 0).name, attempt) as any)
  return {
    id: `id${nextId++}`,
    name: spec.name,
    image: spec.image,
    imageId: 'sha256:x',
    labels: spec.labels,
    state: {
      status,
      exitCode: extra.exitCode ?? 0,
      startedAt: extra.startedAt !== undefined ? iso(extra.startedAt) : iso(NOW - 60_000),
      finishedAt: status === 'exited' ? iso(extra.finishedAt ?? NOW - 1_000) : undefined,
      oomKilled: false,
    },
    ipAddress: name === 'POD' ? '172.17.0.2' : undefined,
  }
}

const images = new Set(['bramble/pause:1', 'app:1', 'init:1'])
const kinds = (steps: Step[]) => steps.map((s) => `${s.kind}${'container' in s ? ` ${s.container}` : ''}`)
const run = (desired: DesiredPod[], containers: ContainerInfo[], state: PodRuntimeState = { ...emptyPodState(), volumesHash: undefined }, now = NOW) =>
  plan(desired, { containers, images }, new Map(desired.length ? [[String(desired[0].pod.metadata.uid), state]] : []), now, settings)

const simple = pod({ containers: [{ name: 'app', image: 'app:1' }] })
const settled = (d: DesiredPod): PodRuntimeState => ({ ...emptyPodState(), volumesHash: (run([d], []).find((s) => s.kind === 'writeVolumes') as any)?.hash })

t.test('does nothing when the pod runs as desired', async (t) => {
  const steps = run([simple], [container(simple, 'POD', 'running'), container(simple, 'app', 'running')], settled(simple))
  t.same(steps, [])
})

t.test('does nothing with nothing desired and nothing running', async (t) => {
  t.same(plan([], { containers: [], images }, new Map(), NOW, settings), [])
})

t.test('a new pod gets its volumes, a sandbox, then its containers joined to the sandbox', async (t) => {
  const first = run([simple], [])
  t.same(kinds(first), ['writeVolumes', 'create POD', 'start POD', 'create app', 'start app'], 'in one pass')
  const sandboxSpec = (first[1] as Extract<Step, { kind: 'create' }>).spec
  t.equal((first[3] as Extract<Step, { kind: 'create' }>).spec.networkMode, `container:${sandboxSpec.name}`, 'the app joins the sandbox made before it')
  const withInit = pod({ initContainers: [{ name: 'one', image: 'init:1' }], containers: [{ name: 'app', image: 'app:1' }] })
  t.same(kinds(run([withInit], [])), ['writeVolumes', 'create POD', 'start POD'], 'with init containers, they wait for the sandbox to be seen running')
  const sandbox = container(simple, 'POD', 'running')
  const second = run([simple], [sandbox], settled(simple))
  t.same(kinds(second), ['create app', 'start app'])
  const create = second[0] as Extract<Step, { kind: 'create' }>
  t.equal(create.spec.networkMode, `container:${sandbox.name}`)
  t.equal(create.spec.labels[LABELS.cluster], 'c1')
  t.equal(create.spec.labels[LABELS.podUid], 'uid-p')
})

t.test('a missing image is pulled before the container is created; Never does not pull', async (t) => {
  const d = pod({ containers: [{ name: 'app', image: 'remote:2' }] })
  t.same(kinds(run([d], [container(d, 'POD', 'running')], settled(d))), ['pull app', 'create app', 'start app'])
  const never = pod({ containers: [{ name: 'app', image: 'remote:2', imagePullPolicy: 'Never' }] })
  t.same(kinds(run([never], [container(never, 'POD', 'running')], settled(never))), [])
})

t.test('a failed pull waits out its back-off', async (t) => {
  const d = pod({ containers: [{ name: 'app', image: 'remote:2' }] })
  const state = { ...settled(d), pullFailures: { 'remote:2': { at: NOW - 1_000, delayMs: 10_000, message: 'nope' } } }
  const steps = run([d], [container(d, 'POD', 'running')], state)
  t.same(steps, [{ kind: 'wait', podUid: 'uid-p', container: 'app', until: NOW + 9_000, reason: 'ImagePullBackOff', image: 'remote:2' }])
  t.same(kinds(run([d], [container(d, 'POD', 'running')], state, NOW + 9_000)), ['pull app', 'create app', 'start app'])
})

t.test('init containers run one at a time, in order, before the app containers', async (t) => {
  const d = pod({ initContainers: [{ name: 'one', image: 'init:1' }, { name: 'two', image: 'init:1' }], containers: [{ name: 'app', image: 'app:1' }] })
  const sandbox = container(d, 'POD', 'running')
  const state = settled(d)
  t.same(kinds(run([d], [sandbox], state)), ['create one', 'start one'])
  t.same(kinds(run([d], [sandbox, container(d, 'one', 'running')], state)), [], 'waits for the first to finish')
  t.same(kinds(run([d], [sandbox, container(d, 'one', 'exited')], state)), ['create two', 'start two'])
  t.same(kinds(run([d], [sandbox, container(d, 'one', 'exited'), container(d, 'two', 'exited')], state)), ['create app', 'start app'])
  t.same(kinds(run([d], [sandbox, container(d, 'one', 'exited', { exitCode: 1 })], state)), ['create one', 'start one'], 'a failed init container is restarted')
  const never = pod({ ...d.pod.spec, restartPolicy: 'Never' })
  t.same(kinds(run([never], [container(never, 'POD', 'running'), container(never, 'one', 'exited', { exitCode: 1 })], settled(never))), ['stop POD', 'remove POD'], 'Never: the pod has failed; only its sandbox goes')
})

t.test('an exited container restarts at once, then after a doubling back-off', async (t) => {
  const sandbox = container(simple, 'POD', 'running')
  const exited = container(simple, 'app', 'exited', { exitCode: 1, attempt: 3, finishedAt: NOW - 1_000 })
  const first = run([simple], [sandbox, exited], settled(simple))
  t.same(kinds(first), ['create app', 'start app'])
  const create = first[0] as Extract<Step, { kind: 'create' }>
  t.equal(create.spec.labels[LABELS.attempt], '4', 'the next attempt: restartCount rises')
  t.same(create.backoff, { delayMs: 10_000, restartedAt: NOW })

  const backingOff = { ...settled(simple), backoff: { app: { delayMs: 20_000 } } }
  t.same(run([simple], [sandbox, exited], backingOff), [{ kind: 'wait', podUid: 'uid-p', container: 'app', until: NOW + 19_000, reason: 'CrashLoopBackOff' }])
  const later = run([simple], [sandbox, exited], backingOff, NOW + 19_000)
  t.same((later.find((s) => s.kind === 'create') as any).backoff, { delayMs: 40_000, restartedAt: NOW + 19_000 })
  const capped = run([simple], [sandbox, exited], { ...settled(simple), backoff: { app: { delayMs: 300_000 } } }, NOW + 300_000)
  t.same((capped.find((s) => s.kind === 'create') as any).backoff, { delayMs: 300_000, restartedAt: NOW + 300_000 }, 'capped at 5 minutes')
  const ranLong = container(simple, 'app', 'exited', { exitCode: 1, startedAt: NOW - 20 * 60_000, finishedAt: NOW - 1_000 })
  t.same((run([simple], [sandbox, ranLong], backingOff).find((s) => s.kind === 'create') as any).backoff, { delayMs: 10_000, restartedAt: NOW }, 'reset after 10 minutes of running')
})

t.test("a clock step between the engine's times and the agent's neither stalls a restart for minutes nor skips its back-off", async (t) => {
  const sandbox = container(simple, 'POD', 'running')
  // The engine says the container finished 10 minutes in the agent's future (the agent's clock was set back).
  const fromTheFuture = container(simple, 'app', 'exited', { exitCode: 1, startedAt: NOW + 600_000, finishedAt: NOW + 600_000 })
  const backingOff = { ...settled(simple), backoff: { app: { delayMs: 20_000, restartedAt: NOW - 1_000 } } }
  t.same(run([simple], [sandbox, fromTheFuture], backingOff), [{ kind: 'wait', podUid: 'uid-p', container: 'app', until: NOW + 20_000, reason: 'CrashLoopBackOff' }], 'waits its delay from now, not 10 minutes more')
  // The engine says it finished 10 minutes before the agent last started it (the agent's clock was set forward).
  const fromThePast = container(simple, 'app', 'exited', { exitCode: 1, startedAt: NOW - 600_000, finishedAt: NOW - 600_000 })
  const restarted = { ...settled(simple), backoff: { app: { delayMs: 20_000, restartedAt: NOW - 1_000 } } }
  t.same(run([simple], [sandbox, fromThePast], restarted), [{ kind: 'wait', podUid: 'uid-p', container: 'app', until: NOW + 19_000, reason: 'CrashLoopBackOff' }], 'it cannot have finished before the agent started it: the delay still holds')
})

t.test('restart policies: OnFailure restarts only failures, Never restarts nothing', async (t) => {
  for (const [policy, exitCode, restarts] of [['OnFailure', 0, false], ['OnFailure', 1, true], ['Never', 1, false], ['Always', 0, true]] as const) {
    const d = pod({ restartPolicy: policy, containers: [{ name: 'app', image: 'app:1' }] })
    const steps = run([d], [container(d, 'POD', 'running'), container(d, 'app', 'exited', { exitCode })], settled(d))
    t.equal(steps.some((s) => s.kind === 'create'), restarts, `${policy}, exit ${exitCode}`)
  }
})

t.test('a changed container spec recreates the container', async (t) => {
  const running = container(simple, 'app', 'running')
  const changed = pod({ containers: [{ name: 'app', image: 'app:1', env: [{ name: 'X', value: '1' }] }] })
  const steps = run([changed], [container(changed, 'POD', 'running'), running], settled(changed))
  t.same(kinds(steps), ['stop app', 'remove app', 'create app', 'start app'])
  t.equal((steps[0] as any).reason, 'SpecChanged')
})

t.test('a pod no longer desired is stopped (apps first, with its grace period) and removed', async (t) => {
  const d = pod({ terminationGracePeriodSeconds: 5, containers: [{ name: 'app', image: 'app:1' }] })
  const sandbox = container(d, 'POD', 'running')
  const app = container(d, 'app', 'running')
  const steps = plan([], { containers: [sandbox, app], images }, new Map([['uid-p', { ...emptyPodState(), podDir: true, probing: [app.id] }]]), NOW, settings)
  t.same(kinds(steps), ['stopProbes', 'stop app', 'stop POD', 'remove app', 'remove POD', 'removePodDir'])
  t.equal((steps[1] as any).graceSeconds, 5)
})

t.test('leaves other clusters\' containers alone', async (t) => {
  const other = { ...container(simple, 'app', 'running') }
  other.labels = { ...other.labels, [LABELS.cluster]: 'c2' }
  t.same(plan([], { containers: [other], images }, new Map(), NOW, settings), [])
})

t.test('a dead sandbox takes the pod\'s containers down (stopped, kept for their restart counts) and is recreated', async (t) => {
  const steps = run([simple], [container(simple, 'POD', 'exited'), container(simple, 'app', 'running')], settled(simple))
  t.same(kinds(steps), ['stop app', 'remove POD', 'create POD', 'start POD'])
})

t.test('an unhealthy container is stopped; probes start for running containers that have them', async (t) => {
  const d = pod({ containers: [{ name: 'app', image: 'app:1', livenessProbe: { exec: { command: ['true'] } } }] })
  const app = container(d, 'app', 'running')
  const sandbox = container(d, 'POD', 'running')
  t.same(kinds(run([d], [sandbox, app], settled(d))), ['startProbes app'])
  t.same(run([d], [sandbox, app], { ...settled(d), probing: [app.id] }), [])
  const steps = run([d], [sandbox, app], { ...settled(d), probing: [app.id], unhealthy: [app.id] })
  t.same(kinds(steps), ['stop app'])
  t.equal((steps[0] as any).reason, 'Unhealthy')
})

t.test('a missing ConfigMap holds the pod back; env and volumes resolve from ConfigMaps and Secrets', async (t) => {
  const spec = {
    volumes: [{ name: 'cfg', configMap: { name: 'cm', items: [{ key: 'a', path: 'sub/a.txt' }] } }, { name: 'sec', secret: { secretName: 's' } }],
    containers: [{ name: 'app', image: 'app:1', envFrom: [{ configMapRef: { name: 'cm' }, prefix: 'CM_' }], env: [{ name: 'OPT', valueFrom: { secretKeyRef: { name: 'gone', key: 'k', optional: true } } }] }],
  }
  t.same(run([pod(spec)], []), [], 'nothing until the ConfigMap is there')
  const d: DesiredPod = {
    ...pod(spec),
    configMaps: { cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: 'A', b: 'B' } } },
    secrets: { s: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { pw: Buffer.from('x').toString('base64') } } },
  }
  const write = run([d], []).find((s) => s.kind === 'writeVolumes') as Extract<Step, { kind: 'writeVolumes' }>
  t.same(write.files.map((f) => [f.root, f.path, Buffer.from(f.contentBase64, 'base64').toString()]), [['pod', 'volumes/cfg/sub/a.txt', 'A'], ['secrets', 'sec/pw', 'x']], 'items honoured; the Secret goes to the secrets directory')
  const create = run([d], [container(d, 'POD', 'running')], settled(d)).find((s) => s.kind === 'create') as Extract<Step, { kind: 'create' }>
  t.same(create.spec.env, ['CM_a=A', 'CM_b=B'])
})

t.test('a dead sandbox is replaced; its app containers are restarted in the new one and keep counting restarts', async (t) => {
  const d = pod({ initContainers: [{ name: 'init', image: 'init:1' }], containers: [{ name: 'app', image: 'app:1' }] })
  const deadSandbox = container(d, 'POD', 'exited')
  const init = container(d, 'init', 'exited')
  const app = container(d, 'app', 'exited', { attempt: 2, exitCode: 137 })
  const first = run([d], [deadSandbox, init, app], settled(d))
  t.same(kinds(first), ['remove POD', 'remove init', 'create POD', 'start POD'], 'the app container stays for its restart count')
  const sandbox = container(d, 'POD', 'running', { attempt: 1 })
  const initAgain = run([d], [sandbox, app], settled(d))
  t.same(kinds(initAgain), ['create init', 'start init'], 'init containers run again in the new sandbox')
  const second = run([d], [sandbox, container(d, 'init', 'exited'), app], settled(d))
  const create = second.find((s) => s.kind === 'create') as Extract<Step, { kind: 'create' }>
  t.equal(create.spec.labels[LABELS.attempt], '3', 'restartCount goes on from 2')
  t.equal(create.spec.networkMode, `container:${sandbox.name}`)
})

t.test('a finished pod keeps its exited containers; its sandbox is stopped and removed; nothing runs again', async (t) => {
  for (const [policy, exitCode] of [['Never', 0], ['Never', 3], ['OnFailure', 0]] as const) {
    const d = pod({ restartPolicy: policy, initContainers: [{ name: 'init', image: 'init:1' }], containers: [{ name: 'app', image: 'app:1' }] })
    const init = container(d, 'init', 'exited')
    const app = container(d, 'app', 'exited', { exitCode })
    const steps = run([d], [container(d, 'POD', 'running'), init, app], settled(d))
    t.same(kinds(steps), ['stop POD', 'remove POD'], `${policy}, exit ${exitCode}`)
    t.same(run([d], [init, app], settled(d)), [], `${policy}, exit ${exitCode}: once the sandbox is gone, nothing to do`)
  }
})

t.test('a pod with containers still running, or restarted by its policy, has not finished', async (t) => {
  const d = pod({ restartPolicy: 'Never', containers: [{ name: 'a', image: 'app:1' }, { name: 'b', image: 'app:1' }] })
  const sandbox = container(d, 'POD', 'running')
  t.same(run([d], [sandbox, container(d, 'a', 'exited'), container(d, 'b', 'running')], settled(d)), [], 'Never: b still runs; a stays exited')
  const onFailure = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'app', image: 'app:1' }] })
  t.same(kinds(run([onFailure], [container(onFailure, 'POD', 'running'), container(onFailure, 'app', 'exited', { exitCode: 1 })], settled(onFailure))), ['create app', 'start app'], 'OnFailure: a failure restarts')
})

t.test('after an agent restart or a reboot a finished pod is not run again', async (t) => {
  const d = pod({ restartPolicy: 'Never', containers: [{ name: 'app', image: 'app:1' }] })
  const fresh = emptyPodState() // what a restarted agent knows of the pod: nothing
  t.same(run([d], [container(d, 'app', 'exited')], fresh), [], 'sandbox removed before the restart: the exited container is all it needs')
  t.same(kinds(run([d], [container(d, 'POD', 'exited'), container(d, 'app', 'exited', { exitCode: 137 })], fresh)), ['remove POD'], 'a reboot stopped the sandbox: no new one')
  const reported = { ...d, pod: { ...d.pod, status: { phase: 'Succeeded' } } }
  t.same(run([reported], [], fresh), [], 'the hub holds it as Succeeded: even with its containers gone, nothing is created')
})

t.test('the hub\'s final phase ends a pod: what runs is stopped and kept, nothing restarts', async (t) => {
  const d = pod({ terminationGracePeriodSeconds: 7, containers: [{ name: 'app', image: 'app:1' }] })
  const failed = { ...d, pod: { ...d.pod, status: { phase: 'Failed' } } }
  const app = container(d, 'app', 'running')
  const steps = run([failed], [container(d, 'POD', 'running'), app], settled(d))
  t.same(kinds(steps), ['stop app', 'stop POD', 'remove POD'])
  t.equal((steps[0] as any).graceSeconds, 7)
  t.same(run([failed], [container(d, 'app', 'exited', { exitCode: 137 })], settled(d)), [], 'restartPolicy Always does not bring it back')
})

t.test('in a new sandbox, OnFailure keeps a container that succeeded and restarts the one that failed', async (t) => {
  const d = pod({ restartPolicy: 'OnFailure', containers: [{ name: 'done', image: 'app:1' }, { name: 'cut', image: 'app:1' }] })
  const done = container(d, 'done', 'exited')
  const cut = container(d, 'cut', 'exited', { exitCode: 137 })
  t.same(kinds(run([d], [container(d, 'POD', 'exited'), done, cut], settled(d))), ['remove POD', 'create POD', 'start POD'])
  const steps = run([d], [container(d, 'POD', 'running', { attempt: 1 }), done, cut], settled(d))
  t.same(kinds(steps), ['remove cut', 'create cut', 'start cut'], 'the failed one runs again in the new sandbox; the one that succeeded does not')
})

t.test('a finished pod no longer desired has its containers and directory removed', async (t) => {
  const d = pod({ restartPolicy: 'Never', containers: [{ name: 'app', image: 'app:1' }] })
  const app = container(d, 'app', 'exited')
  const steps = plan([], { containers: [app], images }, new Map([['uid-p', emptyPodState()]]), NOW, settings)
  t.same(kinds(steps), ['remove app', 'removePodDir'], 'the directory too, though this agent (restarted) never wrote it')
  t.same(plan([], { containers: [], images }, new Map([['uid-p', { ...emptyPodState(), podDir: false }]]), NOW, settings), [], 'once gone, nothing more')
})

t.test('secret volumes live in the tmpfs secrets directory, configMap and emptyDir volumes in the pod directory', async (t) => {
  const spec = {
    volumes: [{ name: 'cfg', configMap: { name: 'cm' } }, { name: 'scratch', emptyDir: {} }, { name: 'tls', secret: { secretName: 's', defaultMode: 0o400 } }],
    containers: [{ name: 'app', image: 'app:1', volumeMounts: [{ name: 'cfg', mountPath: '/etc/cfg' }, { name: 'scratch', mountPath: '/tmp/s' }, { name: 'tls', mountPath: '/etc/tls' }] }],
  }
  const d: DesiredPod = {
    ...pod(spec),
    configMaps: { cm: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cm' }, data: { a: 'A' } } },
    secrets: { s: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { 'tls.key': Buffer.from('k').toString('base64') } } },
  }
  const write = run([d], []).find((s) => s.kind === 'writeVolumes') as Extract<Step, { kind: 'writeVolumes' }>
  t.same(write.dirs, [{ root: 'pod', path: 'volumes/cfg' }, { root: 'pod', path: 'volumes/scratch' }, { root: 'secrets', path: 'tls' }])
  t.same(write.files.map((f) => [f.root, f.volumeDir, f.path, f.mode]), [['pod', 'volumes/cfg', 'volumes/cfg/a', 0o644], ['secrets', 'tls', 'tls/tls.key', 0o400]], 'the secret key keeps its defaultMode')
  const app = appContainerSpec(d, d.pod.spec.containers[0], 'app', settings, 'sandbox', 0)
  t.same(
    (app as any).mounts,
    [
      { type: 'bind', source: '/var/lib/bramble/pods/uid-p/volumes/cfg', target: '/etc/cfg', readOnly: true },
      { type: 'bind', source: '/var/lib/bramble/pods/uid-p/volumes/scratch', target: '/tmp/s', readOnly: false },
      { type: 'bind', source: '/run/bramble/c1/pods/uid-p/tls', target: '/etc/tls', readOnly: true },
    ],
    'the secret is bind-mounted read-only from <secretsDir>/<uid>/<volume>',
  )
  t.same(run([d], [], { ...emptyPodState() }).filter((s) => s.kind === 'writeVolumes').length, 1, 'after an agent restart (no volumesHash) the files are written again, as after a reboot wiped /run')
  t.same(run([d], [], { ...emptyPodState(), volumesHash: write.hash }).filter((s) => s.kind === 'writeVolumes'), [], 'written once: nothing to do')
})
