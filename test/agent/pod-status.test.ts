import t from 'tap'
import type { ContainerInfo } from '../../src/agent/container-runtime.js'
import { appContainerSpec, sandboxSpec } from '../../src/agent/pod-container-spec.js'
import type { DesiredPod, PodSettings } from '../../src/agent/desired-pod.js'
import { emptyPodState } from '../../src/agent/pod-planner.js'
import { computePodStatus } from '../../src/agent/pod-status.js'

const settings: PodSettings = { clusterId: 'c1', podsDir: '/pods', secretsDir: '/run/bramble/c1/pods', pauseImage: 'pause:1', log: { maxSize: '10m', maxFile: 3 }, defaultGraceSeconds: 30 }
const NOW = Date.parse('2026-01-01T00:10:00Z')
const d: DesiredPod = {
  pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u1' }, spec: { containers: [{ name: 'app', image: 'app:1', readinessProbe: { exec: { command: ['true'] } } }] } },
  configMaps: {},
  secrets: {},
}

function c(name: string, status: 'running' | 'exited', attempt = 0, exitCode = 0, oomKilled = false): ContainerInfo {
  const spec = name === 'POD' ? sandboxSpec(d, settings, 0) : (appContainerSpec(d, d.pod.spec.containers[0], 'app', settings, 'x', attempt) as any)
  return {
    id: `${name}${attempt}`,
    name: spec.name,
    image: spec.image,
    imageId: 'sha256:abc',
    labels: spec.labels,
    state: { status, exitCode, oomKilled, startedAt: '2026-01-01T00:00:00.000Z', finishedAt: status === 'exited' ? '2026-01-01T00:05:00.000Z' : undefined },
    ipAddress: name === 'POD' ? '172.17.0.5' : undefined,
  }
}

const images = new Set(['app:1', 'pause:1'])
const status = (containers: ContainerInfo[], extra: Partial<Parameters<typeof computePodStatus>[0]> = {}) =>
  computePodStatus({ desired: d, containers, probes: new Map(), state: emptyPodState(), images, hostIP: '10.0.0.1', now: NOW, settings, ...extra })
const cond = (s: any, type: string) => s.conditions.find((x: any) => x.type === type).status

t.test('a pod with nothing running yet is Pending and its container ContainerCreating', async (t) => {
  const s = status([])
  t.equal(s.phase, 'Pending')
  t.same(s.containerStatuses[0].state, { waiting: { reason: 'ContainerCreating' } })
  t.equal(cond(s, 'PodScheduled'), 'True')
  t.equal(cond(s, 'Ready'), 'False')
  t.notOk(s.podIP)
})

t.test('running but not yet ready until the readiness probe passes', async (t) => {
  const containers = [c('POD', 'running'), c('app', 'running')]
  const s = status(containers)
  t.equal(s.phase, 'Running')
  t.equal(s.podIP, '172.17.0.5')
  t.equal(s.hostIP, '10.0.0.1')
  t.equal(s.containerStatuses[0].ready, false)
  t.equal(s.containerStatuses[0].containerID, 'docker://app0')
  const ready = status(containers, { probes: new Map([['app0', { ready: true, started: true }]]), previous: s })
  t.equal(cond(ready, 'Ready'), 'True')
  t.equal(cond(ready, 'ContainersReady'), 'True')
  const again = status(containers, { probes: new Map([['app0', { ready: true, started: true }]]), previous: ready, now: NOW + 60_000 })
  t.same(again.conditions, ready.conditions, 'unchanged conditions keep their lastTransitionTime')
})

t.test('a crashed container in back-off shows CrashLoopBackOff, its last state and restart count', async (t) => {
  const s = status([c('POD', 'running'), c('app', 'exited', 2, 1), c('app', 'exited', 3, 137, true)], { state: { ...emptyPodState(), backoff: { app: { delayMs: 20_000 } } } })
  const app = s.containerStatuses[0]
  t.equal(app.state.waiting.reason, 'CrashLoopBackOff')
  t.equal(app.lastState.terminated.reason, 'OOMKilled')
  t.equal(app.lastState.terminated.exitCode, 137)
  t.equal(app.restartCount, 3)
})

t.test('phases Succeeded and Failed when containers finish and are not restarted', async (t) => {
  const never = { ...d, pod: { ...d.pod, spec: { ...d.pod.spec, restartPolicy: 'Never' } } }
  const ok = computePodStatus({ desired: never, containers: [c('POD', 'running'), c('app', 'exited', 0, 0)], probes: new Map(), state: emptyPodState(), images, hostIP: 'h', now: NOW, settings })
  t.equal(ok.phase, 'Succeeded')
  t.equal(ok.containerStatuses[0].state.terminated.reason, 'Completed')
  const bad = computePodStatus({ desired: never, containers: [c('POD', 'running'), c('app', 'exited', 0, 3)], probes: new Map(), state: emptyPodState(), images, hostIP: 'h', now: NOW, settings })
  t.equal(bad.phase, 'Failed')
  t.equal(bad.containerStatuses[0].state.terminated.reason, 'Error')
})

t.test('pull failures show ErrImagePull, then ImagePullBackOff while backing off', async (t) => {
  const noImage = new Set(['pause:1'])
  const failed = { ...emptyPodState(), pullFailures: { 'app:1': { at: NOW - 1000, delayMs: 10_000, message: 'manifest unknown' } } }
  t.same(status([c('POD', 'running')], { images: noImage, state: failed }).containerStatuses[0].state.waiting, { reason: 'ErrImagePull', message: 'manifest unknown' }, 'right after the failed pull')
  const state = { ...emptyPodState(), pullFailures: { 'app:1': { at: NOW - 1000, delayMs: 10_000, message: 'manifest unknown', backingOff: true } } }
  t.equal(status([c('POD', 'running')], { images: noImage, state }).containerStatuses[0].state.waiting.reason, 'ImagePullBackOff')
  t.equal(status([c('POD', 'running')], { images: noImage, state, now: NOW + 20_000 }).containerStatuses[0].state.waiting.reason, 'ErrImagePull')
})

t.test('a missing Secret is a CreateContainerConfigError', async (t) => {
  const withSecret = { ...d, pod: { ...d.pod, spec: { containers: [{ name: 'app', image: 'app:1', env: [{ name: 'P', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }] }] } } }
  const s = computePodStatus({ desired: withSecret, containers: [c('POD', 'running')], probes: new Map(), state: emptyPodState(), images, hostIP: 'h', now: NOW, settings })
  t.same(s.containerStatuses[0].state.waiting, { reason: 'CreateContainerConfigError', message: 'secret "s" not found' })
})

t.test('a finished pod whose sandbox is gone keeps its address, its start time and its exit codes', async (t) => {
  const never: DesiredPod = { ...d, pod: { ...d.pod, spec: { ...d.pod.spec, restartPolicy: 'Never' } } }
  const running = status([c('POD', 'running'), c('app', 'running')], { desired: never })
  const s = status([c('app', 'exited', 0, 3)], { desired: never, previous: running })
  t.equal(s.phase, 'Failed')
  t.equal(s.podIP, '172.17.0.5', 'the address it had')
  t.equal(s.startTime, running.startTime)
  t.equal(s.containerStatuses[0].state.terminated.exitCode, 3)
  const afterRestart = status([c('app', 'exited', 0, 3)], { desired: { ...never, pod: { ...never.pod, status: { phase: 'Failed', podIP: '172.17.0.9', startTime: '2026-01-01T00:00:01Z' } } } })
  t.equal(afterRestart.podIP, '172.17.0.9', 'a restarted agent takes it from the hub\'s copy')
  t.equal(afterRestart.startTime, '2026-01-01T00:00:01Z')
})

t.test('a final phase the hub holds is kept; containers of a pod it ended are not shown as restarting', async (t) => {
  const ended: DesiredPod = { ...d, pod: { ...d.pod, status: { phase: 'Failed' } } }
  const s = status([c('app', 'exited', 0, 137)], { desired: ended })
  t.equal(s.phase, 'Failed', 'restartPolicy Always, yet Failed')
  t.equal(s.containerStatuses[0].state.terminated.exitCode, 137)
  t.equal(status([c('POD', 'running'), c('app', 'running')], { desired: { ...d, pod: { ...d.pod, status: { phase: 'Succeeded' } } } }).phase, 'Succeeded', 'never back to Running')
})
