// The CronJob controller against a real LMDB store, Registry, Informers and garbage collector, on a
// fake clock so that minutes pass at once. The test plays the Job controller: it marks Jobs complete
// or failed, and makes their pods.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { clockCronTimers } from '../../src/hub/cron-timers.js'
import { CronJobController, SCHEDULED_TIMESTAMP_ANNOTATION, jobNameFor } from '../../src/hub/cronjob-controller.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { GarbageCollector } from '../../src/hub/garbage-collector.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry, rfc3339 } from '../../src/hub/registry.js'
import { controllerOf } from '../../src/hub/replicaset-controller.js'
import type { Store } from '../../src/hub/store.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const CRON_JOB = kind('CronJob')
const JOB = kind('Job')
const POD = kind('Pod')
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }
const MINUTE = 60_000
const at = (iso: string) => Date.parse(iso)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The controller and the garbage collector with their own informers, on a shared registry: what one hub process runs. */
async function startController(registry: Registry, clock: FakeClock) {
  const cronJobs = new Informer(registry, CRON_JOB)
  const jobs = new Informer(registry, JOB)
  const pods = new Informer(registry, POD)
  const events = new EventRecorder(registry, clock, silentLogger(), { component: 'cronjob-controller' })
  const controller = new CronJobController({ registry, cronJobs, jobs, timers: clockCronTimers(clock), events, clock, logger: silentLogger() })
  const collector = new GarbageCollector({ registry, informers: [cronJobs, jobs, pods], clock, logger: silentLogger() })
  for (const i of [cronJobs, jobs, pods]) await i.start()
  controller.start()
  collector.start()
  return {
    controller,
    idle: () => Promise.all([controller.idle(), collector.idle()]),
    async stop() {
      await controller.stop()
      await collector.stop()
      for (const i of [cronJobs, jobs, pods]) i.stop()
    },
  }
}

/** A hub's worth of state: the LMDB store in `dir`, a registry, and one or more controllers on it. */
class Harness {
  store!: Store
  registry!: Registry
  controllers: Array<Awaited<ReturnType<typeof startController>>> = []

  constructor(
    readonly dir: string,
    readonly clock: FakeClock,
  ) {}

  async open(controllers = 1): Promise<void> {
    this.store = await openLmdbStore({ path: join(this.dir, 'store'), clock: this.clock })
    this.registry = new Registry(this.store, this.clock, silentLogger())
    if (!(await this.store.get({ resource: 'namespaces', namespace: '', name: 'default' })))
      await this.store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
    for (let i = 0; i < controllers; i++) this.controllers.push(await startController(this.registry, this.clock))
    await this.settle()
  }

  /** The hub goes down: controllers stop and the store closes. */
  async close(): Promise<void> {
    for (const c of this.controllers) await c.stop()
    this.controllers = []
    await this.store.close()
  }

  get controller(): CronJobController {
    return this.controllers[0].controller
  }

  /** Waits until no reconcile runs and the store stops changing (watch events have landed). */
  async settle(): Promise<void> {
    let stableRounds = 0
    let last = -1
    const deadline = Date.now() + 15_000
    while (stableRounds < 3) {
      if (Date.now() > deadline) throw new Error('the controller did not settle')
      await Promise.all(this.controllers.map((c) => c.idle()))
      await sleep(15)
      const revision = await this.store.revision()
      stableRounds = revision === last ? stableRounds + 1 : 0
      last = revision
    }
  }

  /** Moves the fake clock to an instant (timers due on the way fire) and lets the controller settle. */
  async advanceTo(iso: string): Promise<void> {
    const target = at(iso)
    if (target < this.clock.now()) throw new Error(`the clock is already past ${iso}`)
    this.clock.advance(target - this.clock.now())
    await this.settle()
  }

  async createCronJob(name: string, spec: Record<string, unknown> = {}): Promise<KubeObject> {
    const { object } = await this.registry.create(CRON_JOB, 'default', cronJob(name, spec), WRITE)
    await this.settle()
    return object
  }

  async updateCronJobSpec(name: string, change: Record<string, unknown>): Promise<void> {
    const cj = await this.registry.get(CRON_JOB, 'default', name)
    await this.registry.update(CRON_JOB, 'default', name, { ...cj, spec: { ...cj.spec, ...change } }, WRITE)
    await this.settle()
  }

  cronJob(name: string): Promise<KubeObject> {
    return this.registry.get(CRON_JOB, 'default', name)
  }

  /** Names of the Jobs a CronJob owns, oldest schedule first. */
  async jobsOf(name: string): Promise<string[]> {
    const { items } = await this.registry.list(JOB, 'default')
    return items
      .filter((j) => controllerOf(j)?.kind === 'CronJob' && controllerOf(j)?.name === name)
      .map((j) => j.metadata.name!)
      .sort()
  }

  /** Plays the Job controller: the Job finishes now, as Complete or Failed. */
  async finishJob(name: string, outcome: 'Complete' | 'Failed'): Promise<void> {
    const job = await this.registry.get(JOB, 'default', name)
    const now = rfc3339(this.clock.now())
    const status = {
      startTime: job.metadata.creationTimestamp,
      ...(outcome === 'Complete' ? { succeeded: 1, completionTime: now } : { failed: 1 }),
      conditions: [{ type: outcome, status: 'True', lastTransitionTime: now, lastProbeTime: now }],
    }
    await this.registry.update(JOB, 'default', name, { ...job, status }, WRITE, 'status')
    await this.settle()
  }

  /** A pod owned by a Job, as the Job controller would make it. */
  async podOf(jobName: string): Promise<string> {
    const job = await this.registry.get(JOB, 'default', jobName)
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: `${jobName}-pod`, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: jobName, uid: job.metadata.uid!, controller: true }] },
      spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1' }] },
    }
    await this.registry.create(POD, 'default', pod, WRITE)
    return pod.metadata.name
  }

  async podNames(): Promise<string[]> {
    return (await this.registry.list(POD, 'default')).items.map((p) => p.metadata.name!).sort()
  }

  async events(reason: string): Promise<KubeObject[]> {
    return (await this.registry.list(kind('Event'), 'default')).items.filter((e) => e.reason === reason)
  }
}

async function harness(t: any, startIso: string, controllers = 1): Promise<Harness> {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-cronjob-'))
  const h = new Harness(dir, new FakeClock(at(startIso)))
  await h.open(controllers)
  t.teardown(async () => {
    await h.close().catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
  })
  return h
}

function cronJob(name: string, spec: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name },
    spec: {
      schedule: '* * * * *',
      jobTemplate: {
        metadata: { labels: { app: name }, annotations: { team: 'ops' } },
        spec: { template: { metadata: { labels: { app: name } }, spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1', command: ['date'] }] } } },
      },
      ...spec,
    },
  }
}

/** The Job name for a CronJob at an instant. */
const jobAt = (name: string, iso: string) => jobNameFor(name, at(iso))

t.test('an every-minute CronJob gets a Job each minute, named, labelled and owned as in Kubernetes', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  const cj = await h.createCronJob('tick')
  t.same(await h.jobsOf('tick'), [], 'nothing before its first schedule time')
  t.equal(h.controller.timerCount, 1, 'a timer waits for it')

  await h.advanceTo('2026-01-01T00:01:00Z')
  const first = jobAt('tick', '2026-01-01T00:01:00Z')
  t.equal(first, `tick-${at('2026-01-01T00:01:00Z') / MINUTE}`, 'named by minutes since the epoch')
  t.same(await h.jobsOf('tick'), [first])
  const job = await h.registry.get(JOB, 'default', first)
  t.same(job.metadata.labels, { app: 'tick' })
  t.same(job.metadata.annotations, { team: 'ops', [SCHEDULED_TIMESTAMP_ANNOTATION]: '2026-01-01T00:01:00Z' })
  t.match(controllerOf(job), { apiVersion: 'batch/v1', kind: 'CronJob', name: 'tick', uid: cj.metadata.uid, controller: true })
  t.same(job.spec.template.spec.containers[0].command, ['date'], 'the spec comes from the template')
  let status = (await h.cronJob('tick')).status
  t.equal(status.lastScheduleTime, '2026-01-01T00:01:00Z')
  t.same(status.active, [{ apiVersion: 'batch/v1', kind: 'Job', namespace: 'default', name: first, uid: job.metadata.uid }])
  t.equal((await h.events('SuccessfulCreate')).length, 1)

  const revision = await h.store.revision()
  await h.advanceTo('2026-01-01T00:01:45Z')
  t.equal(await h.store.revision(), revision, 'no write between schedule times')

  await h.advanceTo('2026-01-01T00:02:00Z')
  t.same(await h.jobsOf('tick'), [first, jobAt('tick', '2026-01-01T00:02:00Z')], 'Allow: a second Job while the first runs')
  status = (await h.cronJob('tick')).status
  t.equal(status.active.length, 2)
  t.equal(status.lastScheduleTime, '2026-01-01T00:02:00Z')
})

t.test('Forbid: runs twice in a row, skips a minute while a Job is active, and never starts a skipped time past its deadline', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('once', { concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 10 })
  await h.advanceTo('2026-01-01T00:01:00Z')
  const a = jobAt('once', '2026-01-01T00:01:00Z')
  t.same(await h.jobsOf('once'), [a])
  await h.advanceTo('2026-01-01T00:01:30Z')
  await h.finishJob(a, 'Complete')
  let status = (await h.cronJob('once')).status
  t.equal(status.active, undefined, 'the finished Job leaves the active list')
  t.equal(status.lastSuccessfulTime, '2026-01-01T00:01:30Z')
  t.equal((await h.events('SawCompletedJob'))[0]?.message, `Saw completed job: ${a}, status: Complete`)

  await h.advanceTo('2026-01-01T00:02:00Z')
  const b = jobAt('once', '2026-01-01T00:02:00Z')
  t.same(await h.jobsOf('once'), [a, b], 'the second run follows the first')

  await h.advanceTo('2026-01-01T00:03:00Z')
  t.same(await h.jobsOf('once'), [a, b], 'no third Job while the second is active')
  const forbidden = await h.events('JobAlreadyActive')
  t.equal(forbidden.length, 1)
  t.equal(forbidden[0].message, 'Not starting job because prior execution is running and concurrency policy is Forbid')
  status = (await h.cronJob('once')).status
  t.equal(status.lastScheduleTime, '2026-01-01T00:02:00Z', 'the skipped time is not recorded as run')

  await h.advanceTo('2026-01-01T00:03:30Z')
  await h.finishJob(b, 'Complete')
  t.same(await h.jobsOf('once'), [a, b], 'the 00:03 time is 30 s old, past its 10 s deadline: not started late')
  await h.advanceTo('2026-01-01T00:04:00Z')
  t.same(await h.jobsOf('once'), [a, b, jobAt('once', '2026-01-01T00:04:00Z')], 'the next time runs')
})

t.test('Forbid without a deadline: the time skipped while a Job ran starts once it completes', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('late', { concurrencyPolicy: 'Forbid' })
  await h.advanceTo('2026-01-01T00:01:00Z')
  const a = jobAt('late', '2026-01-01T00:01:00Z')
  await h.advanceTo('2026-01-01T00:02:20Z')
  t.same(await h.jobsOf('late'), [a], 'skipped at 00:02')
  await h.finishJob(a, 'Failed')
  t.same(await h.jobsOf('late'), [a, jobAt('late', '2026-01-01T00:02:00Z')], 'the 00:02 run starts as soon as the first Job ends')
  t.equal((await h.cronJob('late')).status.lastSuccessfulTime, undefined, 'a failure is no success')
})

t.test('Replace: the running Job and its pods are deleted before the new Job is made', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('swap', { concurrencyPolicy: 'Replace' })
  await h.advanceTo('2026-01-01T00:01:00Z')
  const a = jobAt('swap', '2026-01-01T00:01:00Z')
  const pod = await h.podOf(a)
  await h.settle()
  await h.advanceTo('2026-01-01T00:02:00Z')
  const b = jobAt('swap', '2026-01-01T00:02:00Z')
  t.same(await h.jobsOf('swap'), [b])
  t.notOk((await h.podNames()).includes(pod), 'the replaced Job took its pod with it')
  const status = (await h.cronJob('swap')).status
  t.same(
    status.active.map((r: any) => r.name),
    [b],
  )
  t.equal((await h.events('SuccessfulDelete'))[0]?.message, `Deleted job ${a}`)
})

t.test('suspend: nothing starts and the timer stops; on resume, a missed time past the deadline is not run', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('paused', { suspend: true, startingDeadlineSeconds: 30 })
  t.equal(h.controller.timerCount, 0, 'no timer for a suspended CronJob')
  await h.advanceTo('2026-01-01T00:03:40Z')
  t.same(await h.jobsOf('paused'), [])
  await h.updateCronJobSpec('paused', { suspend: false })
  t.equal(h.controller.timerCount, 1, 'the timer is back')
  t.same(await h.jobsOf('paused'), [], '00:03 is 40 s old, past the 30 s deadline')
  await h.advanceTo('2026-01-01T00:04:00Z')
  t.same(await h.jobsOf('paused'), [jobAt('paused', '2026-01-01T00:04:00Z')])
  await h.updateCronJobSpec('paused', { suspend: true })
  t.equal(h.controller.timerCount, 0, 'suspending again stops the timer')
  await h.advanceTo('2026-01-01T00:06:00Z')
  t.equal((await h.jobsOf('paused')).length, 1, 'and nothing more starts')
})

t.test('timeZone: 09:00 in Tokyo is midnight UTC, not yet 09:00 in New York; the annotation carries the offset', async (t) => {
  const h = await harness(t, '2026-01-01T23:58:30Z')
  await h.createCronJob('tokyo', { schedule: '0 9 * * *', timeZone: 'Asia/Tokyo' })
  await h.createCronJob('newyork', { schedule: '0 9 * * *', timeZone: 'America/New_York' })
  await h.advanceTo('2026-01-02T00:00:30Z')
  const name = jobAt('tokyo', '2026-01-02T00:00:00Z')
  t.same(await h.jobsOf('tokyo'), [name])
  t.equal((await h.registry.get(JOB, 'default', name)).metadata.annotations?.[SCHEDULED_TIMESTAMP_ANNOTATION], '2026-01-02T09:00:00+09:00')
  t.equal((await h.cronJob('tokyo')).status.lastScheduleTime, '2026-01-02T00:00:00Z', 'status times stay UTC')
  t.same(await h.jobsOf('newyork'), [])

  const refusal = (spec: Record<string, unknown>) => h.registry.create(CRON_JOB, 'default', cronJob('bad', spec), WRITE).then(() => undefined, (err) => err)
  t.match(await refusal({ timeZone: 'Mars/Olympus_Mons' }), { httpStatus: 422, details: { causes: [{ field: 'spec.timeZone', message: /unknown time zone/ }] } })
  t.match(await refusal({ schedule: '0 0 31 2 *' }), { httpStatus: 422, details: { causes: [{ field: 'spec.schedule', message: /never fires/ }] } })
})

t.test('a hub down across schedule times catches up with the latest missed time only, within startingDeadlineSeconds', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('catchup')
  await h.createCronJob('strict', { startingDeadlineSeconds: 20 })
  await h.advanceTo('2026-01-01T00:01:00Z')
  t.same(await h.jobsOf('catchup'), [jobAt('catchup', '2026-01-01T00:01:00Z')])
  t.same(await h.jobsOf('strict'), [jobAt('strict', '2026-01-01T00:01:00Z')])

  await h.close()
  h.clock.advance(at('2026-01-01T00:05:30Z') - h.clock.now()) // down across 00:02 .. 00:05
  await h.open()
  t.equal((await h.cronJob('strict')).status.lastScheduleTime, '2026-01-01T00:01:00Z', 'the record survived in LMDB')
  t.same(await h.jobsOf('catchup'), [jobAt('catchup', '2026-01-01T00:01:00Z'), jobAt('catchup', '2026-01-01T00:05:00Z')], 'only 00:05 runs, not 00:02-00:04')
  t.same(await h.jobsOf('strict'), [jobAt('strict', '2026-01-01T00:01:00Z')], '00:05 is 30 s old, past the 20 s deadline')
  t.equal((await h.cronJob('catchup')).status.lastScheduleTime, '2026-01-01T00:05:00Z')

  await h.advanceTo('2026-01-01T00:06:00Z')
  t.same(await h.jobsOf('strict'), [jobAt('strict', '2026-01-01T00:01:00Z'), jobAt('strict', '2026-01-01T00:06:00Z')], 'back on schedule')
})

t.test('more than 100 missed times: a warning event, and still only the latest runs', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('asleep')
  await h.close()
  h.clock.advance(3 * 3600_000) // three hours: 180 missed minutes
  await h.open()
  t.same(await h.jobsOf('asleep'), [jobAt('asleep', '2026-01-01T03:00:00Z')])
  const warnings = await h.events('TooManyMissedTimes')
  t.equal(warnings.length, 1)
  t.equal(warnings[0].type, 'Warning')
  t.match(warnings[0].message, /too many missed start times \(> 100\)\. Set or decrease \.spec\.startingDeadlineSeconds/)
})

t.test('history limits: the newest successful and failed Jobs stay, older ones go with their pods', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('hist', { successfulJobsHistoryLimit: 2, failedJobsHistoryLimit: 1 })
  const outcomes = ['Complete', 'Complete', 'Complete', 'Failed', 'Failed'] as const
  const names: string[] = []
  const pods: string[] = []
  for (let i = 0; i < outcomes.length; i++) {
    const minute = `2026-01-01T00:0${i + 1}:00Z`
    await h.advanceTo(minute)
    names.push(jobAt('hist', minute))
    pods.push(await h.podOf(names[i]))
    await h.advanceTo(`2026-01-01T00:0${i + 1}:20Z`)
    await h.finishJob(names[i], outcomes[i])
  }
  t.same(await h.jobsOf('hist'), [names[1], names[2], names[4]], 'two successes and one failure kept, the newest')
  t.same(await h.podNames(), [pods[1], pods[2], pods[4]], 'the pods of deleted Jobs are gone')
  const status = (await h.cronJob('hist')).status
  t.equal(status.lastSuccessfulTime, '2026-01-01T00:03:20Z')
  t.equal(status.active, undefined)
})

t.test('no duplicate Job when two controllers race on one store, nor when the status record was lost', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z', 2)
  await h.createCronJob('race')
  await h.advanceTo('2026-01-01T00:01:00Z')
  t.same(await h.jobsOf('race'), [jobAt('race', '2026-01-01T00:01:00Z')], 'both fired, one Job')
  await h.advanceTo('2026-01-01T00:02:00Z')
  t.same(await h.jobsOf('race'), [jobAt('race', '2026-01-01T00:01:00Z'), jobAt('race', '2026-01-01T00:02:00Z')])

  // A hub that created the 00:02 Job and died before recording it: the record says 00:01.
  await h.close()
  await h.open(0)
  const cj = await h.cronJob('race')
  await h.registry.update(CRON_JOB, 'default', 'race', { ...cj, status: { ...cj.status, lastScheduleTime: '2026-01-01T00:01:00Z' } }, WRITE, 'status')
  await h.close()
  await h.open()
  t.same(await h.jobsOf('race'), [jobAt('race', '2026-01-01T00:01:00Z'), jobAt('race', '2026-01-01T00:02:00Z')], 'the restarted hub made no second 00:02 Job')
  t.equal((await h.cronJob('race')).status.lastScheduleTime, '2026-01-01T00:02:00Z', 'and restored the record')
})

t.test('a schedule change replaces the timer; a deleted CronJob loses its timer, and the collector its Jobs and their pods', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('edit', { schedule: '@hourly' })
  await h.advanceTo('2026-01-01T00:01:10Z')
  t.same(await h.jobsOf('edit'), [])
  await h.updateCronJobSpec('edit', { schedule: '*/2 * * * *' })
  t.equal(h.controller.timerCount, 1)
  await h.advanceTo('2026-01-01T00:02:00Z')
  const first = jobAt('edit', '2026-01-01T00:02:00Z')
  t.same(await h.jobsOf('edit'), [first], 'the new schedule fires, not the hourly one')
  const pod = await h.podOf(first)
  await h.advanceTo('2026-01-01T00:03:59Z')
  t.same(await h.jobsOf('edit'), [first])

  await h.registry.delete(CRON_JOB, 'default', 'edit', { dryRun: false })
  await h.settle()
  t.equal(h.controller.timerCount, 0)
  t.same(await h.jobsOf('edit'), [])
  t.notOk((await h.podNames()).includes(pod))
  const timers = h.clock.pendingTimers
  await h.advanceTo('2026-01-01T00:10:00Z')
  t.same(await h.jobsOf('edit'), [], 'nothing fires for it any more')
  t.ok(timers <= 1, `no cron timer left on the clock (${timers} pending)`)
})

t.test('a CronJob deleted with Orphan starts nothing more, and its Jobs stay without their owner', async (t) => {
  const h = await harness(t, '2026-01-01T00:00:10Z')
  await h.createCronJob('keep')
  await h.advanceTo('2026-01-01T00:01:00Z')
  const first = jobAt('keep', '2026-01-01T00:01:00Z')
  await h.registry.delete(CRON_JOB, 'default', 'keep', { dryRun: false, propagationPolicy: 'Orphan' })
  await h.settle()
  await t.rejects(h.cronJob('keep'), 'the collector finished the deletion')
  t.equal(h.controller.timerCount, 0, 'its timer stopped')
  await h.advanceTo('2026-01-01T00:03:00Z')
  const left = (await h.registry.list(JOB, 'default')).items
  t.same(
    left.map((j) => j.metadata.name),
    [first],
    'no Job after the delete, and the old one kept',
  )
  t.same(left[0].metadata.ownerReferences ?? [], [], 'orphaned')
})
