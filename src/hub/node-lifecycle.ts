// Node lifecycle: a node silent past its grace period is marked Ready=Unknown (NodeStatusUnknown)
// and gets the `node.kubernetes.io/unreachable:NoExecute` taint, as Kubernetes' node lifecycle
// controller does; when it speaks again the taint goes and Ready comes back. A node whose agent
// reports Ready=False (it speaks, but cannot run pods) gets `node.kubernetes.io/not-ready:NoExecute`
// for as long as that lasts. A node reporting DiskPressure or MemoryPressure gets the matching
// `node.kubernetes.io/disk-pressure:NoSchedule` (or memory-pressure) taint while it lasts, as
// Kubernetes' TaintNodesByCondition does: the scheduler then places no new pod there (DaemonSet
// pods tolerate it), and the pods it runs stay.
//
// Silence is measured on the hub's monotonic clock from the last message of any kind (heartbeats
// are kept in memory, see heartbeats.ts). After a hub restart nothing is known of any node, so
// each gets a fresh grace period from the moment the hub first sees its Node, and a node already
// marked unreachable stays so until it proves itself alive: a hub restart never flips a node.
//
// The node's Last Will (its MQTT session lost without a goodbye: the agent crashed or was killed,
// the node lost power or its link) marks it unreachable at once (onOffline). An agent that stops
// cleanly says so (presence online:false with agentStopped) and that changes nothing here: as
// Kubernetes' kubelet, whose restart leaves its Node alone, a clean stop of the agent process (a
// restart, an upgrade, systemctl stop) leaves the node and its containers running, and the next
// agent adopts them. Taking it for a failure would start the eviction countdown at once and evict
// healthy pods whenever the restart outlasts their toleration. So the node is judged by its
// silence: unreachable once silent for the grace period, its pods evicted their toleration later.
// A node that is shut down for good costs one grace period more before its pods move.
//
// Nothing here deletes a pod: taint-eviction-controller.ts evicts pods from nodes with the
// NoExecute taint, level-triggered from the Node objects this writes.

import { NOT_READY_TAINT_KEY } from '../api/default-tolerations.js'
import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import type { Heartbeats } from './heartbeats.js'
import type { Informer } from './informer.js'
import { mutateObject } from './node-gateway-writes.js'
import { rfc3339, type Registry } from './registry.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!

export const DEFAULT_NODE_GRACE_PERIOD_MS = 20_000
export const UNREACHABLE_TAINT_KEY = 'node.kubernetes.io/unreachable'
export const NODE_STATUS_UNKNOWN = 'NodeStatusUnknown'
export const NODE_STATUS_UNKNOWN_MESSAGE = 'Kubelet stopped posting node status.'

export interface ReadyCondition {
  type: 'Ready'
  status: string
  reason?: string
  message?: string
}

export interface NodeLifecycleOptions {
  registry: Registry
  nodes: Informer
  heartbeats: Heartbeats
  clock: Clock
  logger: Logger
  gracePeriodMs?: number
  /** How often silence is checked; default a quarter of the grace period, at most 1 s. */
  checkIntervalMs?: number
  /** The Ready condition the node's agent last reported, restored when the node comes back. */
  reportedReady?: (node: string) => ReadyCondition | undefined
}

type Verdict = 'silent' | 'alive' | 'undecided'

export class NodeLifecycle {
  private readonly queue: WorkQueue<string>
  /** Monotonic ms at which the hub first saw each Node: the start of its first grace period. */
  private readonly firstKnown = new Map<string, number>()
  /** Nodes whose Last Will (presence online:false) arrived and who have not spoken since. */
  private readonly offline = new Set<string>()
  private readonly log: Logger
  private readonly graceMs: number
  private readonly checkMs: number
  private tick?: { cancel(): void }
  private stopped = false

  constructor(private readonly o: NodeLifecycleOptions) {
    this.log = o.logger.child({ component: 'node-lifecycle' })
    this.graceMs = o.gracePeriodMs ?? DEFAULT_NODE_GRACE_PERIOD_MS
    this.checkMs = o.checkIntervalMs ?? Math.min(1000, Math.max(10, Math.floor(this.graceMs / 4)))
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (node, err) => this.log.warn({ node, err }, 'updating node lifecycle failed; will retry') })
    o.nodes.onChange((type, node) => {
      const name = node.metadata.name!
      if (type === 'DELETED') return this.forget(name)
      if (!this.firstKnown.has(name)) this.firstKnown.set(name, o.clock.monotonic())
      this.queue.add(name)
    })
  }

  start(): void {
    this.queue.start((node) => this.reconcile(node))
    this.scheduleCheck()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.tick?.cancel()
    await this.queue.stop()
  }

  /** A valid message from the node arrived (its time is already in Heartbeats). */
  onMessage(node: string): void {
    const wasOffline = this.offline.delete(node)
    const current = this.o.nodes.get(node)
    if (wasOffline || (current && isMarkedUnreachable(current))) this.queue.add(node)
  }

  /** The node's Last Will: it is gone now, no need to wait out the grace period. */
  onOffline(node: string): void {
    this.offline.add(node)
    this.queue.add(node)
  }

  forget(node: string): void {
    this.firstKnown.delete(node)
    this.offline.delete(node)
  }

  verdict(node: string): Verdict {
    if (this.offline.has(node)) return 'silent'
    const now = this.o.clock.monotonic()
    const seen = this.o.heartbeats.lastSeenMs(node)
    if (seen !== undefined && now - seen <= this.graceMs) return 'alive'
    const since = seen ?? this.firstKnown.get(node) ?? now
    return now - since > this.graceMs ? 'silent' : 'undecided'
  }

  private scheduleCheck(): void {
    if (this.stopped) return
    this.tick = this.o.clock.setTimeout(() => {
      for (const node of this.o.nodes.list()) {
        const v = this.verdict(node.metadata.name!)
        if ((v === 'silent') !== isMarkedUnreachable(node) && v !== 'undecided') this.queue.add(node.metadata.name!)
      }
      this.scheduleCheck()
    }, this.checkMs)
  }

  private async reconcile(name: string): Promise<void> {
    const cached = this.o.nodes.get(name)
    if (!cached) return
    const v = this.verdict(name)
    if (v === 'undecided') return
    const nowIso = rfc3339(this.o.clock.now())
    if (v === 'silent') {
      const wrote = await this.write(
        name,
        (node) => setReady(node, { type: 'Ready', status: 'Unknown', reason: NODE_STATUS_UNKNOWN, message: NODE_STATUS_UNKNOWN_MESSAGE }, nowIso),
        (node) => setNoExecuteTaints(node, { unreachable: true, notReady: false }, nowIso),
      )
      if (wrote) this.log.warn({ node: name, gracePeriodMs: this.graceMs, offline: this.offline.has(name) }, 'node is unreachable: marked NotReady and tainted')
      return
    }
    const ready = this.o.reportedReady?.(name) ?? { type: 'Ready' as const, status: 'True', reason: 'KubeletReady', message: 'bramble agent is posting ready status' }
    const wasUnreachable = isMarkedUnreachable(cached)
    const wrote = await this.write(
      name,
      (node) => (readyOf(node)?.reason === NODE_STATUS_UNKNOWN ? setReady(node, ready, nowIso) : undefined),
      (node) => {
        const tainted = setNoExecuteTaints(node, { unreachable: false, notReady: readyOf(node)?.status === 'False' }, nowIso)
        return setPressureTaints(tainted ?? node, nowIso) ?? tainted
      },
    )
    if (wrote && wasUnreachable) this.log.info({ node: name }, 'node is reachable again: taint removed')
  }

  /** Status first (the scheduler reads Ready), then the taint; true when either changed. */
  private async write(name: string, status: (n: KubeObject) => KubeObject | undefined, spec: (n: KubeObject) => KubeObject | undefined): Promise<boolean> {
    const a = await mutateObject(this.o.registry, NODE, '', name, status, 'status')
    const b = await mutateObject(this.o.registry, NODE, '', name, spec)
    if (a) this.o.nodes.assume(a)
    if (b) this.o.nodes.assume(b)
    return Boolean(a || b)
  }
}

interface Taint {
  key: string
  effect: string
  value?: string
  timeAdded?: string
}

function taintsOf(node: KubeObject): Taint[] {
  const t = (node.spec as Record<string, unknown> | undefined)?.taints
  return Array.isArray(t) ? (t as Taint[]) : []
}

function hasTaint(node: KubeObject, key: string): boolean {
  return taintsOf(node).some((t) => t.key === key && t.effect === 'NoExecute')
}

function hasUnreachableTaint(node: KubeObject): boolean {
  return hasTaint(node, UNREACHABLE_TAINT_KEY)
}

function readyOf(node: KubeObject): (ReadyCondition & Record<string, unknown>) | undefined {
  const conditions = (node.status as Record<string, unknown> | undefined)?.conditions
  return Array.isArray(conditions) ? conditions.find((c) => c?.type === 'Ready') : undefined
}

export function isMarkedUnreachable(node: KubeObject): boolean {
  return hasUnreachableTaint(node) || readyOf(node)?.reason === NODE_STATUS_UNKNOWN
}

/** Adds or removes the unreachable and not-ready NoExecute taints; undefined when nothing changes. */
function setNoExecuteTaints(node: KubeObject, want: { unreachable: boolean; notReady: boolean }, nowIso: string): KubeObject | undefined {
  const wanted = new Map([
    [UNREACHABLE_TAINT_KEY, want.unreachable],
    [NOT_READY_TAINT_KEY, want.notReady],
  ])
  if ([...wanted].every(([key, on]) => hasTaint(node, key) === on)) return undefined
  const kept = taintsOf(node).filter((t) => t.effect !== 'NoExecute' || !wanted.has(t.key) || wanted.get(t.key))
  const added = [...wanted].filter(([key, on]) => on && !hasTaint(node, key)).map(([key]) => ({ key, effect: 'NoExecute', timeAdded: nowIso }))
  const taints = [...kept, ...added]
  const spec = { ...(node.spec ?? {}) } as Record<string, unknown>
  if (taints.length > 0) spec.taints = taints
  else delete spec.taints
  node.spec = spec
  return node
}

/** Node conditions that keep new pods away while True, and the NoSchedule taint each stands for. */
export const PRESSURE_TAINTS: ReadonlyArray<{ condition: string; key: string }> = [
  { condition: 'DiskPressure', key: 'node.kubernetes.io/disk-pressure' },
  { condition: 'MemoryPressure', key: 'node.kubernetes.io/memory-pressure' },
]

/** The pressure taints in step with the node's conditions; undefined when nothing changes. */
function setPressureTaints(node: KubeObject, nowIso: string): KubeObject | undefined {
  const conditions = (node.status as Record<string, unknown> | undefined)?.conditions
  const isTrue = (type: string) => Array.isArray(conditions) && conditions.some((c) => c?.type === type && c.status === 'True')
  const has = (key: string) => taintsOf(node).some((t) => t.key === key && t.effect === 'NoSchedule')
  if (PRESSURE_TAINTS.every(({ condition, key }) => isTrue(condition) === has(key))) return undefined
  const pressure = new Set(PRESSURE_TAINTS.map((p) => p.key))
  const kept = taintsOf(node).filter((t) => t.effect !== 'NoSchedule' || !pressure.has(t.key) || PRESSURE_TAINTS.some((p) => p.key === t.key && isTrue(p.condition)))
  const added = PRESSURE_TAINTS.filter(({ condition, key }) => isTrue(condition) && !has(key)).map(({ key }) => ({ key, effect: 'NoSchedule', timeAdded: nowIso }))
  const taints = [...kept, ...added]
  const spec = { ...(node.spec ?? {}) } as Record<string, unknown>
  if (taints.length > 0) spec.taints = taints
  else delete spec.taints
  node.spec = spec
  return node
}

/** Sets the Ready condition; lastTransitionTime moves only when its status changes. */
function setReady(node: KubeObject, ready: ReadyCondition, nowIso: string): KubeObject | undefined {
  const status = { ...((node.status as Record<string, unknown>) ?? {}) }
  const conditions = Array.isArray(status.conditions) ? [...(status.conditions as Array<Record<string, unknown>>)] : []
  const i = conditions.findIndex((c) => c?.type === 'Ready')
  const old = i >= 0 ? conditions[i] : undefined
  if (old && old.status === ready.status && old.reason === ready.reason && old.message === ready.message) return undefined
  const next = {
    ...(old ?? {}),
    ...ready,
    lastHeartbeatTime: old?.lastHeartbeatTime ?? nowIso,
    lastTransitionTime: old && old.status === ready.status ? (old.lastTransitionTime ?? nowIso) : nowIso,
  }
  if (i >= 0) conditions[i] = next
  else conditions.push(next)
  status.conditions = conditions
  node.status = status
  return node
}
