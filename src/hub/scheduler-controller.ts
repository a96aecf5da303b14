// Binds pending pods to nodes: feeds the pure scheduler a snapshot from the informers, writes the
// binding, and for pods that fit nowhere sets PodScheduled=False and records FailedScheduling.
// Unschedulable pods are retried when a node or a pod changes, never in a busy loop.
//
// Fast at scale, as Kubernetes' scheduler cache is: the per-node snapshot (its pods and the sums
// of their requests, also laid out side by side in a NodeUsage table that a decision reads for
// hundreds of nodes) is kept up to date as pods come and go, not rebuilt per decision; and a
// decision is "assumed" into the pod cache before its write goes out, so many bindings are written
// at once (the store commits them together) while every later decision already counts them. A
// binding whose write fails is forgotten again and the pod retried.
//
// A binding is one narrow write (Registry.bind, the pods/binding subresource): nodeName and
// PodScheduled=True together. The Scheduled event is not waited for: it shares the next commit.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { TurnBudget } from '../lib/turn-budget.js'
import { WorkQueue } from '../lib/work-queue.js'
import { hasPodAntiAffinity } from '../sched/filters.js'
import { nodeUsage, writeUsage, type NodeUsage } from '../sched/node-usage.js'
import { schedule } from '../sched/scheduler.js'
import type { Strategy } from '../sched/scores.js'
import { volumePlacement, type VolumeView } from '../sched/volume-binding.js'
import { addResources, controllerUid, isTerminal, nonZeroRequests, podRequests, subtractResources, type NodeSnapshot, type Resources } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import { setCondition } from './pod-binding.js'
import { rfc3339, type Registry } from './registry.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const, warnings: false }
/**
 * Pods being bound at once: their writes share commits. bench/sched (1,000 nodes, 10,000 pods)
 * measured about a third less hub CPU per binding at 1,024 than at 256, and a little less again
 * at 2,048 (fewer, larger commits and the work each sets off).
 */
const BINDINGS_IN_FLIGHT = 2048
/**
 * How long decisions may hold the event loop in one turn. The queue starts every pod it may at
 * once, and each decision runs to its first await: 2,048 of them held the thread for seconds at
 * 10,000 nodes, and heartbeats waited behind them. bench/sched (1,000 nodes) bound 2,700 pods/s
 * with 32 decisions a turn, 6,200 with 256 and 8,000 unbounded; a time budget lets cheap decisions
 * run hundreds a turn and dear ones few.
 */
const DECISION_MS_PER_TURN = 20
const NOTHING: Resources = { cpuMilli: 0, memoryBytes: 0 }

export interface SchedulerControllerOptions {
  registry: Registry
  pods: Informer
  nodes: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
  strategy: Strategy
  /** Told of every attempt: its result and the seconds from decision to binding (or status) written. */
  onAttempt?: (result: 'scheduled' | 'unschedulable' | 'error', seconds: number) => void
  /** PersistentVolumeClaims, PersistentVolumes and StorageClasses: a pod using a claim goes where its volume is. */
  storage?: { claims: Informer; volumes: Informer; storageClasses: Informer }
}

/** One node as the scheduler sees it; `node` is undefined while only pods name it. */
interface NodeEntry extends Omit<NodeSnapshot, 'node'> {
  node: KubeObject | undefined
  requested: Resources
  nonZeroRequested: Resources
  antiAffinityPods: number
  /** Changed in place: a decision reads it synchronously and keeps nothing. */
  owners: Map<string, number>
  /** Its position in `listed` (and `usage`) while listed. */
  slot: number
}

/** A pod as counted on its node. */
interface Placed {
  node: string
  pod: KubeObject
  requests: Resources
  nonZero: Resources
  antiAffinity: boolean
  /** Its controller's uid, as counted in the node's `owners`. */
  owner: string | undefined
}

export class SchedulerController {
  private readonly queue: WorkQueue<string>
  private readonly turns = new TurnBudget(DECISION_MS_PER_TURN)
  /** Pods that fit nowhere last time, with the message they were given. */
  private readonly unschedulable = new Map<string, string>()
  private readonly log: Logger
  private readonly entries = new Map<string, NodeEntry>()
  /** Pod key → the node it holds resources on, and the pod as counted there. */
  private readonly placed = new Map<string, Placed>()
  /** The entries with a Node, as schedule() takes them; rebuilt when nodes come or go. */
  private listed: NodeSnapshot[] | undefined
  /** The listed nodes' hot numbers, kept up to date with the entries (see node-usage.ts). */
  private usage: NodeUsage | undefined
  /** Where the next decision starts looking (see ScheduleOptions.startIndex). */
  private nextStart = 0
  /** Scheduled events being written (not waited for by the binding; stop() waits for them). */
  private readonly recording = new Set<Promise<void>>()

  constructor(private readonly o: SchedulerControllerOptions) {
    this.log = o.logger.child({ component: 'scheduler' })
    this.queue = new WorkQueue<string>({ clock: o.clock, workers: BINDINGS_IN_FLIGHT, onError: (key, err) => this.log.warn({ key, err }, 'scheduling failed; will retry') })
    o.pods.onChange((type, pod, previous) => {
      const key = objectKey(pod)
      this.track(key)
      if (type !== 'DELETED' && needsScheduling(pod)) this.queue.add(key)
      // A pod leaving a node (deleted, finished, moved) frees room: look at the waiting pods again.
      if (previous?.spec?.nodeName && (type === 'DELETED' || isTerminal(pod))) this.retryUnschedulable()
      if (type === 'DELETED') this.unschedulable.delete(key)
    })
    o.nodes.onChange((type, node) => {
      const name = node.metadata.name!
      const entry = this.entry(name)
      const current = type === 'DELETED' ? undefined : o.nodes.get(name)
      if ((entry.node === undefined) !== (current === undefined)) this.listed = undefined
      entry.node = current
      this.retryUnschedulable()
    })
    // A claim made or bound, a volume made: pods waiting for them may fit now.
    for (const informer of o.storage ? [o.storage.claims, o.storage.volumes, o.storage.storageClasses] : []) informer.onChange(() => this.retryUnschedulable())
  }

  private volumeView(storage: NonNullable<SchedulerControllerOptions['storage']>): VolumeView {
    return {
      claim: (namespace, name) => storage.claims.get(`${namespace}/${name}`),
      volume: (name) => storage.volumes.get(name),
      storageClasses: () => storage.storageClasses.list(),
    }
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  async stop(): Promise<void> {
    await this.queue.stop()
    await Promise.all(this.recording)
  }

  private retryUnschedulable(): void {
    for (const key of this.unschedulable.keys()) this.queue.add(key)
  }

  private entry(node: string): NodeEntry {
    let e = this.entries.get(node)
    if (!e) this.entries.set(node, (e = { node: undefined, pods: [], requested: NOTHING, nonZeroRequested: NOTHING, antiAffinityPods: 0, owners: new Map(), slot: -1 }))
    return e
  }

  /** Counts the pod the informer now holds under `key` on its node (or on none). */
  private track(key: string): void {
    const pod = this.o.pods.get(key)
    const node = pod && pod.spec?.nodeName && !isTerminal(pod) ? (pod.spec.nodeName as string) : undefined
    const before = this.placed.get(key)
    if (before?.pod === pod && before?.node === node) return
    if (before && pod && before.node === node && before.pod.metadata.uid === pod.metadata.uid) {
      // A new version of a pod on the same node (bound, then its status reports): the sums stay.
      const e = this.entry(node)
      e.pods = e.pods.map((p) => (p === before.pod ? pod : p))
      // Its controller may have let it go (an orphaning delete): counted for its new owner, if any.
      const owner = controllerUid(pod)
      if (owner !== before.owner) {
        countOwner(e, before.owner, -1)
        countOwner(e, owner, 1)
      }
      this.placed.set(key, { ...before, pod, owner })
      return
    }
    if (before) {
      const e = this.entry(before.node)
      // A new array each time: a snapshot handed out is never changed under its reader.
      e.pods = e.pods.filter((p) => p !== before.pod)
      e.requested = subtractResources(e.requested, before.requests)
      e.nonZeroRequested = subtractResources(e.nonZeroRequested, before.nonZero)
      if (before.antiAffinity) e.antiAffinityPods--
      countOwner(e, before.owner, -1)
      this.placed.delete(key)
      this.counted(e)
    }
    if (pod && node) {
      const e = this.entry(node)
      // A pod's requests never change (its spec is immutable): a new version of the same pod (a
      // status report) keeps what was worked out, instead of parsing its quantities again.
      const same = before !== undefined && before.pod.metadata.uid === pod.metadata.uid
      const placed: Placed = same
        ? { ...before, node, pod, owner: controllerUid(pod) }
        : { node, pod, requests: podRequests(pod), nonZero: nonZeroRequests(pod), antiAffinity: hasPodAntiAffinity(pod), owner: controllerUid(pod) }
      e.pods = [...e.pods, pod]
      e.requested = addResources(e.requested, placed.requests)
      e.nonZeroRequested = addResources(e.nonZeroRequested, placed.nonZero)
      if (placed.antiAffinity) e.antiAffinityPods++
      countOwner(e, placed.owner, 1)
      this.placed.set(key, placed)
      this.counted(e)
    }
  }

  /** Copies an entry's new sums into the usage table, when it is listed there. */
  private counted(e: NodeEntry): void {
    if (this.listed && this.usage && e.slot >= 0) writeUsage(this.usage, e.slot, e as NodeSnapshot)
  }

  private snapshot(): { nodes: NodeSnapshot[]; usage: NodeUsage } {
    if (!this.listed || !this.usage) {
      const listed = [...this.entries.values()].filter((e): e is NodeEntry & { node: KubeObject } => e.node !== undefined)
      for (const e of this.entries.values()) e.slot = -1
      listed.forEach((e, i) => (e.slot = i))
      this.listed = listed
      this.usage = nodeUsage(listed)
    }
    return { nodes: this.listed, usage: this.usage }
  }

  private async reconcile(key: string): Promise<void> {
    // The decision runs to its first await inside the turn's budget; the binding's write goes on outside it.
    const release = await this.turns.enter()
    let deciding: Promise<void>
    try {
      deciding = this.decide(key)
    } finally {
      release()
    }
    await deciding
  }

  private async decide(key: string): Promise<void> {
    const pod = this.o.pods.get(key)
    if (!pod || !needsScheduling(pod)) {
      this.unschedulable.delete(key)
      return
    }
    const started = this.o.clock.monotonic()
    const attempted = (result: 'scheduled' | 'unschedulable' | 'error') => this.o.onAttempt?.(result, (this.o.clock.monotonic() - started) / 1000)
    // Decided and assumed before the first await: the next decision already counts this one.
    const snapshot = this.snapshot()
    const nodes = snapshot.nodes
    const volumes = this.o.storage ? volumePlacement(pod, this.volumeView(this.o.storage)) : undefined
    const decision = schedule(pod, snapshot, { strategy: this.o.strategy, startIndex: this.nextStart, volumes })
    this.nextStart = nodes.length > 0 ? (this.nextStart + decision.visited) % nodes.length : 0
    const namespace = pod.metadata.namespace!
    const name = pod.metadata.name!
    if (decision.kind === 'bind') {
      this.assume(key, { ...pod, spec: { ...pod.spec, nodeName: decision.node } })
      let bound: KubeObject
      try {
        bound = await this.o.registry.bind(namespace, name, { node: decision.node, uid: pod.metadata.uid }, false, pod)
      } catch (err) {
        // Forget the assumption (the pod as read has the same version, so it takes its place back).
        this.assume(key, pod)
        attempted('error')
        throw err
      }
      attempted('scheduled')
      this.assume(key, bound)
      this.unschedulable.delete(key)
      const recorded = this.o.events.record(bound, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${decision.node}`)
      this.recording.add(recorded)
      void recorded.then(() => this.recording.delete(recorded))
      this.log.debug({ key, node: decision.node }, 'bound')
      return
    }
    const previousMessage = this.unschedulable.get(key)
    this.unschedulable.set(key, decision.message)
    attempted('unschedulable')
    if (previousMessage === decision.message) return
    const now = rfc3339(this.o.clock.now())
    const next = structuredClone(pod)
    next.status = {
      ...next.status,
      phase: 'Pending',
      conditions: setCondition(next.status?.conditions, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: decision.message, lastTransitionTime: now }),
    }
    const result = await this.o.registry.update(POD, namespace, name, next, WRITE, 'status')
    this.assume(key, result.object)
    await this.o.events.record(pod, 'Warning', 'FailedScheduling', decision.message)
  }

  private assume(key: string, pod: KubeObject): void {
    this.o.pods.assume(pod)
    this.track(key)
  }
}

function needsScheduling(pod: KubeObject): boolean {
  return !pod.spec?.nodeName && !pod.metadata.deletionTimestamp && !isTerminal(pod) && (pod.spec?.schedulerName ?? 'default-scheduler') === 'default-scheduler'
}

/** Adds `delta` to the node's count of pods `owner` controls; a count of 0 is dropped. */
function countOwner(e: NodeEntry, owner: string | undefined, delta: number): void {
  if (owner === undefined) return
  const count = (e.owners.get(owner) ?? 0) + delta
  if (count > 0) e.owners.set(owner, count)
  else e.owners.delete(owner)
}
