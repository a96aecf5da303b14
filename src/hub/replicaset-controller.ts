// The ReplicaSet controller: keeps `spec.replicas` pods of a ReplicaSet's template in existence,
// owned by it (ownerReferences), and reports how many are there and ready. Level-triggered: a
// change to a ReplicaSet or to one of its pods only queues the ReplicaSet's key.

import { KINDS } from '../api/kinds.js'
import type { KubeObject, OwnerReference } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
const REPLICA_SET = KINDS.find((k) => k.kind === 'ReplicaSet')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
/**
 * Missing pods are created in batches of 1, 2, 4, ... up to this many at once (Kubernetes' slow
 * start): a template the API refuses fails once, not once per replica, while a large ReplicaSet
 * has hundreds of creates in flight, sharing durable commits, instead of one write at a time.
 */
const MAX_CREATE_BATCH = 256
/** ReplicaSets reconciled at once (Kubernetes runs 5 by default). */
const WORKERS = 4

export interface ReplicaSetControllerOptions {
  registry: Registry
  replicaSets: Informer
  pods: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
}

export function controllerOf(o: KubeObject): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller)
}

export function isReady(pod: KubeObject): boolean {
  return (pod.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
}

export class ReplicaSetController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger
  /**
   * ReplicaSet uid → the keys of the pods it controls, kept from the pod informer's events and
   * this controller's own creates: a reconcile reads its own pods, not every pod of the cluster
   * (with 20,000 pods, each of their status changes scanned them all).
   */
  private readonly podsByOwner = new Map<string, Set<string>>()

  constructor(private readonly o: ReplicaSetControllerOptions) {
    this.log = o.logger.child({ component: 'replicaset-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, workers: WORKERS, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    // A deleted ReplicaSet's pods are the garbage collector's (deleted, or orphaned on request).
    o.replicaSets.onChange((type, rs) => {
      if (type !== 'DELETED') this.queue.add(objectKey(rs))
    })
    o.pods.onChange((type, pod, previous) => {
      const key = objectKey(pod)
      const was = previous && controllerOf(previous)
      const now = type === 'DELETED' ? undefined : controllerOf(pod)
      if (was?.kind === 'ReplicaSet' && was.uid !== now?.uid) this.unindex(was.uid, key)
      if (now?.kind === 'ReplicaSet') this.index(now.uid, key)
      for (const p of [pod, previous]) {
        const owner = p && controllerOf(p)
        if (owner?.kind === 'ReplicaSet') this.queue.add(`${p!.metadata.namespace}/${owner.name}`)
      }
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** Pods of this ReplicaSet that still count: not finished, not being deleted. */
  private activePods(rs: KubeObject): KubeObject[] {
    const uid = rs.metadata.uid!
    const active: KubeObject[] = []
    for (const key of this.podsByOwner.get(uid) ?? []) {
      const p = this.o.pods.get(key)
      // Gone from the cache: a create the informer did not take (deleted since), or a delete.
      if (!p) this.unindex(uid, key)
      else if (p.metadata.namespace === rs.metadata.namespace && controllerOf(p)?.uid === uid && !isTerminal(p) && !p.metadata.deletionTimestamp) active.push(p)
    }
    return active
  }

  private index(uid: string, key: string): void {
    let keys = this.podsByOwner.get(uid)
    if (!keys) this.podsByOwner.set(uid, (keys = new Set()))
    keys.add(key)
  }

  private unindex(uid: string, key: string): void {
    const keys = this.podsByOwner.get(uid)
    if (!keys) return
    keys.delete(key)
    if (keys.size === 0) this.podsByOwner.delete(uid)
  }

  private async reconcile(key: string): Promise<void> {
    const rs = this.o.replicaSets.get(key)
    // Being deleted: replacing pods now would only make more for the garbage collector.
    if (!rs || rs.metadata.deletionTimestamp) return
    const wanted = typeof rs.spec?.replicas === 'number' ? rs.spec.replicas : 1
    const active = this.activePods(rs)
    const namespace = rs.metadata.namespace!
    if (active.length < wanted) {
      let left = wanted - active.length
      for (let batch = 1; left > 0; batch = Math.min(2 * batch, MAX_CREATE_BATCH)) {
        const size = Math.min(batch, left)
        left -= size
        const created = await Promise.allSettled(Array.from({ length: size }, () => this.createPod(rs, namespace)))
        // The pods not made are made on the retry, which sees the ones that were.
        const failed = created.find((r): r is PromiseRejectedResult => r.status === 'rejected')
        if (failed) throw failed.reason
      }
    } else if (active.length > wanted) {
      // Remove the least useful first: unscheduled, then not ready, then the newest.
      const rank = (p: KubeObject) => (p.spec?.nodeName ? 2 : 0) + (isReady(p) ? 1 : 0)
      const victims = [...active]
        .sort((a, b) => rank(a) - rank(b) || String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)))
        .slice(0, active.length - wanted)
      for (const pod of victims) {
        await this.o.registry.delete(POD, namespace, pod.metadata.name!, { dryRun: false }).catch((err) => {
          if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
        })
        await this.o.events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`)
      }
    }
    await this.writeStatus(rs)
  }

  private async createPod(rs: KubeObject, namespace: string): Promise<void> {
    const { object } = await this.o.registry.create(POD, namespace, this.podFor(rs), WRITE)
    this.o.pods.assume(object)
    this.index(rs.metadata.uid!, objectKey(object))
    await this.o.events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${object.metadata.name}`)
  }

  private podFor(rs: KubeObject): KubeObject {
    const template = rs.spec?.template ?? {}
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace,
        labels: { ...(template.metadata?.labels ?? {}) },
        ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: rs.metadata.name!, uid: rs.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: structuredClone(template.spec ?? {}),
    }
  }

  private async writeStatus(rs: KubeObject): Promise<void> {
    const active = this.activePods(rs)
    const ready = active.filter(isReady).length
    const status = {
      ...(rs.status ?? {}),
      replicas: active.length,
      fullyLabeledReplicas: active.length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata.generation ?? 1,
    }
    if (JSON.stringify(status) === JSON.stringify(rs.status ?? {})) return
    const { object } = await this.o.registry.update(REPLICA_SET, rs.metadata.namespace!, rs.metadata.name!, { ...rs, status }, WRITE, 'status')
    this.o.replicaSets.assume(object)
  }
}
