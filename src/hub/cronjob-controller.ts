// The CronJob controller: a Job for each schedule time (timers wake it, the reconcile decides), named
// after the time so a time runs once even across hub restarts; concurrencyPolicy, suspend,
// startingDeadlineSeconds, history limits, and status.lastScheduleTime, the record catch-up starts from.

import { isDeepStrictEqual } from 'node:util'
import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { CronSchedule, unmetScheduleTimes } from './cron-schedule.js'
import type { CronTimer, CronTimers } from './cron-timers.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import { rfc3339, type Registry } from './registry.js'
import { controllerOf } from './replicaset-controller.js'

const CRON_JOB = KINDS.find((k) => k.kind === 'CronJob')!
const JOB = KINDS.find((k) => k.kind === 'Job')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
export const SCHEDULED_TIMESTAMP_ANNOTATION = 'batch.kubernetes.io/cronjob-scheduled-timestamp'
/** More missed times than this since the last run earns a warning, as in Kubernetes. */
const MANY_MISSED = 100

export interface CronJobControllerOptions {
  registry: Registry
  cronJobs: Informer
  jobs: Informer
  timers: CronTimers
  events: EventRecorder
  clock: Clock
  logger: Logger
}

/** A Job's name for a schedule time: minutes since the epoch, as Kubernetes names them. */
export function jobNameFor(cronJobName: string, scheduledMs: number): string {
  return `${cronJobName}-${Math.floor(scheduledMs / 60_000)}`
}

/** 'Complete' or 'Failed' once the Job controller says so, else undefined (still active). */
export function jobFinish(job: KubeObject): 'Complete' | 'Failed' | undefined {
  const c = (job.status?.conditions ?? []).find((c: any) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True')
  return c?.type
}

/** RFC 3339 in a time zone (`2026-01-01T09:00:00+09:00`), as the scheduled-timestamp annotation carries it. */
export function rfc3339InZone(ms: number, timeZone: string | undefined): string {
  if (!timeZone) return rfc3339(ms)
  const name = new Intl.DateTimeFormat('en-US', { timeZone, timeZoneName: 'longOffset' }).formatToParts(new Date(ms)).find((p) => p.type === 'timeZoneName')!.value
  const m = /^GMT([+-])(\d{2}):(\d{2})$/.exec(name)
  // Plain "GMT" (or +00:00) is a zero offset, which Go writes as Z.
  if (!m || (m[2] === '00' && m[3] === '00')) return rfc3339(ms)
  const offsetMs = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3])) * 60_000
  return `${rfc3339(ms + offsetMs).slice(0, -1)}${m[1]}${m[2]}:${m[3]}`
}

const timeOf = (value: unknown): number | undefined => (typeof value === 'string' && value !== '' ? Date.parse(value) : undefined)

export class CronJobController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger
  /** The running timer of each CronJob key and the schedule it was started for. */
  private readonly timers = new Map<string, { schedule: string; timeZone: string | undefined; timer: CronTimer }>()

  constructor(private readonly o: CronJobControllerOptions) {
    this.log = o.logger.child({ component: 'cronjob-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    // A deleted CronJob's Jobs are the garbage collector's (deleted, or orphaned on request).
    o.cronJobs.onChange((type, cj) => {
      if (type === 'DELETED') this.stopTimer(objectKey(cj))
      else this.queue.add(objectKey(cj))
    })
    o.jobs.onChange((_type, job, previous) => {
      for (const j of [job, previous]) {
        const owner = j && controllerOf(j)
        if (owner?.kind === 'CronJob') this.queue.add(`${j!.metadata.namespace}/${owner.name}`)
      }
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  async stop(): Promise<void> {
    for (const key of [...this.timers.keys()]) this.stopTimer(key)
    await this.queue.stop()
  }

  /** Resolves once no reconcile is queued or running. */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  /** How many CronJobs have a running timer. */
  get timerCount(): number {
    return this.timers.size
  }

  private owned(cj: KubeObject): KubeObject[] {
    return this.o.jobs.list().filter((j) => j.metadata.namespace === cj.metadata.namespace && controllerOf(j)?.uid === cj.metadata.uid)
  }

  private async reconcile(key: string): Promise<void> {
    const cj = this.o.cronJobs.get(key)
    if (!cj) return this.stopTimer(key)
    const jobs = this.owned(cj)
    const status = this.observedStatus(cj, jobs)
    await this.recordFinished(cj, jobs)
    await this.removeOldJobs(cj, jobs)

    let schedule: CronSchedule
    try {
      schedule = new CronSchedule(cj.spec.schedule, cj.spec.timeZone ?? undefined)
    } catch (err) {
      // Stored before the validation it now fails: a person must fix it, retrying will not.
      this.stopTimer(key)
      await this.o.events.record(cj, 'Warning', 'InvalidSchedule', `invalid schedule: ${cj.spec.schedule}: ${(err as Error).message}`)
      return
    }
    // Suspended, or being deleted (Orphan or Foreground): nothing new starts.
    if (cj.spec.suspend === true || cj.metadata.deletionTimestamp) {
      this.stopTimer(key)
      return this.writeStatus(cj, status)
    }
    this.ensureTimer(key, cj, schedule)

    const scheduled = await this.dueTime(cj, schedule)
    if (scheduled === undefined) return this.writeStatus(cj, status)
    const name = jobNameFor(cj.metadata.name!, scheduled)
    // Run already (its status write was lost): only the record is missing.
    if (jobs.some((j) => j.metadata.name === name)) return this.writeStatus(cj, { ...status, lastScheduleTime: rfc3339(scheduled) })

    const active = jobs.filter((j) => !jobFinish(j) && !j.metadata.deletionTimestamp)
    const policy = cj.spec.concurrencyPolicy ?? 'Allow'
    if (policy === 'Forbid' && active.length > 0) {
      await this.o.events.record(cj, 'Normal', 'JobAlreadyActive', 'Not starting job because prior execution is running and concurrency policy is Forbid')
      return this.writeStatus(cj, status)
    }
    if (policy === 'Replace') {
      for (const job of active) {
        await this.deleteJob(job)
        await this.o.events.record(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata.name}`)
      }
      delete status.active
    }

    const created = await this.createJob(cj, name, scheduled)
    if (!created) return this.writeStatus(cj, status)
    if (!jobFinish(created)) status.active = [...(status.active ?? []), referenceTo(created)]
    await this.writeStatus(cj, { ...status, lastScheduleTime: rfc3339(scheduled) })
  }

  /**
   * The schedule time to run now, if any: the most recent one since the last run (or since the
   * CronJob was made) that is not older than startingDeadlineSeconds. Older missed times are skipped.
   */
  private async dueTime(cj: KubeObject, schedule: CronSchedule): Promise<number | undefined> {
    const now = this.o.clock.now()
    let since = timeOf(cj.status?.lastScheduleTime) ?? timeOf(cj.metadata.creationTimestamp) ?? now
    const deadlineSeconds = cj.spec.startingDeadlineSeconds
    if (typeof deadlineSeconds === 'number') since = Math.max(since, now - deadlineSeconds * 1000 - 1)
    const { latest, count } = unmetScheduleTimes(schedule, since, now, MANY_MISSED)
    if (count > MANY_MISSED) {
      await this.o.events.record(cj, 'Warning', 'TooManyMissedTimes', `too many missed start times (> ${MANY_MISSED}). Set or decrease .spec.startingDeadlineSeconds or check clock skew`)
    }
    return latest
  }

  /** The Job for a schedule time, or undefined when it could not be made for a reason retrying will not fix. */
  private async createJob(cj: KubeObject, name: string, scheduled: number): Promise<KubeObject | undefined> {
    const template = cj.spec.jobTemplate ?? {}
    const job: KubeObject = {
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: {
        name,
        namespace: cj.metadata.namespace,
        ...(template.metadata?.labels ? { labels: { ...template.metadata.labels } } : {}),
        annotations: { ...(template.metadata?.annotations ?? {}), [SCHEDULED_TIMESTAMP_ANNOTATION]: rfc3339InZone(scheduled, cj.spec.timeZone ?? undefined) },
        ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: cj.metadata.name!, uid: cj.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec: structuredClone(template.spec ?? {}),
    }
    try {
      const { object } = await this.o.registry.create(JOB, cj.metadata.namespace!, job, WRITE)
      this.o.jobs.assume(object)
      await this.o.events.record(cj, 'Normal', 'SuccessfulCreate', `Created job ${name}`)
      return object
    } catch (err) {
      const httpStatus = (err as { httpStatus?: number }).httpStatus
      if (httpStatus === 409) return this.existingJob(cj, name)
      if (httpStatus === 422 || httpStatus === 400) {
        await this.o.events.record(cj, 'Warning', 'FailedCreate', `Error creating job: ${(err as Error).message}`)
        return undefined
      }
      throw err
    }
  }

  /** A Job of that name exists: another reconcile (or this hub before a restart) already ran this time. */
  private async existingJob(cj: KubeObject, name: string): Promise<KubeObject | undefined> {
    const job = await this.o.registry.get(JOB, cj.metadata.namespace!, name)
    if (controllerOf(job)?.uid === cj.metadata.uid) {
      this.o.jobs.assume(job)
      return job
    }
    await this.o.events.record(cj, 'Warning', 'FailedCreate', `Error creating job: a job named ${name} exists and is not owned by this CronJob`)
    return undefined
  }

  /** Status from what exists now: the active Jobs and the latest success; lastScheduleTime is kept. */
  private observedStatus(cj: KubeObject, jobs: KubeObject[]): Record<string, any> {
    const status: Record<string, any> = {}
    const active = jobs.filter((j) => !jobFinish(j) && !j.metadata.deletionTimestamp)
    if (active.length > 0) status.active = active.sort(byScheduleOrder).map(referenceTo)
    if (cj.status?.lastScheduleTime) status.lastScheduleTime = cj.status.lastScheduleTime
    let lastSuccess = timeOf(cj.status?.lastSuccessfulTime)
    for (const job of jobs) {
      if (jobFinish(job) !== 'Complete') continue
      const done = timeOf(job.status?.completionTime) ?? timeOf(conditionTime(job, 'Complete'))
      if (done !== undefined && (lastSuccess === undefined || done > lastSuccess)) lastSuccess = done
    }
    if (lastSuccess !== undefined) status.lastSuccessfulTime = rfc3339(lastSuccess)
    return status
  }

  /** An Event for each Job the status still lists as active that has since finished. */
  private async recordFinished(cj: KubeObject, jobs: KubeObject[]): Promise<void> {
    for (const ref of cj.status?.active ?? []) {
      const job = jobs.find((j) => j.metadata.uid === ref.uid)
      const finish = job && jobFinish(job)
      if (finish) await this.o.events.record(cj, 'Normal', 'SawCompletedJob', `Saw completed job: ${job.metadata.name}, status: ${finish}`)
    }
  }

  /** Keeps the newest successfulJobsHistoryLimit complete and failedJobsHistoryLimit failed Jobs. */
  private async removeOldJobs(cj: KubeObject, jobs: KubeObject[]): Promise<void> {
    for (const [finish, limit] of [
      ['Complete', cj.spec.successfulJobsHistoryLimit ?? 3],
      ['Failed', cj.spec.failedJobsHistoryLimit ?? 1],
    ] as const) {
      const finished = jobs.filter((j) => jobFinish(j) === finish && !j.metadata.deletionTimestamp).sort(byScheduleOrder)
      for (const job of finished.slice(0, Math.max(0, finished.length - limit))) {
        await this.deleteJob(job)
        await this.o.events.record(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata.name}`)
      }
    }
  }

  /** Deletes a Job at once; the garbage collector then deletes its pods (background propagation, as Kubernetes' CronJob controller does). */
  private async deleteJob(job: KubeObject): Promise<void> {
    await this.o.registry.delete(JOB, job.metadata.namespace!, job.metadata.name!, { dryRun: false, uid: job.metadata.uid, propagationPolicy: 'Background' }).catch(ignoreNotFound)
  }

  private async writeStatus(cj: KubeObject, status: Record<string, any>): Promise<void> {
    if (isDeepStrictEqual(status, cj.status ?? {})) return
    const { object } = await this.o.registry.update(CRON_JOB, cj.metadata.namespace!, cj.metadata.name!, { ...cj, status }, WRITE, 'status')
    this.o.cronJobs.assume(object)
  }

  /** Starts the CronJob's timer, or replaces it when its schedule or time zone changed. */
  private ensureTimer(key: string, cj: KubeObject, schedule: CronSchedule): void {
    const current = this.timers.get(key)
    if (current && current.schedule === cj.spec.schedule && current.timeZone === schedule.timeZone) return
    this.stopTimer(key)
    this.timers.set(key, { schedule: cj.spec.schedule, timeZone: schedule.timeZone, timer: this.o.timers.start(schedule, () => this.queue.add(key)) })
  }

  private stopTimer(key: string): void {
    this.timers.get(key)?.timer.cancel()
    this.timers.delete(key)
  }
}

function referenceTo(job: KubeObject): Record<string, string> {
  // No resourceVersion: it changes with every Job status write, and the CronJob's status would follow.
  return { apiVersion: 'batch/v1', kind: 'Job', namespace: job.metadata.namespace!, name: job.metadata.name!, uid: job.metadata.uid! }
}

/** Oldest first: by start (or creation) time, then by name, whose suffix is the schedule minute. */
function byScheduleOrder(a: KubeObject, b: KubeObject): number {
  const at = (j: KubeObject) => timeOf(j.status?.startTime) ?? timeOf(j.metadata.creationTimestamp) ?? 0
  return at(a) - at(b) || String(a.metadata.name).localeCompare(String(b.metadata.name))
}

function conditionTime(job: KubeObject, type: string): unknown {
  return (job.status?.conditions ?? []).find((c: any) => c.type === type)?.lastTransitionTime
}

function ignoreNotFound(err: unknown): void {
  if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
}
