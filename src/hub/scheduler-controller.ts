// Binds pending pods to nodes: feeds the pure scheduler a snapshot from the informers, writes the
// binding, and for pods that fit nowhere sets PodScheduled=False and records FailedScheduling.
// Unschedulable pods are retried when a node or a pod changes, never in a busy loop.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { schedule } from '../sched/scheduler.js'
import type { Strategy } from '../sched/scores.js'
import { isTerminal, type NodeSnapshot } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import { rfc3339, type Registry } from './registry.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export interface SchedulerControllerOptions {
  registry: Registry
  pods: Informer
  nodes: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
  strategy: Strategy
}

export class SchedulerController {
  private readonly queue: WorkQueue<string>
  /** Pods that fit nowhere last time, with the message they were given. */
  private readonly unschedulable = new Map<string, string>()
  private readonly log: Logger

  constructor(private readonly o: SchedulerControllerOptions) {
    this.log = o.logger.child({ component: 'scheduler' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'scheduling failed; will retry') })
    o.pods.onChange((type, pod, previous) => {
      if (type !== 'DELETED' && needsScheduling(pod)) this.queue.add(objectKey(pod))
      // A pod leaving a node (deleted, finished, moved) frees room: look at the waiting pods again.
      if (previous?.spec?.nodeName && (type === 'DELETED' || isTerminal(pod))) this.retryUnschedulable()
      if (type === 'DELETED') this.unschedulable.delete(objectKey(pod))
    })
    o.nodes.onChange(() => this.retryUnschedulable())
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  private retryUnschedulable(): void {
    for (const key of this.unschedulable.keys()) this.queue.add(key)
  }

  private snapshot(): NodeSnapshot[] {
    const byNode = new Map<string, KubeObject[]>()
    for (const pod of this.o.pods.list()) {
      const node = pod.spec?.nodeName
      if (!node || isTerminal(pod)) continue
      let list = byNode.get(node)
      if (!list) byNode.set(node, (list = []))
      list.push(pod)
    }
    return this.o.nodes.list().map((node) => ({ node, pods: byNode.get(node.metadata.name!) ?? [] }))
  }

  private async reconcile(key: string): Promise<void> {
    const pod = this.o.pods.get(key)
    if (!pod || !needsScheduling(pod)) {
      this.unschedulable.delete(key)
      return
    }
    const decision = schedule(pod, { nodes: this.snapshot() }, { strategy: this.o.strategy })
    const namespace = pod.metadata.namespace!
    const name = pod.metadata.name!
    const now = rfc3339(this.o.clock.now())
    if (decision.kind === 'bind') {
      const bound = structuredClone(pod)
      bound.spec.nodeName = decision.node
      const result = await this.o.registry.update(POD, namespace, name, bound, WRITE)
      this.o.pods.assume(result.object)
      const withCondition = structuredClone(result.object)
      withCondition.status = { ...withCondition.status, conditions: setCondition(withCondition.status?.conditions, { type: 'PodScheduled', status: 'True', lastTransitionTime: now }) }
      const status = await this.o.registry.update(POD, namespace, name, withCondition, WRITE, 'status')
      this.o.pods.assume(status.object)
      this.unschedulable.delete(key)
      await this.o.events.record(result.object, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${decision.node}`)
      this.log.debug({ key, node: decision.node }, 'bound')
      return
    }
    const previousMessage = this.unschedulable.get(key)
    this.unschedulable.set(key, decision.message)
    if (previousMessage === decision.message) return
    const next = structuredClone(pod)
    next.status = {
      ...next.status,
      phase: 'Pending',
      conditions: setCondition(next.status?.conditions, { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: decision.message, lastTransitionTime: now }),
    }
    const result = await this.o.registry.update(POD, namespace, name, next, WRITE, 'status')
    this.o.pods.assume(result.object)
    await this.o.events.record(pod, 'Warning', 'FailedScheduling', decision.message)
  }
}

function needsScheduling(pod: KubeObject): boolean {
  return !pod.spec?.nodeName && !pod.metadata.deletionTimestamp && !isTerminal(pod) && (pod.spec?.schedulerName ?? 'default-scheduler') === 'default-scheduler'
}

/** Sets one condition, keeping its lastTransitionTime when its status did not change. */
export function setCondition(conditions: any[] | undefined, next: { type: string; status: string; reason?: string; message?: string; lastTransitionTime: string }): any[] {
  const list = [...(conditions ?? [])]
  const i = list.findIndex((c) => c.type === next.type)
  if (i < 0) return [...list, next]
  const same = list[i].status === next.status
  list[i] = { ...next, lastTransitionTime: same ? list[i].lastTransitionTime : next.lastTransitionTime }
  return list
}
