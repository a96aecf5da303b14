// The agent's pod loop (STYLE.md §1): a work queue keyed by pod uid; each pass re-reads the desired
// pod and the engine's containers, plans, executes, and reports status and events. Level-
// triggered: engine events and resyncs only say "look again" (runtime-watch.ts, which also says
// when the engine is unavailable). Containers are found by labels, so a restarted agent adopts what
// already runs.

import { join } from 'node:path'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { LABELS, type ContainerInfo, type ContainerRuntime } from './container-runtime.js'
import { ImagePullError } from './errors.js'
import { DeviceAllocator, podDeviceWants, wantsDevices } from './device-allocator.js'
import { scanDevices } from './host-devices.js'
import { hostPathKinds } from './host-paths.js'
import { podEvent, type PodEventRecord } from './pod-events.js'
import { changesState, executeStep, type ExecutorContext } from './pod-executor.js'
import { PodConfigProblem, podKey, podUid, type DesiredPod } from './desired-pod.js'
import { podVolumes } from './pod-volumes.js'
import { finishedPhase, hubFinishedPhase } from './pod-finished.js'
import { emptyPodState, plan, type PlanSettings, type PodRuntimeState, type Step } from './pod-planner.js'
import { computePodStatus } from './pod-status.js'
import { RuntimeWatch } from './runtime-watch.js'
import { ProbeWorker, type ProbeResults, type ProbeSpec } from './probes.js'

export interface PodReconcilerOptions {
  runtime: ContainerRuntime
  clock: Clock
  logger: Logger
  settings: PlanSettings
  hostIP: string
  /** The pods bound to this node, with the ConfigMaps and Secrets they use (from the replica). */
  desired: () => DesiredPod[] | Promise<DesiredPod[]>
  onPodStatus: (podKey: string, uid: string, status: any) => void
  onEvent: (event: PodEventRecord) => void
  /** Pods reconciled at once (default 10): the pods of one sync start side by side, as the kubelet's per-pod workers do. */
  workers?: number
  /** Every pod is looked at again this often, whatever the engine says (default 10 s). */
  resyncMs?: number
  /** Back-off between attempts to watch the engine's events again after it went away. */
  rewatch?: { minMs: number; maxMs: number }
  /** Where the node's devices are found for devices.bramble.dev limits (default /dev). */
  deviceDir?: string
}

// A container start mostly waits on dockerd (shim, runc, network): ten at once keep it busy
// without flooding a Pi, where two at a time left a Deployment's pods queued behind each other.
const DEFAULT_WORKERS = 10
/** Passes over one pod a worker makes in a row while each changes something (see reconcile). */
const PASSES_IN_A_ROW = 4

export class PodReconciler {
  private readonly queue: WorkQueue<string>
  private readonly states = new Map<string, PodRuntimeState>()
  private readonly probeWorkers = new Map<string, ProbeWorker>()
  private readonly probeResults = new Map<string, ProbeResults>()
  private readonly lastStatus = new Map<string, string>()
  private readonly previousStatus = new Map<string, any>()
  private readonly devices = new DeviceAllocator()
  private devicesAdopted = false
  /** The hostPath problem last said of each pod, so it is said once. */
  private readonly mountProblems = new Map<string, string>()
  private readonly runtime: RuntimeWatch
  private stopped = false

  constructor(private readonly o: PodReconcilerOptions) {
    this.queue = new WorkQueue<string>({
      clock: o.clock,
      workers: o.workers ?? DEFAULT_WORKERS,
      baseDelayMs: 500,
      maxDelayMs: 60_000,
      onError: (uid, error) => o.logger.warn({ component: 'pod-reconciler', key: uid, err: error }, 'reconcile failed; will retry'),
    })
    this.runtime = new RuntimeWatch({
      runtime: o.runtime,
      clusterId: o.settings.clusterId,
      clock: o.clock,
      logger: o.logger,
      rewatch: o.rewatch,
      resyncMs: o.resyncMs,
      onPodEvent: (uid) => this.queue.add(uid),
      resync: () => this.resync(),
    })
  }

  /** Starts the loop; an engine that does not answer yet is watched for until it does. */
  async start(): Promise<void> {
    this.queue.start((uid) => this.reconcile(uid))
    await this.runtime.start()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.runtime.stop()
    await this.queue.stop()
    for (const w of this.probeWorkers.values()) w.stop()
    this.probeWorkers.clear()
  }

  /** Queues every pod: desired ones, and any the engine still holds for this cluster. */
  async resync(): Promise<void> {
    const uids = new Set<string>()
    for (const d of await this.o.desired()) uids.add(podUid(d.pod))
    const containers = await this.o.runtime.list({ [LABELS.cluster]: this.o.settings.clusterId })
    // Once, before pods are reconciled: devices its pods' containers hold stay theirs across an agent
    // restart. Later the allocator knows better (a finished pod's exited containers hold nothing).
    if (!this.devicesAdopted) this.devices.adopt(containers)
    this.devicesAdopted = true
    for (const c of containers) {
      const uid = c.labels[LABELS.podUid]
      if (uid) uids.add(uid)
    }
    for (const uid of this.states.keys()) uids.add(uid)
    for (const uid of uids) this.queue.add(uid)
  }

  /**
   * A new desired state: its pods, and those this loop has looked at (one now deleted among them),
   * are queued at once, without asking the engine for its list: a busy engine takes long to list
   * while it starts containers, and the next message would wait for it. Containers this loop never
   * saw (left from before an agent restart) are the resync's to find, as before the first one.
   */
  async desiredChanged(): Promise<void> {
    if (!this.devicesAdopted) return this.resync()
    for (const d of await this.o.desired()) this.queue.add(podUid(d.pod))
    for (const uid of this.states.keys()) this.queue.add(uid)
  }

  /**
   * The hub deleted the pod with a grace period of its own (an eviction's): its containers get
   * that long to stop. A pod this agent never ran has nothing to stop.
   */
  setDeletionGrace(uid: string, seconds: number): void {
    const state = this.states.get(uid)
    if (state) state.deletionGraceSeconds = seconds
  }

  /**
   * Sandboxes join this Docker network from now on (undefined: the engine's default bridge). A
   * pod whose sandbox is on another gets a new one there (its sandbox spec changed): a new IP.
   */
  setPodNetwork(network: string | undefined): void {
    if (this.o.settings.network === network) return
    this.o.settings = { ...this.o.settings, network }
    void this.resync().catch((err) => this.o.logger.warn({ component: 'pod-reconciler', err }, 'resync failed'))
  }

  /** Resolves once no pod is queued or being reconciled. */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  /** Why the container runtime cannot run pods now; undefined while it answers and its events flow. */
  runtimeUnavailable(): string | undefined {
    return this.runtime.unavailable()
  }

  /** Calls `cb` whenever runtimeUnavailable() changes; returns a function that stops it. */
  onRuntimeChange(cb: (problem: string | undefined) => void): () => void {
    return this.runtime.onChange(cb)
  }

  /**
   * A pass that changed something is followed by another at once, by the same worker: a pod comes
   * to Running, and says so, without waiting behind every pod queued meanwhile (a Deployment's
   * burst). Past a few passes it goes back to the queue, so no pod holds a worker for long.
   */
  private async reconcile(uid: string): Promise<void> {
    for (let pass = 0; pass < PASSES_IN_A_ROW; pass++) {
      if (this.stopped || !(await this.reconcilePass(uid))) return
    }
    this.queue.add(uid)
  }

  /** One look at the pod: plan, execute, report; true when it changed something and wants another look. */
  private async reconcilePass(uid: string): Promise<boolean> {
    const { runtime, settings } = this.o
    const found = (await this.o.desired()).find((d) => podUid(d.pod) === uid)
    // Two questions to the engine at once: a busy one answers each slowly.
    const [containers, images] = await Promise.all([runtime.list({ [LABELS.cluster]: settings.clusterId, [LABELS.podUid]: uid }), this.presentImages(found)])
    const desired = found && (await this.withHostView(found, containers))
    const state = this.states.get(uid) ?? emptyPodState()
    this.states.set(uid, state)
    const sandboxIP = containers.find((c) => c.labels[LABELS.role] === 'sandbox' && c.state.status === 'running' && c.ipAddress)?.ipAddress
    if (sandboxIP) state.podIP = sandboxIP
    const now = this.o.clock.now()
    const steps = plan(desired ? [desired] : [], { containers, images }, new Map([[uid, state]]), now, settings)

    const ctx = this.executorContext(uid, desired, state, containers, images)
    if (desired) this.reportMountProblem(uid, desired, ctx)
    let changed = false
    // The sandbox starts while the pod's containers are pulled and created (Docker lets a container
    // name a network namespace that does not run yet); any other step waits for it.
    let sandboxStart: Promise<void> | undefined
    const sandboxStarted = async () => {
      const starting = sandboxStart
      sandboxStart = undefined
      await starting
    }
    try {
      for (const step of steps) {
        if (step.kind !== 'create' && step.kind !== 'pull') await sandboxStarted()
        if (step.kind === 'start' && step.container === 'POD') {
          sandboxStart = executeStep(step, ctx)
          sandboxStart.catch(() => {}) // awaited by the next step that needs it, or below
          changed = true
          continue
        }
        try {
          await executeStep(step, ctx)
        } catch (e) {
          if (e instanceof ImagePullError && step.kind === 'pull') {
            this.recordPullFailure(state, step, e, ctx)
            break
          }
          throw e
        }
        // A dead container the engine cannot remove (executor: "going on without it") changed
        // nothing: counting it would look again forever and never report the pod's status.
        if (changesState(step) && !(step.kind === 'remove' && (await this.leftDead(step.id)))) changed = true
        if (step.kind === 'wait') this.queue.addAfter(uid, Math.max(0, step.until - this.o.clock.now()))
      }
      await sandboxStarted()
    } finally {
      // A step failed while the sandbox was starting: the start ends before the pass does (its error is the step's).
      if (sandboxStart) await sandboxStarted().catch(() => {})
    }
    if (changed) return true // look again: the next step depends on what these did
    if (!desired) {
      if (containers.length === 0 && !state.podDir) this.forget(uid)
      return false
    }
    this.reportStatus(desired, containers, images, state)
    return false
  }

  private async leftDead(id: string): Promise<boolean> {
    const left = await this.o.runtime.inspect(id).catch(() => undefined)
    return left?.state.status === 'dead' || left?.state.status === 'removing'
  }

  /** A hostPath failing its type check is said once, as the kubelet's FailedMount Warning (the pod's status says it too). */
  private reportMountProblem(uid: string, desired: DesiredPod, ctx: ExecutorContext): void {
    const volumes = podVolumes(desired)
    const problem = volumes instanceof PodConfigProblem && volumes.message.startsWith('volume "') ? volumes.message : undefined
    if (problem === this.mountProblems.get(uid)) return
    if (!problem) {
      this.mountProblems.delete(uid)
      return
    }
    this.mountProblems.set(uid, problem)
    ctx.event('FailedMount', `MountVolume.SetUp failed for ${problem}`, { type: 'Warning' })
  }

  /** The pod with what the node has for it: its hostPaths' kinds, and its devices (a finished pod's are free again). */
  private async withHostView(d: DesiredPod, containers: ContainerInfo[]): Promise<DesiredPod> {
    const uid = podUid(d.pod)
    const paths = await hostPathKinds(d.pod.spec)
    if (!wantsDevices(d.pod.spec) || finishedPhase(d.pod, containers)) {
      this.devices.release(uid)
      return { ...d, host: { paths } }
    }
    const devices = this.devices.grant(uid, podDeviceWants(d.pod.spec), await scanDevices(this.o.deviceDir ?? '/dev'))
    return { ...d, host: { paths, devices } }
  }

  private recordPullFailure(state: PodRuntimeState, step: Extract<Step, { kind: 'pull' }>, e: ImagePullError, ctx: ExecutorContext): void {
    const prev = state.pullFailures[step.image]
    const { initialMs, maxMs } = this.o.settings.backoff
    const delayMs = prev ? Math.min(maxMs, prev.delayMs * 2) : initialMs
    state.pullFailures[step.image] = { at: this.o.clock.now(), delayMs, message: e.message }
    ctx.event('Failed', `Failed to pull image "${step.image}": ${e.message}`, { type: 'Warning', container: step.container })
    ctx.event('Failed', 'Error: ErrImagePull', { type: 'Warning', container: step.container })
    this.queue.add(step.podUid) // reports ErrImagePull, then waits out the back-off
  }

  private reportStatus(d: DesiredPod, containers: ContainerInfo[], images: ReadonlySet<string>, state: PodRuntimeState): void {
    const uid = podUid(d.pod)
    // A pod the hub holds as finished whose containers are gone (removed by hand, or the engine's
    // data lost) has nothing new to say: the hub's status, exit codes and all, stays.
    if (hubFinishedPhase(d.pod) && containers.every((c) => c.labels[LABELS.role] === 'sandbox')) return
    const status = computePodStatus({
      desired: d,
      containers,
      probes: this.probeResults,
      state,
      images,
      hostIP: this.o.hostIP,
      now: this.o.clock.now(),
      settings: this.o.settings,
      previous: this.previousStatus.get(uid),
    })
    // Compare without transition times, which only move when a condition does.
    const fingerprint = JSON.stringify(status)
    if (this.lastStatus.get(uid) === fingerprint) return
    this.lastStatus.set(uid, fingerprint)
    this.previousStatus.set(uid, status)
    this.o.onPodStatus(podKey(d.pod), uid, status)
  }

  private forget(uid: string): void {
    this.devices.release(uid)
    this.mountProblems.delete(uid)
    this.states.delete(uid)
    this.lastStatus.delete(uid)
    this.previousStatus.delete(uid)
    this.queue.forget(uid)
  }

  private async presentImages(d: DesiredPod | undefined): Promise<Set<string>> {
    const refs = new Set<string>([this.o.settings.pauseImage])
    for (const c of [...(d?.pod.spec?.initContainers ?? []), ...(d?.pod.spec?.containers ?? [])]) refs.add(String(c.image))
    const ids = await Promise.all([...refs].map(async (ref) => [ref, await this.o.runtime.imageId(ref)] as const))
    return new Set(ids.filter(([, id]) => id).map(([ref]) => ref))
  }

  private executorContext(uid: string, desired: DesiredPod | undefined, state: PodRuntimeState, containers: ContainerInfo[], images: ReadonlySet<string>): ExecutorContext {
    const { runtime, clock } = this.o
    return {
      runtime,
      podDir: join(this.o.settings.podsDir, uid),
      secretsDir: join(this.o.settings.secretsDir, uid),
      pod: desired?.pod,
      state,
      now: () => clock.now(),
      event: (reason, message, options = {}) => {
        if (!desired) return
        this.o.onEvent(podEvent(desired.pod, reason, message, { ...options, now: clock.now() }))
      },
      startProbes: (id, container, probes) => this.startProbes(uid, desired, id, container, probes, state),
      pullProgress: (image, text) => {
        const pulling = (state.pulling ??= {})
        if (text) pulling[image] = text
        else delete pulling[image]
        // The pass is busy with the pull: its status says how far it got meanwhile.
        if (desired && text) this.reportStatus(desired, containers, images, state)
      },
      stopProbes: (id) => {
        this.probeWorkers.get(id)?.stop()
        this.probeWorkers.delete(id)
        this.probeResults.delete(id)
      },
      log: this.o.logger.child({ component: 'pod-reconciler', key: uid }),
    }
  }

  private async startProbes(uid: string, desired: DesiredPod | undefined, id: string, container: string, probes: ProbeSpec, state: PodRuntimeState): Promise<void> {
    if (this.probeWorkers.has(id)) return
    const sandbox = (await this.o.runtime.list({ [LABELS.cluster]: this.o.settings.clusterId, [LABELS.podUid]: uid, [LABELS.role]: 'sandbox' }))
      .filter((c) => c.state.status === 'running')
      .at(-1)
    const host = desired?.pod.spec?.hostNetwork ? '127.0.0.1' : sandbox?.ipAddress ?? '127.0.0.1'
    const worker = new ProbeWorker(this.o.runtime, this.o.clock, probes, { containerId: id, host }, {
      onChange: (results) => {
        this.probeResults.set(id, results)
        this.queue.add(uid)
      },
      onUnhealthy: (kind, message) => {
        if (!state.unhealthy.includes(id)) state.unhealthy.push(id)
        if (desired) {
          this.o.onEvent(podEvent(desired.pod, 'Killing', `Container ${container} failed ${kind} probe, will be restarted`, { container, now: this.o.clock.now() }))
        }
        this.o.logger.info({ component: 'pod-reconciler', key: uid, container, kind, message }, 'container unhealthy')
        this.queue.add(uid)
      },
      onFailure: (kind, message) => {
        if (desired) {
          this.o.onEvent(podEvent(desired.pod, 'Unhealthy', `${kind[0].toUpperCase()}${kind.slice(1)} probe failed: ${message}`, { type: 'Warning', container, now: this.o.clock.now() }))
        }
      },
    })
    this.probeWorkers.set(id, worker)
    this.probeResults.set(id, { ...worker.results })
    worker.start()
  }
}

export type { PodEventRecord }
