// Taint-based eviction, as Kubernetes' NoExecute taint manager: a pod bound to a node with a
// NoExecute taint it does not tolerate is deleted at once; one that tolerates it for
// tolerationSeconds is deleted that long after the taint was added (taint.timeAdded); one that
// tolerates it without a limit stays. Its ReplicaSet, Job or DaemonSet then makes a replacement
// and the scheduler puts it on a Ready node. A node annotated `bramble.dev/autonomous: "true"`
// (edge sites where the node is the place) is never evicted from.
//
// No eviction storms, in the spirit of the node lifecycle controller's zone rules, for the one
// zone a Bramble cluster is:
// - after a hub start nothing is evicted for one node grace period, so nodes that are alive (still
//   tainted from before the restart) have time to speak;
// - full disruption (no node Ready) or partial disruption (at least 3 nodes and at least
//   --unhealthy-zone-threshold of them NotReady) pauses every eviction: the hub's own link has
//   more likely failed than theirs. Kubernetes stops there too for clusters of up to 50 nodes;
// - otherwise at most --node-eviction-rate nodes per second start having their pods evicted.
// Nodes that are autonomous or labelled node.kubernetes.io/exclude-disruption are not counted.
// Deadlines are timers on the injected Clock (the work queue's delayed adds), never polling. A
// deadline only says "look again": reconcile judges the node's taints as the informer holds them
// then, so a taint removed before its deadline evicts nothing. The informer cannot lag a write
// that was acknowledged: the store hands every watch its events before a write resolves.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import type { Informer } from './informer.js'
import type { Registry } from './registry.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!

export const AUTONOMOUS_ANNOTATION = 'bramble.dev/autonomous'
export const EXCLUDE_DISRUPTION_LABEL = 'node.kubernetes.io/exclude-disruption'
export const DEFAULT_UNHEALTHY_ZONE_THRESHOLD = 0.55
export const DEFAULT_NODE_EVICTION_RATE = 0.1

export interface Taint {
  key: string
  value?: string
  effect: string
  timeAdded?: string
}

interface Toleration {
  key?: string
  operator?: string
  value?: string
  effect?: string
  tolerationSeconds?: number
}

export type ZoneState = 'Normal' | 'PartialDisruption' | 'FullDisruption'

export interface TaintEvictionOptions {
  registry: Registry
  pods: Informer
  nodes: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
  /** Nothing is evicted this long after start: the node grace period every node gets anew. */
  startupHoldMs: number
  unhealthyZoneThreshold?: number
  /** Nodes per second whose pods may start being evicted. */
  nodeEvictionRatePerSecond?: number
}

export function isAutonomous(node: KubeObject): boolean {
  return node.metadata.annotations?.[AUTONOMOUS_ANNOTATION] === 'true'
}

export function noExecuteTaints(node: KubeObject): Taint[] {
  const taints = node.spec?.taints
  return Array.isArray(taints) ? (taints as Taint[]).filter((t) => t?.effect === 'NoExecute') : []
}

function tolerationMatches(t: Toleration, taint: Taint): boolean {
  if (t.effect && t.effect !== taint.effect) return false
  if (t.operator === 'Exists') return !t.key || t.key === taint.key
  return t.key === taint.key && (t.value ?? '') === (taint.value ?? '')
}

/**
 * When the pod must leave a node with these NoExecute taints, in wall-clock ms: at once for a
 * taint it does not tolerate, else the first taint's added time plus the shortest
 * tolerationSeconds among its matching tolerations; undefined when it tolerates them all for good.
 */
export function evictionTimeMs(pod: KubeObject, taints: Taint[], addedMs: (taint: Taint) => number, nowMs: number): number | undefined {
  const tolerations = (Array.isArray(pod.spec?.tolerations) ? pod.spec.tolerations : []) as Toleration[]
  let at: number | undefined
  for (const taint of taints) {
    const matching = tolerations.filter((t) => tolerationMatches(t, taint))
    if (matching.length === 0) return nowMs
    const limits = matching.filter((t) => typeof t.tolerationSeconds === 'number').map((t) => Math.max(0, t.tolerationSeconds!))
    if (limits.length === 0) continue
    const deadline = addedMs(taint) + Math.min(...limits) * 1000
    at = at === undefined ? deadline : Math.min(at, deadline)
  }
  return at
}

function isReadyNode(node: KubeObject): boolean {
  const conditions = node.status?.conditions
  return Array.isArray(conditions) && conditions.some((c: any) => c?.type === 'Ready' && c.status === 'True')
}

/** Whether a node counts when the zone is judged. */
function countsInZone(node: KubeObject): boolean {
  return !isAutonomous(node) && node.metadata.labels?.[EXCLUDE_DISRUPTION_LABEL] === undefined
}

/** The cluster as one zone, judged as Kubernetes' node lifecycle controller judges a zone. */
export function zoneState(nodes: KubeObject[], threshold: number): { state: ZoneState; notReady: number; total: number } {
  const counted = nodes.filter(countsInZone)
  return judgeCounts(counted.filter((n) => !isReadyNode(n)).length, counted.length, threshold)
}

function judgeCounts(notReady: number, total: number, threshold: number): { state: ZoneState; notReady: number; total: number } {
  let state: ZoneState = 'Normal'
  if (notReady > 0 && notReady === total) state = 'FullDisruption'
  else if (notReady > 2 && notReady / total >= threshold) state = 'PartialDisruption'
  return { state, notReady, total }
}

export class TaintEvictionController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger
  private readonly threshold: number
  private readonly intervalMs: number
  /** Nodes whose pods may be evicted now: each one took a turn of the rate limit. */
  private readonly admitted = new Set<string>()
  /** When a taint without timeAdded was first seen, per node and taint key. */
  private readonly firstSeen = new Map<string, Map<string, number>>()
  private nextAdmissionAt = 0
  private holdUntil = Infinity
  private zone: ZoneState = 'Normal'
  private started = false
  /**
   * Each counted node's readiness, kept up to date as Nodes change, with the NotReady count: the
   * zone is judged on every Node change, and walking every node each time made a fleet of 10,000
   * joining cost 10,000² (a fifth of the hub's CPU in bench/fleet).
   */
  private readonly readiness = new Map<string, boolean>()
  private notReadyCount = 0

  constructor(private readonly o: TaintEvictionOptions) {
    this.log = o.logger.child({ component: 'taint-eviction' })
    this.threshold = o.unhealthyZoneThreshold ?? DEFAULT_UNHEALTHY_ZONE_THRESHOLD
    this.intervalMs = 1000 / (o.nodeEvictionRatePerSecond ?? DEFAULT_NODE_EVICTION_RATE)
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (node, err) => this.log.warn({ node, err }, 'evicting pods failed; will retry') })
    o.nodes.onChange((type, node) => {
      const name = node.metadata.name!
      this.countReadiness(name, type === 'DELETED' ? undefined : node)
      if (type === 'DELETED') {
        this.admitted.delete(name)
        this.firstSeen.delete(name)
      } else {
        this.forgetRemovedTaints(name, node)
        this.queue.add(name)
      }
      if (this.started) this.judgeZone()
    })
    o.pods.onChange((type, pod) => {
      const node = pod.spec?.nodeName
      if (type !== 'DELETED' && node && this.isTainted(node)) this.queue.add(node)
    })
  }

  start(): void {
    this.holdUntil = this.o.clock.monotonic() + this.o.startupHoldMs
    this.readiness.clear()
    this.notReadyCount = 0
    for (const node of this.o.nodes.list()) this.countReadiness(node.metadata.name!, node)
    this.started = true
    this.judgeZone()
    this.queue.start((node) => this.reconcile(node))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** Resolves once no node is being worked on (delayed deadlines do not count). */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  get zoneState(): ZoneState {
    return this.zone
  }

  private isTainted(name: string): boolean {
    const node = this.o.nodes.get(name)
    return Boolean(node && noExecuteTaints(node).length > 0)
  }

  private get paused(): boolean {
    return this.zone !== 'Normal'
  }

  private countReadiness(name: string, node: KubeObject | undefined): void {
    if (this.readiness.get(name) === false) this.notReadyCount--
    if (!node || !countsInZone(node)) {
      this.readiness.delete(name)
      return
    }
    const ready = isReadyNode(node)
    this.readiness.set(name, ready)
    if (!ready) this.notReadyCount++
  }

  /** Pauses or resumes evictions as the share of NotReady nodes crosses the threshold; says so in logs and Events. */
  private judgeZone(): void {
    const { state, notReady, total } = judgeCounts(this.notReadyCount, this.readiness.size, this.threshold)
    if (state === this.zone) return
    const nodes = this.o.nodes.list()
    const wasPaused = this.paused
    this.zone = state
    if (this.paused === wasPaused) return
    const notReadyNodes = nodes.filter((n) => !isReadyNode(n) && !isAutonomous(n))
    if (this.paused) {
      // Once resumed, every node takes its turn of the rate limit again.
      this.admitted.clear()
      const why = state === 'FullDisruption' ? 'no node is Ready' : `at least ${Math.round(this.threshold * 100)}% of at least 3 nodes are NotReady`
      const message = `Pod eviction paused: ${notReady} of ${total} nodes are NotReady (${why}); the hub's own network may be the one that failed`
      this.log.warn({ zone: state, notReady, total, threshold: this.threshold }, 'most nodes went silent at once: pod eviction paused')
      for (const node of notReadyNodes) void this.o.events.record(node, 'Warning', 'EvictionsPaused', message)
      return
    }
    const message = `Pod eviction resumed: ${notReady} of ${total} nodes are NotReady`
    this.log.info({ zone: state, notReady, total }, 'pod eviction resumed')
    for (const node of notReadyNodes) void this.o.events.record(node, 'Normal', 'EvictionsResumed', message)
    for (const node of nodes) if (noExecuteTaints(node).length > 0) this.queue.add(node.metadata.name!)
  }

  /**
   * A taint without timeAdded counts from when it was first seen; once gone it is forgotten here,
   * on every change the informer delivers, so one removed and added back (even between two runs
   * of reconcile) counts from its return, not from its first appearance.
   */
  private forgetRemovedTaints(name: string, node: KubeObject): void {
    const seen = this.firstSeen.get(name)
    if (!seen) return
    const present = new Set(noExecuteTaints(node).map((t) => t.key))
    for (const key of seen.keys()) if (!present.has(key)) seen.delete(key)
    if (seen.size === 0) this.firstSeen.delete(name)
  }

  private taintAddedMs(node: string, taint: Taint): number {
    const stamped = taint.timeAdded ? Date.parse(taint.timeAdded) : NaN
    if (Number.isFinite(stamped)) return stamped
    let seen = this.firstSeen.get(node)
    if (!seen) this.firstSeen.set(node, (seen = new Map()))
    if (!seen.has(taint.key)) seen.set(taint.key, this.o.clock.now())
    return seen.get(taint.key)!
  }

  private async reconcile(name: string): Promise<void> {
    const node = this.o.nodes.get(name)
    if (!node || this.paused || isAutonomous(node)) return
    const taints = noExecuteTaints(node)
    if (taints.length === 0) {
      this.admitted.delete(name)
      return
    }
    const monotonic = this.o.clock.monotonic()
    if (monotonic < this.holdUntil) return this.queue.addAfter(name, this.holdUntil - monotonic)
    const now = this.o.clock.now()
    let next: number | undefined
    for (const pod of this.o.pods.list()) {
      if (pod.spec?.nodeName !== name || pod.metadata.deletionTimestamp || isTerminal(pod)) continue
      const at = evictionTimeMs(pod, taints, (t) => this.taintAddedMs(name, t), now)
      if (at === undefined) continue
      if (at > now) {
        next = next === undefined ? at : Math.min(next, at)
        continue
      }
      if (!this.admitted.has(name)) {
        // The node's turn of the rate limit: one node per interval starts losing its pods.
        if (monotonic < this.nextAdmissionAt) return this.queue.addAfter(name, this.nextAdmissionAt - monotonic)
        this.nextAdmissionAt = monotonic + this.intervalMs
        this.admitted.add(name)
      }
      await this.evict(pod, name)
    }
    if (next !== undefined) this.queue.addAfter(name, next - now)
  }

  private async evict(pod: KubeObject, node: string): Promise<void> {
    const { namespace, name, uid } = pod.metadata
    try {
      await this.o.registry.delete(POD, namespace!, name!, { dryRun: false, uid })
    } catch (err) {
      const status = (err as { httpStatus?: number }).httpStatus
      if (status === 404 || status === 409) return // already gone, or a new pod by that name
      throw err
    }
    this.log.info({ pod: `${namespace}/${name}`, node }, 'evicted a pod from a node with a NoExecute taint it does not tolerate')
    await this.o.events.record(pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${namespace}/${name}`)
  }
}
