// The agent's decision, pure (STYLE.md §2): desired pods and the containers the engine reports in,
// the steps between them out. No clock, no config, no I/O: `now` and settings are arguments.

import type { ContainerInfo, ContainerSpec } from './container-runtime.js'
import { LABELS } from './container-runtime.js'
import { restartDecision, type BackoffEntry, type BackoffSettings } from './backoff.js'
import { appContainerSpec, sandboxSpec, specHash } from './pod-container-spec.js'
import { graceSeconds, podUid, PodConfigProblem, type DesiredPod, type PodSettings } from './desired-pod.js'
import { podVolumes, type PodVolumes, type VolumeDir, type VolumeFile } from './pod-volumes.js'
import { finishedPhase, hasEnded, restartsAfter } from './pod-finished.js'
import type { ProbeSpec } from './probes.js'
import { registryAuthFor, type RegistryAuth } from './registry-auth.js'

export interface PlanSettings extends PodSettings {
  backoff: BackoffSettings
}

/** What the agent remembers of a pod between passes (lost on restart, which is safe). */
export interface PodRuntimeState {
  /** Hash of the volume files last written. */
  volumesHash?: string
  /** The pod directory exists on disk (true), does not (false), or is not known to either way. */
  podDir?: boolean
  /** Crash-loop back-off per container name. */
  backoff: Record<string, BackoffEntry>
  /** Failed pulls per image: when, and how long to wait before the next try. */
  pullFailures: Record<string, { at: number; delayMs: number; message: string; /** The pod waits out the back-off (ImagePullBackOff); before that it shows ErrImagePull. */ backingOff?: boolean }>
  /** Pulls under way per image: how far they got, as a person reads it. */
  pulling?: Record<string, string>
  /** Ids of containers whose liveness or startup probe failed past its threshold. */
  unhealthy: string[]
  /** Ids of containers whose probes run. */
  probing: string[]
  /** The address of the pod's sandbox when last seen running (a finished pod's status keeps it). */
  podIP?: string
  /** Seconds the pod's deletion gave its containers to stop (an eviction's), instead of the pod's own. */
  deletionGraceSeconds?: number
}

export function emptyPodState(): PodRuntimeState {
  return { backoff: {}, pullFailures: {}, unhealthy: [], probing: [] }
}

export interface ActualState {
  containers: ContainerInfo[]
  /** Image references present in the engine. */
  images: ReadonlySet<string>
}

export type StopReason = 'Killing' | 'Unhealthy' | 'SpecChanged' | 'SandboxChanged' | 'PodDeleted'

export type Step =
  | { kind: 'ensurePauseImage'; podUid: string; image: string }
  | { kind: 'pull'; podUid: string; container: string; image: string; /** Keep going if it fails (policy Always, image present). */ bestEffort: boolean; /** From the pod's imagePullSecrets. */ auth?: RegistryAuth }
  | { kind: 'writeVolumes'; podUid: string; dirs: VolumeDir[]; files: VolumeFile[]; hostPaths: PodVolumes['hostPaths']; hash: string }
  | { kind: 'create'; podUid: string; container: string; role: 'sandbox' | 'init' | 'app'; spec: ContainerSpec; /** Back-off entry to keep once created (a restart). */ backoff?: BackoffEntry; restart: boolean }
  | { kind: 'start'; podUid: string; container: string; /** Container id or name. */ target: string }
  | { kind: 'stop'; podUid: string; container: string; id: string; graceSeconds: number; reason: StopReason }
  | { kind: 'remove'; podUid: string; container: string; id: string }
  | { kind: 'startProbes'; podUid: string; container: string; id: string; probes: ProbeSpec }
  | { kind: 'stopProbes'; podUid: string; id: string }
  | { kind: 'removePodDir'; podUid: string }
  /** Nothing to do for this container until `until` (ms since the epoch): look again then. */
  | { kind: 'wait'; podUid: string; container: string; until: number; reason: 'CrashLoopBackOff' | 'ImagePullBackOff'; /** The image whose pull failed (ImagePullBackOff). */ image?: string }

/** Plans every pod uid found in desired or actual. `states` has one entry per uid it knows. */
export function plan(
  desired: DesiredPod[],
  actual: ActualState,
  states: ReadonlyMap<string, PodRuntimeState>,
  now: number,
  settings: PlanSettings,
): Step[] {
  const byUid = new Map<string, ContainerInfo[]>()
  for (const c of actual.containers) {
    const uid = c.labels[LABELS.podUid]
    if (!uid || c.labels[LABELS.cluster] !== settings.clusterId) continue
    byUid.set(uid, [...(byUid.get(uid) ?? []), c])
  }
  const steps: Step[] = []
  const desiredUids = new Set<string>()
  for (const d of desired) {
    const uid = podUid(d.pod)
    desiredUids.add(uid)
    steps.push(...planPod(d, byUid.get(uid) ?? [], actual.images, states.get(uid) ?? emptyPodState(), now, settings))
  }
  const undesired = new Set([...byUid.keys(), ...states.keys()])
  for (const uid of undesired) {
    if (!desiredUids.has(uid)) steps.push(...planRemoval(uid, byUid.get(uid) ?? [], states.get(uid) ?? emptyPodState()))
  }
  return steps
}

/** A pod no longer desired: stop app containers, then the sandbox; remove all; clean its dir. */
export function planRemoval(uid: string, containers: ContainerInfo[], state: PodRuntimeState): Step[] {
  const steps: Step[] = []
  for (const id of state.probing) steps.push({ kind: 'stopProbes', podUid: uid, id })
  const ordered = [...containers].sort((a, b) => Number(roleOf(a) === 'sandbox') - Number(roleOf(b) === 'sandbox'))
  for (const c of ordered) {
    if (isRunning(c)) steps.push({ kind: 'stop', podUid: uid, container: nameOf(c), id: c.id, graceSeconds: state.deletionGraceSeconds ?? Number(c.labels[LABELS.grace] ?? 30), reason: 'PodDeleted' })
  }
  for (const c of ordered) steps.push({ kind: 'remove', podUid: uid, container: nameOf(c), id: c.id })
  // Unknown (undefined) after an agent restart: the directory may be there.
  if (state.podDir !== false) steps.push({ kind: 'removePodDir', podUid: uid })
  return steps
}

/**
 * A finished pod keeps its containers, exited, for their logs and exit codes until it is deleted
 * (as Kubernetes does); what still runs is stopped (the hub may have ended the pod) and the
 * sandbox goes, which frees the pod's address. Nothing starts again.
 */
function planFinished(uid: string, containers: ContainerInfo[], grace: number): Step[] {
  const steps: Step[] = []
  const sandboxes = containers.filter((c) => roleOf(c) === 'sandbox')
  for (const c of containers) {
    if (roleOf(c) !== 'sandbox' && isRunning(c)) steps.push({ kind: 'stop', podUid: uid, container: nameOf(c), id: c.id, graceSeconds: grace, reason: 'Killing' })
  }
  for (const c of sandboxes) if (isRunning(c)) steps.push({ kind: 'stop', podUid: uid, container: 'POD', id: c.id, graceSeconds: grace, reason: 'Killing' })
  for (const c of sandboxes) steps.push({ kind: 'remove', podUid: uid, container: 'POD', id: c.id })
  return steps
}

function planPod(d: DesiredPod, containers: ContainerInfo[], images: ReadonlySet<string>, state: PodRuntimeState, now: number, settings: PlanSettings): Step[] {
  const uid = podUid(d.pod)
  const steps: Step[] = []
  const grace = graceSeconds(d.pod, settings)
  const byName = groupByName(containers)

  // Probes of containers that no longer run stop first.
  const running = new Set(containers.filter(isRunning).map((c) => c.id))
  for (const id of state.probing) if (!running.has(id)) steps.push({ kind: 'stopProbes', podUid: uid, id })

  if (finishedPhase(d.pod, containers)) return [...steps, ...planFinished(uid, containers, grace)]

  const volumes = podVolumes(d, settings)
  if (volumes instanceof PodConfigProblem) return steps // reported as CreateContainerConfigError by pod-status
  if (volumes.hash !== state.volumesHash) steps.push({ kind: 'writeVolumes', podUid: uid, dirs: volumes.dirs, files: volumes.files, hostPaths: volumes.hostPaths, hash: volumes.hash })

  // The sandbox: a new one (with fresh containers) when it is missing, stopped or changed.
  const sandboxes = byName.get('POD') ?? []
  const sandbox = sandboxes.at(-1)
  const sandboxAttempt = sandbox ? attemptOf(sandbox) : 0
  const wantedSandbox = sandboxSpec(d, settings, sandboxAttempt)
  if (!sandbox || !isRunning(sandbox) || sandbox.labels[LABELS.specHash] !== specHash(wantedSandbox)) {
    for (const c of containers) {
      if (roleOf(c) !== 'sandbox' && isRunning(c)) steps.push({ kind: 'stop', podUid: uid, container: nameOf(c), id: c.id, graceSeconds: grace, reason: 'SandboxChanged' })
    }
    // App containers stay, stopped: their next attempt joins the new sandbox and counts as a
    // restart (as the kubelet counts one after a reboot). Init containers run again from the start.
    for (const c of containers) if (roleOf(c) !== 'app') steps.push({ kind: 'remove', podUid: uid, container: nameOf(c), id: c.id })
    if (!images.has(settings.pauseImage)) steps.push({ kind: 'ensurePauseImage', podUid: uid, image: settings.pauseImage })
    const spec = sandbox ? sandboxSpec(d, settings, sandboxAttempt + 1) : wantedSandbox
    steps.push({ kind: 'create', podUid: uid, container: 'POD', role: 'sandbox', spec, restart: false })
    steps.push({ kind: 'start', podUid: uid, container: 'POD', target: spec.name })
    // A new pod without init containers: its containers follow in the same pass, one look at the
    // engine fewer (a busy engine answers slowly). Any other pod waits for the sandbox to be seen
    // running. A sandbox that fails to start fails the pass before them.
    if (containers.length === 0 && !d.pod.spec?.initContainers?.length) {
      const ctx: ContainerContext = { d, uid, settings, sandboxName: spec.name, images, state, now, grace, steps }
      for (const app of d.pod.spec?.containers ?? []) startNew(ctx, app, 'app', 0, undefined, false)
    }
    return steps
  }
  for (const old of sandboxes.slice(0, -1)) steps.push({ kind: 'remove', podUid: uid, container: 'POD', id: old.id })

  const policy: string = d.pod.spec?.restartPolicy ?? 'Always'
  const ctx: ContainerContext = { d, uid, settings, sandboxName: sandbox.name, images, state, now, grace, steps }

  // Init containers, in order: each must have exited 0 before the next one starts.
  for (const spec of d.pod.spec?.initContainers ?? []) {
    const history = byName.get(spec.name) ?? []
    const latest = history.at(-1)
    removeOlder(ctx, history, 1)
    if (latest && latest.state.status === 'exited' && latest.state.exitCode === 0) continue
    if (!latest) {
      startNew(ctx, spec, 'init', 0, undefined, false)
      return steps
    }
    if (isRunning(latest)) return steps
    if (latest.state.status === 'created') {
      steps.push({ kind: 'start', podUid: uid, container: spec.name, target: latest.id })
      return steps
    }
    if (policy !== 'Never') restartAfterBackoff(ctx, spec, 'init', latest)
    return steps // a failed init container holds the pod back (Never: the pod has failed)
  }

  const wanted = new Set<string>(['POD', ...(d.pod.spec?.initContainers ?? []).map((c: any) => c.name)])
  for (const spec of d.pod.spec?.containers ?? []) {
    wanted.add(spec.name)
    const history = byName.get(spec.name) ?? []
    const latest = history.at(-1)
    removeOlder(ctx, history, 2) // the latest and the one before it (lastState)
    if (!latest) {
      startNew(ctx, spec, 'app', 0, undefined, false)
      continue
    }
    // A container its policy does not restart stays as it ended, even in a new sandbox (the kubelet
    // compares specs of running containers only).
    if (hasEnded(latest) && !restartsAfter(policy, latest.state.exitCode)) continue
    const want = appContainerSpec(d, spec, 'app', settings, sandbox.name, attemptOf(latest))
    if (want instanceof PodConfigProblem) continue
    if (latest.labels[LABELS.specHash] !== specHash(want)) {
      if (isRunning(latest)) steps.push({ kind: 'stop', podUid: uid, container: spec.name, id: latest.id, graceSeconds: grace, reason: 'SpecChanged' })
      steps.push({ kind: 'remove', podUid: uid, container: spec.name, id: latest.id })
      startNew(ctx, spec, 'app', attemptOf(latest) + 1, undefined, true)
      continue
    }
    if (latest.state.status === 'created') {
      steps.push({ kind: 'start', podUid: uid, container: spec.name, target: latest.id })
      continue
    }
    if (isRunning(latest)) {
      if (state.unhealthy.includes(latest.id)) {
        steps.push({ kind: 'stop', podUid: uid, container: spec.name, id: latest.id, graceSeconds: grace, reason: 'Unhealthy' })
      } else if (hasProbes(spec) && !state.probing.includes(latest.id)) {
        steps.push({ kind: 'startProbes', podUid: uid, container: spec.name, id: latest.id, probes: probesOf(spec) })
      }
      continue
    }
    // Exited.
    if (restartsAfter(policy, latest.state.exitCode)) restartAfterBackoff(ctx, spec, 'app', latest)
  }
  // Containers the spec no longer names.
  for (const [name, history] of byName) {
    if (wanted.has(name)) continue
    for (const c of history) {
      if (isRunning(c)) steps.push({ kind: 'stop', podUid: uid, container: name, id: c.id, graceSeconds: grace, reason: 'SpecChanged' })
      steps.push({ kind: 'remove', podUid: uid, container: name, id: c.id })
    }
  }
  return steps
}

interface ContainerContext {
  d: DesiredPod
  uid: string
  settings: PlanSettings
  sandboxName: string
  images: ReadonlySet<string>
  state: PodRuntimeState
  now: number
  grace: number
  steps: Step[]
}

function restartAfterBackoff(ctx: ContainerContext, spec: any, role: 'init' | 'app', latest: ContainerInfo): void {
  const finishedAt = Date.parse(latest.state.finishedAt ?? '') || ctx.now
  const startedAt = Date.parse(latest.state.startedAt ?? '') || finishedAt
  const decision = restartDecision(ctx.state.backoff[spec.name], finishedAt, finishedAt - startedAt, ctx.now, ctx.settings.backoff)
  if (!decision.restartNow) {
    ctx.steps.push({ kind: 'wait', podUid: ctx.uid, container: spec.name, until: decision.until, reason: 'CrashLoopBackOff' })
    return
  }
  startNew(ctx, spec, role, attemptOf(latest) + 1, decision.next, true)
}

/** Pull (as the pull policy says), create and start attempt `attempt` of a container. */
function startNew(ctx: ContainerContext, spec: any, role: 'init' | 'app', attempt: number, backoff: BackoffEntry | undefined, restart: boolean): void {
  const want = appContainerSpec(ctx.d, spec, role, ctx.settings, ctx.sandboxName, attempt)
  if (want instanceof PodConfigProblem) return
  const image: string = spec.image
  const present = ctx.images.has(image)
  const policy = pullPolicy(spec)
  if (policy === 'Never' && !present) return // ErrImageNeverPull, reported by pod-status
  if (!present || policy === 'Always') {
    const failure = ctx.state.pullFailures[image]
    if (!present && failure && ctx.now < failure.at + failure.delayMs) {
      ctx.steps.push({ kind: 'wait', podUid: ctx.uid, container: spec.name, until: failure.at + failure.delayMs, reason: 'ImagePullBackOff', image })
      return
    }
    const auth = registryAuthFor(image, ctx.d.pod, ctx.d.secrets)
    ctx.steps.push({ kind: 'pull', podUid: ctx.uid, container: spec.name, image, bestEffort: present, ...(auth ? { auth } : {}) })
  }
  ctx.steps.push({ kind: 'create', podUid: ctx.uid, container: spec.name, role, spec: want, backoff, restart })
  ctx.steps.push({ kind: 'start', podUid: ctx.uid, container: spec.name, target: want.name })
}

function removeOlder(ctx: ContainerContext, history: ContainerInfo[], keep: number): void {
  for (const old of history.slice(0, Math.max(0, history.length - keep))) {
    if (isRunning(old)) ctx.steps.push({ kind: 'stop', podUid: ctx.uid, container: nameOf(old), id: old.id, graceSeconds: ctx.grace, reason: 'Killing' })
    ctx.steps.push({ kind: 'remove', podUid: ctx.uid, container: nameOf(old), id: old.id })
  }
}

/** Kubernetes' default: Always for `:latest` or no tag, else IfNotPresent. */
export function pullPolicy(spec: any): 'Always' | 'IfNotPresent' | 'Never' {
  if (spec.imagePullPolicy === 'Always' || spec.imagePullPolicy === 'IfNotPresent' || spec.imagePullPolicy === 'Never') return spec.imagePullPolicy
  const image = String(spec.image).split('@')[0]
  const tag = image.lastIndexOf(':') > image.lastIndexOf('/') ? image.slice(image.lastIndexOf(':') + 1) : 'latest'
  return tag === 'latest' && !String(spec.image).includes('@') ? 'Always' : 'IfNotPresent'
}

export function hasProbes(spec: any): boolean {
  return Boolean(spec.livenessProbe || spec.readinessProbe || spec.startupProbe)
}

function probesOf(spec: any): ProbeSpec {
  return { liveness: spec.livenessProbe, readiness: spec.readinessProbe, startup: spec.startupProbe }
}

/** Containers by container name, oldest attempt first. */
export function groupByName(containers: ContainerInfo[]): Map<string, ContainerInfo[]> {
  const m = new Map<string, ContainerInfo[]>()
  for (const c of containers) m.set(nameOf(c), [...(m.get(nameOf(c)) ?? []), c])
  for (const list of m.values()) list.sort((a, b) => attemptOf(a) - attemptOf(b))
  return m
}

export function nameOf(c: ContainerInfo): string {
  return c.labels[LABELS.containerName] ?? ''
}

export function roleOf(c: ContainerInfo): string {
  return c.labels[LABELS.role] ?? ''
}

export function attemptOf(c: ContainerInfo): number {
  return Number(c.labels[LABELS.attempt] ?? 0) || 0
}

export function isRunning(c: ContainerInfo): boolean {
  return c.state.status === 'running' || c.state.status === 'restarting' || c.state.status === 'paused'
}
