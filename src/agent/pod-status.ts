// Kubernetes PodStatus from what the engine reports, probe results and back-off state. Pure.

import type { KubeObject } from '../api/types.js'
import type { ContainerInfo } from './container-runtime.js'
import { LABELS } from './container-runtime.js'
import { appContainerSpec } from './pod-container-spec.js'
import { PodConfigProblem, type DesiredPod, type PodSettings } from './desired-pod.js'
import { podVolumes } from './pod-volumes.js'
import { finishedPhase, hubFinishedPhase } from './pod-finished.js'
import { attemptOf, groupByName, isRunning, pullPolicy, type PodRuntimeState } from './pod-planner.js'
import type { ProbeResults } from './probes.js'

export interface PodStatusInput {
  desired: DesiredPod
  /** This pod's containers, as the engine reports them. */
  containers: ContainerInfo[]
  /** Probe results by container id (containers without probes need no entry). */
  probes: ReadonlyMap<string, ProbeResults>
  state: PodRuntimeState
  images: ReadonlySet<string>
  hostIP: string
  now: number
  settings: PodSettings
  /** The status last reported, so unchanged conditions keep their lastTransitionTime. */
  previous?: any
}

export function computePodStatus(input: PodStatusInput): any {
  const { desired, containers, probes, state, now } = input
  const pod = desired.pod
  const nowIso = new Date(now).toISOString()
  const byName = groupByName(containers)
  const sandbox = byName.get('POD')?.at(-1)
  const sandboxRunning = sandbox !== undefined && isRunning(sandbox)
  const policy: string = pod.spec?.restartPolicy ?? 'Always'
  const finished = finishedPhase(pod, containers)
  const volumeProblem = podVolumes(desired, input.settings)
  const configProblem = volumeProblem instanceof PodConfigProblem ? volumeProblem.message : undefined

  const statusOf = (spec: any, role: 'init' | 'app') => containerStatus(input, spec, role, byName.get(spec.name) ?? [], finished ? 'Never' : policy, configProblem, sandbox)

  const initStatuses = (pod.spec?.initContainers ?? []).map((c: any) => statusOf(c, 'init'))
  const initDone = initStatuses.every((s: any) => s.state.terminated?.exitCode === 0)
  const initFailed = policy === 'Never' && initStatuses.some((s: any) => s.state.terminated && s.state.terminated.exitCode !== 0)
  const appStatuses = (pod.spec?.containers ?? []).map((c: any) => {
    const s = statusOf(c, 'app')
    if (!initDone && s.state.waiting?.reason === 'ContainerCreating') s.state.waiting.reason = 'PodInitializing'
    return s
  })

  let phase: string
  const terminated = appStatuses.filter((s: any) => s.state.terminated)
  // A final phase the hub holds stays: a pod never goes back from Succeeded or Failed.
  const fromHub = hubFinishedPhase(pod)
  if (fromHub) phase = fromHub
  else if (initFailed) phase = 'Failed'
  else if (appStatuses.length > 0 && terminated.length === appStatuses.length) {
    phase = terminated.every((s: any) => s.state.terminated.exitCode === 0) ? 'Succeeded' : 'Failed'
  } else if (sandboxRunning && initDone && appStatuses.every((s: any) => s.state.running || s.state.terminated || s.lastState.terminated)) {
    phase = 'Running'
  } else phase = 'Pending'

  const allReady = appStatuses.length > 0 && appStatuses.every((s: any) => s.ready)
  // A finished pod's sandbox is gone; its address is still the one it had (the kubelet keeps it too).
  const lastIP = finished ? input.previous?.podIP ?? state.podIP ?? pod.status?.podIP : undefined
  const podIP = pod.spec?.hostNetwork ? input.hostIP : sandboxRunning ? sandbox?.ipAddress : lastIP
  const previousConditions: any[] = input.previous?.conditions ?? []
  const condition = (type: string, ok: boolean, reason?: string) => {
    const status = ok ? 'True' : 'False'
    const prev = previousConditions.find((c) => c.type === type)
    return {
      type,
      status,
      lastProbeTime: null,
      lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : nowIso,
      ...(ok || !reason ? {} : { reason }),
    }
  }
  const notReadyReason = phase === 'Succeeded' || phase === 'Failed' ? 'PodCompleted' : 'ContainersNotReady'
  const status: any = {
    phase,
    conditions: [
      condition('PodScheduled', true),
      condition('Initialized', initDone, 'ContainersNotInitialized'),
      condition('ContainersReady', allReady, notReadyReason),
      condition('Ready', allReady, notReadyReason),
    ],
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    ...(podIP ? { podIP, podIPs: [{ ip: podIP }] } : {}),
    startTime: input.previous?.startTime ?? pod.status?.startTime ?? sandbox?.state.startedAt ?? nowIso,
    ...(initStatuses.length ? { initContainerStatuses: initStatuses } : {}),
    containerStatuses: appStatuses,
    qosClass: qosClass(pod),
  }
  void probes
  return status
}

function containerStatus(
  input: PodStatusInput,
  spec: any,
  role: 'init' | 'app',
  history: ContainerInfo[],
  policy: string,
  volumeProblem: string | undefined,
  sandbox: ContainerInfo | undefined,
): any {
  const latest = history.at(-1)
  const previous = history.at(-2)
  const base = { name: spec.name, image: spec.image, imageID: latest?.imageId ?? '', restartCount: latest ? attemptOf(latest) : 0 }
  const lastState = previous && previous.state.status === 'exited' ? { terminated: terminatedOf(previous) } : {}
  if (!latest) {
    return { ...base, state: { waiting: waitingBeforeCreate(input, spec, role, volumeProblem, sandbox) }, lastState, ready: false, started: false }
  }
  const withId = { ...base, containerID: `docker://${latest.id}` }
  if (isRunning(latest)) {
    const probe = input.probes.get(latest.id)
    const started = probe ? probe.started : true
    const ready = role === 'app' && started && (probe ? probe.ready : !spec.readinessProbe)
    return { ...withId, state: { running: { startedAt: latest.state.startedAt } }, lastState, ready, started }
  }
  if (latest.state.status === 'created') {
    return { ...withId, state: { waiting: { reason: 'ContainerCreating' } }, lastState, ready: false, started: false }
  }
  const term = terminatedOf(latest)
  const willRestart = role === 'init' ? policy !== 'Never' && term.exitCode !== 0 : policy === 'Always' || (policy === 'OnFailure' && term.exitCode !== 0)
  if (willRestart) {
    const delay = input.state.backoff[spec.name]?.delayMs
    const waiting = delay
      ? { reason: 'CrashLoopBackOff', message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${spec.name} pod=${input.desired.pod.metadata.name}_${input.desired.pod.metadata.namespace ?? 'default'}(${input.desired.pod.metadata.uid})` }
      : { reason: 'ContainerCreating' }
    return { ...withId, state: { waiting }, lastState: { terminated: term }, ready: false, started: false }
  }
  return { ...withId, state: { terminated: term }, lastState, ready: false, started: false }
}

function waitingBeforeCreate(input: PodStatusInput, spec: any, role: 'init' | 'app', volumeProblem: string | undefined, sandbox: ContainerInfo | undefined): any {
  if (volumeProblem) return { reason: 'CreateContainerConfigError', message: volumeProblem }
  const check = appContainerSpec(input.desired, spec, role, input.settings, sandbox?.name ?? 'sandbox', 0)
  if (check instanceof PodConfigProblem) return { reason: 'CreateContainerConfigError', message: check.message }
  const present = input.images.has(spec.image)
  if (!present && pullPolicy(spec) === 'Never') {
    return { reason: 'ErrImageNeverPull', message: `Container image "${spec.image}" is not present with pull policy of Never` }
  }
  const failure = input.state.pullFailures[spec.image]
  if (!present && failure) {
    // Right after the failed pull the pod shows ErrImagePull; once it waits, ImagePullBackOff (as the kubelet says them).
    const inBackoff = failure.backingOff === true && input.now < failure.at + failure.delayMs
    return inBackoff
      ? { reason: 'ImagePullBackOff', message: `Back-off pulling image "${spec.image}"` }
      : { reason: 'ErrImagePull', message: failure.message }
  }
  const pulling = input.state.pulling?.[spec.image]
  return pulling ? { reason: 'ContainerCreating', message: pulling } : { reason: 'ContainerCreating' }
}

function terminatedOf(c: ContainerInfo): any {
  const exitCode = c.state.exitCode
  return {
    exitCode,
    reason: c.state.oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error',
    startedAt: c.state.startedAt ?? null,
    finishedAt: c.state.finishedAt ?? null,
    containerID: `docker://${c.id}`,
  }
}

function qosClass(pod: KubeObject): string {
  const containers: any[] = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])]
  const any = containers.some((c) => c.resources?.requests || c.resources?.limits)
  if (!any) return 'BestEffort'
  const guaranteed = containers.every((c) => {
    const l = c.resources?.limits ?? {}
    const r = c.resources?.requests ?? l
    return l.cpu !== undefined && l.memory !== undefined && String(r.cpu ?? l.cpu) === String(l.cpu) && String(r.memory ?? l.memory) === String(l.memory)
  })
  return guaranteed ? 'Guaranteed' : 'Burstable'
}

/** The pod uid of a container. */
export function podUidOf(c: ContainerInfo): string | undefined {
  return c.labels[LABELS.podUid]
}
