// The Job controller: runs a Job's pods until `completions` of them succeed (Indexed: one per index
// 0..completions-1; without completions, until one has and none still runs), at most `parallelism`
// at a time; fails the Job past `backoffLimit` failures or `activeDeadlineSeconds`; `suspend` stops
// its pods. Status and conditions are written as Kubernetes writes them, so `kubectl get jobs` and
// `kubectl wait` work.
// Failed pods are replaced after a back-off, as Kubernetes does. Finished pods stay (their status is
// the record of each run) until the Job goes, by hand or `ttlSecondsAfterFinished` after it finished.

import { KINDS } from '../api/kinds.js'
import { jobPodLabels } from '../api/job-selector.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import { rfc3339, type Registry } from './registry.js'
import { completionIndexOf, COMPLETION_INDEX_ANNOTATION, formatIndexes, parseIndexes } from './job-indexes.js'
import { controllerOf, isReady } from './replicaset-controller.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
const JOB = KINDS.find((k) => k.kind === 'Job')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export interface JobControllerOptions {
  registry: Registry
  jobs: Informer
  pods: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
}

interface JobCondition {
  type: string
  status: 'True' | 'False'
  reason: string
  message: string
  lastProbeTime: string
  lastTransitionTime: string
}

export function isFinished(job: KubeObject): boolean {
  return (job.status?.conditions ?? []).some((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
}

/** Kubernetes' delay before failed pods are replaced: 10 s, doubling per failure since the last success, at most 6 min. */
const FAILURE_BACKOFF_BASE_MS = 10_000
const FAILURE_BACKOFF_MAX_MS = 360_000

/** When the pod's containers last finished (ms since the epoch), or 0 when none says. */
function finishedAt(pod: KubeObject): number {
  const times = ((pod.status?.containerStatuses ?? []) as any[]).map((c) => Date.parse(c.state?.terminated?.finishedAt ?? '')).filter((n) => !Number.isNaN(n))
  return Math.max(0, ...times)
}

/** When a failed pod may next be replaced, or undefined when no failure since the last success holds it back. */
export function failureBackoffUntil(pods: KubeObject[]): number | undefined {
  const lastSuccess = Math.max(0, ...pods.filter((p) => p.status?.phase === 'Succeeded').map(finishedAt))
  const failures = pods.filter((p) => p.status?.phase === 'Failed').map(finishedAt).filter((t) => t > lastSuccess)
  if (failures.length === 0) return undefined
  return Math.max(...failures) + Math.min(FAILURE_BACKOFF_MAX_MS, FAILURE_BACKOFF_BASE_MS * 2 ** (failures.length - 1))
}

const restartsOf = (pod: KubeObject) => ((pod.status?.containerStatuses ?? []) as any[]).reduce((n, c) => n + Number(c.restartCount ?? 0), 0)

export class JobController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: JobControllerOptions) {
    this.log = o.logger.child({ component: 'job-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    o.jobs.onChange((type, job) => {
      // Removed through a finalizer (orphan or foreground): the garbage collector has dealt with the pods.
      if (type === 'DELETED') {
        if (!job.metadata.deletionTimestamp) void this.deleteOwnedPods(job)
      } else this.queue.add(objectKey(job))
    })
    o.pods.onChange((_type, pod, previous) => {
      for (const p of [pod, previous]) {
        const owner = p && controllerOf(p)
        if (owner?.kind === 'Job') this.queue.add(`${p!.metadata.namespace}/${owner.name}`)
      }
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  private owned(job: KubeObject): KubeObject[] {
    return this.o.pods.list().filter((p) => p.metadata.namespace === job.metadata.namespace && controllerOf(p)?.uid === job.metadata.uid && !p.metadata.deletionTimestamp)
  }

  private async reconcile(key: string): Promise<void> {
    const job = this.o.jobs.get(key)
    if (!job || job.metadata.deletionTimestamp) return
    if (isFinished(job)) return this.expire(job)
    const spec = job.spec ?? {}
    const now = this.o.clock.now()
    const pods = this.owned(job)
    let active = pods.filter((p) => !isTerminal(p))
    const completed = spec.completionMode === 'Indexed' ? this.completedIndexes(job, pods) : undefined
    // Counts only grow: a finished pod someone deleted still counted.
    const succeeded = completed ? completed.size : Math.max(Number(job.status?.succeeded ?? 0), pods.filter((p) => p.status?.phase === 'Succeeded').length)
    const failed = Math.max(Number(job.status?.failed ?? 0), pods.filter((p) => p.status?.phase === 'Failed').length)
    let conditions: JobCondition[] = [...(job.status?.conditions ?? [])]
    let startTime: string | undefined = job.status?.startTime
    let completionTime: string | undefined
    const setCondition = (type: string, status: 'True' | 'False', reason: string, message: string): boolean => {
      const existing = conditions.find((c) => c.type === type)
      if (existing?.status === status) return false
      const stamp = rfc3339(now)
      conditions = [...conditions.filter((c) => c.type !== type), { type, status, reason, message, lastProbeTime: stamp, lastTransitionTime: stamp }]
      return true
    }

    if (spec.suspend === true) {
      if (setCondition('Suspended', 'True', 'JobSuspended', 'Job suspended')) await this.o.events.record(job, 'Normal', 'Suspended', 'Job suspended')
      await this.deletePods(job, active)
      active = []
    } else {
      if (conditions.some((c) => c.type === 'Suspended' && c.status === 'True')) {
        setCondition('Suspended', 'False', 'JobResumed', 'Job resumed')
        await this.o.events.record(job, 'Normal', 'Resumed', 'Job resumed')
        // activeDeadlineSeconds counts time continuously active: it starts again on resume.
        startTime = undefined
      }
      startTime ??= rfc3339(now)
      if (completed) active = await this.dropSurplusIndexed(job, active, completed)
      const failure = this.failure(job, failed, active, startTime, now)
      if (failure) {
        await this.deletePods(job, active)
        active = []
        setCondition('FailureTarget', 'True', failure.reason, failure.message)
        setCondition('Failed', 'True', failure.reason, failure.message)
        await this.o.events.record(job, 'Warning', failure.reason, failure.message)
      } else if (this.isComplete(job, succeeded, active)) {
        await this.deletePods(job, active)
        active = []
        setCondition('SuccessCriteriaMet', 'True', 'CompletionsReached', 'Reached expected number of succeeded pods')
        setCondition('Complete', 'True', 'CompletionsReached', 'Reached expected number of succeeded pods')
        completionTime = rfc3339(now)
        await this.o.events.record(job, 'Normal', 'Completed', 'Job completed')
      } else {
        const want = this.wantActive(job, succeeded, active)
        const retryAt = want > active.length ? failureBackoffUntil(pods) : undefined
        if (retryAt !== undefined && retryAt > now) this.queue.addAfter(key, retryAt - now)
        else active = await this.scaleActive(job, active, want, completed)
        const deadline = Number(spec.activeDeadlineSeconds ?? 0)
        if (deadline > 0) this.queue.addAfter(key, Date.parse(startTime) + deadline * 1000 - now)
      }
    }

    const status: Record<string, unknown> = {
      ...(job.status ?? {}),
      active: active.length,
      ready: active.filter(isReady).length,
      succeeded,
      failed,
      ...(startTime ? { startTime } : {}),
      ...(completionTime ? { completionTime } : {}),
      ...(completed && completed.size > 0 ? { completedIndexes: formatIndexes(completed) } : {}),
      ...(conditions.length > 0 ? { conditions } : {}),
    }
    if (JSON.stringify(status) === JSON.stringify(job.status ?? {})) return
    const { object } = await this.o.registry.update(JOB, job.metadata.namespace!, job.metadata.name!, { ...job, status }, WRITE, 'status')
    this.o.jobs.assume(object)
  }

  /** ttlSecondsAfterFinished: a finished Job, and with it its pods, is deleted that long after it finished. */
  private async expire(job: KubeObject): Promise<void> {
    const ttl = job.spec?.ttlSecondsAfterFinished
    if (typeof ttl !== 'number') return
    const finished = (job.status?.conditions ?? []).find((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
    const at = Date.parse(finished?.lastTransitionTime ?? '') + ttl * 1000
    if (Number.isNaN(at)) return
    const wait = at - this.o.clock.now()
    if (wait > 0) return this.queue.addAfter(objectKey(job), wait)
    await this.o.registry.delete(JOB, job.metadata.namespace!, job.metadata.name!, { dryRun: false, uid: job.metadata.uid }).catch((err) => {
      if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
    })
  }

  /** Why the Job has failed, if it has: too many failures, or active past its deadline. */
  private failure(job: KubeObject, failed: number, active: KubeObject[], startTime: string, now: number): { reason: string; message: string } | undefined {
    const backoffLimit = typeof job.spec?.backoffLimit === 'number' ? job.spec.backoffLimit : 6
    // With OnFailure the pod stays and its containers restart: those restarts are the failures.
    const restarts = job.spec?.template?.spec?.restartPolicy === 'OnFailure' ? active.reduce((n, p) => n + restartsOf(p), 0) : 0
    if (failed + restarts > backoffLimit) return { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' }
    const deadline = Number(job.spec?.activeDeadlineSeconds ?? 0)
    if (deadline > 0 && now >= Date.parse(startTime) + deadline * 1000) return { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' }
    return undefined
  }

  private isComplete(job: KubeObject, succeeded: number, active: KubeObject[]): boolean {
    const completions = job.spec?.completions
    // Without completions (a work queue) the Job is done once a pod has succeeded and none still runs.
    if (typeof completions !== 'number') return succeeded > 0 && active.length === 0
    return succeeded >= completions
  }

  private wantActive(job: KubeObject, succeeded: number, active: KubeObject[]): number {
    const parallelism = typeof job.spec?.parallelism === 'number' ? job.spec.parallelism : 1
    const completions = job.spec?.completions
    // A work queue whose first pod succeeded starts no more: the rest finish what is left.
    if (typeof completions !== 'number') return succeeded > 0 ? Math.min(active.length, parallelism) : parallelism
    return Math.max(0, Math.min(parallelism, completions - succeeded))
  }

  /** Creates or deletes pods so that `want` run; answers the pods that then run. */
  /** Indexes done: those the status already records and those of succeeded pods. */
  private completedIndexes(job: KubeObject, pods: KubeObject[]): Set<number> {
    const completions = Number(job.spec?.completions ?? 0)
    const done = parseIndexes(job.status?.completedIndexes)
    for (const p of pods) {
      const index = completionIndexOf(p)
      if (p.status?.phase === 'Succeeded' && index !== undefined) done.add(index)
    }
    return new Set([...done].filter((i) => i < completions))
  }

  /** Running pods of an Indexed Job that serve no purpose: an index already done, or a second pod for one index. */
  private async dropSurplusIndexed(job: KubeObject, active: KubeObject[], completed: Set<number>): Promise<KubeObject[]> {
    const seen = new Set<number>()
    const keep: KubeObject[] = []
    const surplus: KubeObject[] = []
    for (const p of [...active].sort((a, b) => String(a.metadata.creationTimestamp).localeCompare(String(b.metadata.creationTimestamp)))) {
      const index = completionIndexOf(p)
      if (index === undefined || completed.has(index) || seen.has(index)) surplus.push(p)
      else {
        seen.add(index)
        keep.push(p)
      }
    }
    await this.deletePods(job, surplus)
    return keep
  }

  private async scaleActive(job: KubeObject, active: KubeObject[], want: number, completed?: Set<number>): Promise<KubeObject[]> {
    if (active.length > want) {
      // Remove the least advanced first: not ready, then the newest.
      const rank = (p: KubeObject) => (isReady(p) ? 1 : 0)
      const sorted = [...active].sort((a, b) => rank(a) - rank(b) || String(b.metadata.creationTimestamp).localeCompare(String(a.metadata.creationTimestamp)))
      const extra = sorted.slice(0, active.length - want)
      await this.deletePods(job, extra)
      return sorted.slice(active.length - want)
    }
    const running = [...active]
    // An Indexed Job's new pods take the lowest indexes neither done nor running.
    const taken = new Set([...(completed ?? []), ...active.map(completionIndexOf)])
    const free = completed ? Array.from({ length: Number(job.spec?.completions ?? 0) }, (_, i) => i).filter((i) => !taken.has(i)) : []
    for (let i = active.length; i < want; i++) {
      const { object } = await this.o.registry.create(POD, job.metadata.namespace!, this.podFor(job, completed ? free.shift() : undefined), WRITE)
      this.o.pods.assume(object)
      running.push(object)
      await this.o.events.record(job, 'Normal', 'SuccessfulCreate', `Created pod: ${object.metadata.name}`)
    }
    return running
  }

  private podFor(job: KubeObject, index?: number): KubeObject {
    const template = job.spec?.template ?? {}
    const labels = { ...(template.metadata?.labels ?? {}), ...jobPodLabels(job.metadata.name!, job.metadata.uid!) }
    const annotations = { ...(template.metadata?.annotations ?? {}) }
    const spec = structuredClone(template.spec ?? {})
    if (index !== undefined) {
      labels[COMPLETION_INDEX_ANNOTATION] = annotations[COMPLETION_INDEX_ANNOTATION] = String(index)
      // Kubernetes passes the index by a fieldRef to the annotation; the value itself says the same.
      for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) c.env = [...(c.env ?? []), { name: 'JOB_COMPLETION_INDEX', value: String(index) }]
    }
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        generateName: index === undefined ? `${job.metadata.name}-` : `${job.metadata.name}-${index}-`,
        namespace: job.metadata.namespace,
        labels,
        ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: job.metadata.name!, uid: job.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec,
    }
  }

  private async deletePods(job: KubeObject, pods: KubeObject[]): Promise<void> {
    for (const pod of pods) {
      await this.o.registry.delete(POD, pod.metadata.namespace!, pod.metadata.name!, { dryRun: false }).catch((err) => {
        if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
      })
      await this.o.events.record(job, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`)
    }
  }

  /** A Job deleted outright takes its pods with it, finished ones too. */
  private async deleteOwnedPods(job: KubeObject): Promise<void> {
    for (const pod of this.o.pods.list()) {
      if (pod.metadata.namespace !== job.metadata.namespace || controllerOf(pod)?.uid !== job.metadata.uid) continue
      await this.o.registry.delete(POD, pod.metadata.namespace!, pod.metadata.name!, { dryRun: false }).catch((err) => {
        if ((err as { httpStatus?: number }).httpStatus !== 404) this.log.warn({ err, pod: pod.metadata.name }, 'could not delete a pod of a deleted Job')
      })
    }
  }
}
