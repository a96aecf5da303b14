// The DaemonSet controller: one pod of the template on every node it can run on (including nodes
// that join later), pinned to its node by a node-name affinity and bound by the scheduler, as
// Kubernetes does; pods leave nodes that go or stop matching; rolling update within maxUnavailable,
// or with maxSurge a new pod beside the old until it is available, or OnDelete; the status
// `kubectl get ds` and `rollout status` read.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { daemonPlacement, daemonPodNode, pinToNode } from '../sched/daemon-placement.js'
import { isTerminal } from '../sched/snapshot.js'
import { templateHash } from './deployment-controller.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'
import { controllerOf, isReady } from './replicaset-controller.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
const DAEMON_SET = KINDS.find((k) => k.kind === 'DaemonSet')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
export const REVISION_HASH_LABEL = 'controller-revision-hash'

/** What Kubernetes gives every DaemonSet pod: node trouble neither evicts it nor keeps it off a node. */
export const DAEMON_TOLERATIONS = [
  { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
  { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
  { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
]

export interface DaemonSetControllerOptions {
  registry: Registry
  daemonSets: Informer
  pods: Informer
  nodes: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
}

/** The template's tolerations plus the DaemonSet ones it lacks (same key and effect). */
export function withDaemonTolerations(tolerations: any[] | undefined): any[] {
  const list = [...(tolerations ?? [])]
  for (const t of DAEMON_TOLERATIONS) if (!list.some((x) => x?.key === t.key && x?.effect === t.effect)) list.push({ ...t })
  return list
}

/** maxSurge as a count: a percentage of the nodes that should run a pod, rounded up; 0 by default. */
export function resolveMaxSurge(desired: number, strategy: any): number {
  const raw = strategy?.rollingUpdate?.maxSurge ?? 0
  return typeof raw === 'number' ? raw : Math.ceil((Number(String(raw).replace('%', '')) * desired) / 100)
}

/** maxUnavailable as a count: a percentage of the nodes that should run a pod, rounded up, at least 1. */
export function resolveMaxUnavailable(desired: number, strategy: any): number {
  const raw = strategy?.rollingUpdate?.maxUnavailable ?? 1
  const n = typeof raw === 'number' ? raw : Math.ceil((Number(String(raw).replace('%', '')) * desired) / 100)
  return Math.max(1, n)
}

const byAge = (a: KubeObject, b: KubeObject) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)) || String(a.metadata.name).localeCompare(String(b.metadata.name))

export class DaemonSetController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: DaemonSetControllerOptions) {
    this.log = o.logger.child({ component: 'daemonset-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    o.daemonSets.onChange((type, ds) => {
      // Removed through a finalizer (orphan or foreground): the garbage collector has dealt with the pods.
      if (type === 'DELETED') {
        if (!ds.metadata.deletionTimestamp) void this.deleteOwnedPods(ds)
      } else this.queue.add(objectKey(ds))
    })
    o.pods.onChange((_type, pod, previous) => {
      for (const p of [pod, previous]) {
        const owner = p && controllerOf(p)
        if (owner?.kind === 'DaemonSet') this.queue.add(`${p!.metadata.namespace}/${owner.name}`)
      }
    })
    // A node joining, leaving or changing labels or taints may change where every DaemonSet runs.
    o.nodes.onChange(() => {
      for (const ds of o.daemonSets.list()) this.queue.add(objectKey(ds))
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** The DaemonSet's pods (not being deleted), by the node each is meant for, oldest first. */
  private podsByNode(ds: KubeObject): Map<string, KubeObject[]> {
    const byNode = new Map<string, KubeObject[]>()
    for (const pod of this.o.pods.list()) {
      if (pod.metadata.namespace !== ds.metadata.namespace || controllerOf(pod)?.uid !== ds.metadata.uid || pod.metadata.deletionTimestamp) continue
      const node = daemonPodNode(pod) ?? ''
      let list = byNode.get(node)
      if (!list) byNode.set(node, (list = []))
      list.push(pod)
    }
    for (const list of byNode.values()) list.sort(byAge)
    return byNode
  }

  /** A pod of the template as placement sees it: with the tolerations every daemon pod gets. */
  private templatePod(ds: KubeObject): KubeObject {
    const template = ds.spec?.template ?? {}
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { namespace: ds.metadata.namespace, labels: template.metadata?.labels ?? {}, annotations: template.metadata?.annotations ?? {} },
      spec: { ...(template.spec ?? {}), tolerations: withDaemonTolerations(template.spec?.tolerations) },
    }
  }

  private isAvailable(pod: KubeObject, minReadySeconds: number): boolean {
    if (!isReady(pod)) return false
    if (minReadySeconds <= 0) return true
    const since = Date.parse((pod.status?.conditions ?? []).find((c: any) => c.type === 'Ready')?.lastTransitionTime ?? '')
    return Number.isNaN(since) || since + minReadySeconds * 1000 <= this.o.clock.now()
  }

  private async reconcile(key: string): Promise<void> {
    const ds = this.o.daemonSets.get(key)
    if (!ds || ds.metadata.deletionTimestamp) return
    const hash = templateHash(ds.spec?.template)
    const template = this.templatePod(ds)
    const minReadySeconds = Number(ds.spec?.minReadySeconds ?? 0)
    const byNode = this.podsByNode(ds)
    const nodes = this.o.nodes.list().sort((a, b) => String(a.metadata.name).localeCompare(String(b.metadata.name)))
    const known = new Set(nodes.map((n) => n.metadata.name!))
    const placements = new Map(nodes.map((n) => [n.metadata.name!, daemonPlacement(template, n)] as const))
    const runnable = new Set([...placements].filter(([, p]) => p.shouldRun).map(([name]) => name))
    const strategy = ds.spec?.updateStrategy
    const rolling = strategy?.type !== 'OnDelete'
    const surging = rolling && resolveMaxSurge(runnable.size, strategy) > 0

    const create: string[] = []
    const remove: KubeObject[] = []
    /** The pods kept on each node that may keep them: one, or an old and a new one while surging. */
    const kept = new Map<string, KubeObject[]>()
    for (const [node, pods] of byNode) if (!known.has(node)) remove.push(...pods)
    for (const [name, { shouldRun, shouldContinueRunning }] of placements) {
      const pods = byNode.get(name) ?? []
      // A finished daemon pod is replaced (its containers restart on their own while it runs).
      remove.push(...pods.filter(isTerminal))
      const live = pods.filter((p) => !isTerminal(p))
      if (!shouldContinueRunning) remove.push(...live)
      else if (live.length === 0) {
        if (shouldRun) create.push(name)
      } else {
        const keep = this.podsToKeep(live, hash, surging, minReadySeconds)
        kept.set(name, keep)
        remove.push(...live.filter((p) => !keep.includes(p)))
      }
    }
    if (surging) create.push(...this.surgeNodes(strategy, hash, kept, runnable, minReadySeconds))
    else if (rolling) remove.push(...this.rollingReplacements(strategy, hash, kept, create.length, runnable.size, minReadySeconds))
    // minReadySeconds: look again when a ready pod turns available.
    if (minReadySeconds > 0 && [...kept.values()].flat().some((p) => isReady(p) && !this.isAvailable(p, minReadySeconds))) {
      this.queue.addAfter(key, minReadySeconds * 1000)
    }

    // Deletions first: a replaced pod is gone before the next surge pod starts.
    for (const pod of remove) {
      await this.o.registry.delete(POD, pod.metadata.namespace!, pod.metadata.name!, { dryRun: false }).catch((err) => {
        if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
      })
      await this.o.events.record(ds, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`)
    }
    for (const node of create) {
      const { object } = await this.o.registry.create(POD, ds.metadata.namespace!, this.podFor(ds, node, hash), WRITE)
      this.o.pods.assume(object)
      await this.o.events.record(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${object.metadata.name}`)
    }
    await this.writeStatus(ds, hash, nodes, template, minReadySeconds)
  }

  /**
   * Which of a node's running pods stay: the oldest; while surging, an old pod stays beside its new
   * replacement until that one is available, and then goes.
   */
  private podsToKeep(live: KubeObject[], hash: string, surging: boolean, minReadySeconds: number): KubeObject[] {
    if (!surging || live.length === 1) return [live[0]]
    const fresh = live.find((p) => p.metadata.labels?.[REVISION_HASH_LABEL] === hash)
    const old = live.find((p) => p.metadata.labels?.[REVISION_HASH_LABEL] !== hash)
    if (!fresh || !old) return [live[0]]
    return this.isAvailable(fresh, minReadySeconds) ? [fresh] : [old, fresh]
  }

  /**
   * Old-template pods to delete now (the next pass creates their replacements): every old pod that
   * is not available anyway, and available ones while fewer than maxUnavailable nodes are down.
   */
  private rollingReplacements(strategy: any, hash: string, kept: Map<string, KubeObject[]>, missing: number, desired: number, minReadySeconds: number): KubeObject[] {
    const maxUnavailable = resolveMaxUnavailable(desired, strategy)
    let unavailable = missing
    const unavailableOld: KubeObject[] = []
    const availableOld: KubeObject[] = []
    for (const [pod] of kept.values()) {
      const available = this.isAvailable(pod, minReadySeconds)
      if (pod.metadata.labels?.[REVISION_HASH_LABEL] === hash) {
        if (!available) unavailable++
      } else if (available) availableOld.push(pod)
      else unavailableOld.push(pod)
    }
    return [...unavailableOld, ...availableOld.slice(0, Math.max(0, maxUnavailable - unavailable - unavailableOld.length))]
  }

  /**
   * Nodes that get a new-template pod beside their old one (maxSurge): at once where the old pod is
   * not available, and where it is, while fewer than maxSurge nodes are mid-replacement. Nodes that
   * only keep their pod (a NoSchedule taint came) are left alone: a new pod could not be placed there.
   */
  private surgeNodes(strategy: any, hash: string, kept: Map<string, KubeObject[]>, runnable: Set<string>, minReadySeconds: number): string[] {
    const maxSurge = resolveMaxSurge(runnable.size, strategy)
    let inProgress = 0
    const now: string[] = []
    const candidates: string[] = []
    for (const [node, pods] of kept) {
      const old = pods.find((p) => p.metadata.labels?.[REVISION_HASH_LABEL] !== hash)
      if (!old) continue
      if (pods.length > 1) inProgress++
      else if (!runnable.has(node)) continue
      else if (this.isAvailable(old, minReadySeconds)) candidates.push(node)
      else now.push(node)
    }
    return [...now, ...candidates.slice(0, Math.max(0, maxSurge - inProgress))]
  }

  private podFor(ds: KubeObject, node: string, hash: string): KubeObject {
    const template = ds.spec?.template ?? {}
    const spec = structuredClone(template.spec ?? {})
    spec.tolerations = withDaemonTolerations(spec.tolerations)
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${ds.metadata.name}-`,
        namespace: ds.metadata.namespace,
        labels: { ...(template.metadata?.labels ?? {}), [REVISION_HASH_LABEL]: hash },
        ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'DaemonSet', name: ds.metadata.name!, uid: ds.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: pinToNode(spec, node),
    }
  }

  private async writeStatus(ds: KubeObject, hash: string, nodes: KubeObject[], template: KubeObject, minReadySeconds: number): Promise<void> {
    const byNode = this.podsByNode(ds)
    let desired = 0
    let current = 0
    let misscheduled = 0
    let ready = 0
    let available = 0
    let updated = 0
    for (const node of nodes) {
      const pods = (byNode.get(node.metadata.name!) ?? []).filter((p) => !isTerminal(p))
      if (!daemonPlacement(template, node).shouldRun) {
        if (pods.length > 0) misscheduled++
        continue
      }
      desired++
      if (pods.length === 0) continue
      current++
      const pod = pods[0]
      if (isReady(pod)) ready++
      if (this.isAvailable(pod, minReadySeconds)) available++
      if (pod.metadata.labels?.[REVISION_HASH_LABEL] === hash) updated++
    }
    const status = {
      ...(ds.status ?? {}),
      currentNumberScheduled: current,
      desiredNumberScheduled: desired,
      numberMisscheduled: misscheduled,
      numberReady: ready,
      numberAvailable: available,
      numberUnavailable: desired - available,
      updatedNumberScheduled: updated,
      observedGeneration: ds.metadata.generation ?? 1,
    }
    if (JSON.stringify(status) === JSON.stringify(ds.status ?? {})) return
    const { object } = await this.o.registry.update(DAEMON_SET, ds.metadata.namespace!, ds.metadata.name!, { ...ds, status }, WRITE, 'status')
    this.o.daemonSets.assume(object)
  }

  /** A DaemonSet deleted outright takes its pods with it (as the ReplicaSet controller does). */
  private async deleteOwnedPods(ds: KubeObject): Promise<void> {
    for (const pod of this.o.pods.list()) {
      if (pod.metadata.namespace !== ds.metadata.namespace || controllerOf(pod)?.uid !== ds.metadata.uid) continue
      await this.o.registry.delete(POD, pod.metadata.namespace!, pod.metadata.name!, { dryRun: false }).catch((err) => {
        if ((err as { httpStatus?: number }).httpStatus !== 404) this.log.warn({ err, pod: pod.metadata.name }, 'could not delete a pod of a deleted DaemonSet')
      })
    }
  }
}
