// The Job controller against a real LMDB store. No agent runs here: the test plays the kubelet,
// moving pods to Running and then Succeeded or Failed, so completions, parallelism, backoffLimit,
// activeDeadlineSeconds and suspend are checked quickly; e2e runs use real agents.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CONTROLLER_UID_LABEL, JOB_NAME_LABEL } from '../../src/api/job-selector.js'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Informer } from '../../src/hub/informer.js'
import { JobController } from '../../src/hub/job-controller.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { controllerOf } from '../../src/hub/replicaset-controller.js'
import { systemClock, type Clock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

/** What the pretend kubelet does with each new pod: leave it, run it, or run it to an end. */
type Outcome = 'stay' | 'Running' | 'Succeeded' | 'Failed'

async function setup(t: any, opts: { clock?: Clock; outcome?: (pod: KubeObject) => Outcome } = {}) {
  const clock = opts.clock ?? systemClock
  const dir = mkdtempSync(join(tmpdir(), 'bramble-job-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, clock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const pods = new Informer(registry, kind('Pod'))
  const jobs = new Informer(registry, kind('Job'))
  const controller = new JobController({ registry, jobs, pods, events: new EventRecorder(registry, clock, silentLogger(), { component: 'job-controller' }), clock, logger: silentLogger() })
  await pods.start()
  await jobs.start()
  controller.start()

  // Every pod change seen, to check how many ran at once.
  const live = new Map<string, KubeObject>()
  let mostActive = 0
  const { revision } = await registry.list(kind('Pod'), 'default')
  const watch = registry.watch(kind('Pod'), 'default', revision, (e) => {
    if (e.type === 'DELETED') live.delete(e.object.metadata.name!)
    else live.set(e.object.metadata.name!, e.object)
    mostActive = Math.max(mostActive, [...live.values()].filter((p) => !['Succeeded', 'Failed'].includes(p.status?.phase)).length)
  })

  let kubelet = true
  // The kubelet's part: a pending pod starts Running, and on the next pass ends as its outcome says.
  const outcome = opts.outcome ?? (() => 'Succeeded')
  const playKubelet = (async () => {
    while (kubelet) {
      for (const p of (await registry.list(kind('Pod'), 'default')).items) {
        const want = outcome(p)
        const phase = p.status?.phase
        let status: any
        if (want === 'stay' || phase === 'Succeeded' || phase === 'Failed') continue
        if (phase !== 'Running') status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }
        else if (want !== 'Running') {
          const terminated = { exitCode: want === 'Succeeded' ? 0 : 1, reason: want === 'Succeeded' ? 'Completed' : 'Error', finishedAt: new Date(clock.now()).toISOString() }
          status = { phase: want, conditions: [{ type: 'Ready', status: 'False' }], containerStatuses: [{ name: 'c', ready: false, restartCount: 0, image: 'busybox:1', imageID: '', state: { terminated } }] }
        }
        else continue
        await registry.update(kind('Pod'), 'default', p.metadata.name!, { ...p, status }, WRITE, 'status').catch(() => undefined)
      }
      await new Promise((r) => setTimeout(r, 30))
    }
  })()
  t.teardown(async () => {
    kubelet = false
    await playKubelet
    watch.stop()
    await controller.stop()
    pods.stop()
    jobs.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 15_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  const podsOf = async (job: string) => (await registry.list(kind('Pod'), 'default')).items.filter((p: KubeObject) => controllerOf(p)?.name === job)
  const getJob = (name: string) => registry.get(kind('Job'), 'default', name)
  const condition = async (name: string, type: string) => ((await getJob(name)).status?.conditions ?? []).find((c: any) => c.type === type && c.status === 'True')
  return { registry, store, until, podsOf, getJob, condition, mostActive: () => mostActive }
}

function job(name: string, spec: Record<string, unknown> = {}, restartPolicy = 'Never'): KubeObject {
  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: { name },
    spec: { template: { metadata: { labels: { app: name } }, spec: { restartPolicy, containers: [{ name: 'c', image: 'busybox:1', command: ['true'] }] } }, ...spec },
  }
}

t.test('completes 3 completions with parallelism 2, never running more than 2 at once, and keeps the pods', async (t) => {
  const { registry, until, podsOf, getJob, condition, mostActive } = await setup(t)
  await registry.create(kind('Job'), 'default', job('pi', { completions: 3, parallelism: 2 }), WRITE)
  await until('the Job is Complete', async () => Boolean(await condition('pi', 'Complete')))
  const done = await getJob('pi')
  t.match(done.status, { succeeded: 3, failed: 0, active: 0, ready: 0, startTime: /Z$/, completionTime: /Z$/ })
  t.match(await condition('pi', 'Complete'), { status: 'True', reason: 'CompletionsReached', lastProbeTime: /Z$/, lastTransitionTime: /Z$/ })
  t.ok(mostActive() <= 2, `at most parallelism pods ran at once (most: ${mostActive()})`)
  t.ok(mostActive() === 2, 'and it did run 2 at once')
  t.same(done.spec.selector, { matchLabels: { [CONTROLLER_UID_LABEL]: done.metadata.uid } }, 'the API gave the Job a selector on its uid')
  const pods = await podsOf('pi')
  t.equal(pods.length, 3, 'exactly completions pods were made, and they stay for their logs')
  for (const p of pods) {
    t.equal(p.status.phase, 'Succeeded')
    t.equal(p.spec.restartPolicy, 'Never')
    t.match(p.metadata.labels, { app: 'pi', [JOB_NAME_LABEL]: 'pi', 'job-name': 'pi', [CONTROLLER_UID_LABEL]: done.metadata.uid, 'controller-uid': done.metadata.uid })
    t.match(controllerOf(p), { apiVersion: 'batch/v1', kind: 'Job', name: 'pi', uid: done.metadata.uid, controller: true })
  }
})

t.test('a work queue Job (no completions) is done when a pod has succeeded and none runs', async (t) => {
  let first = true
  // The first pod finishes the queue; the other keeps running until the test lets it end.
  let release = false
  const { registry, until, podsOf, condition } = await setup(t, {
    outcome: (p) => {
      if (p.status?.phase === 'Running' && first) {
        first = false
        return 'Succeeded'
      }
      return release || p.status?.phase !== 'Running' ? 'Succeeded' : 'Running'
    },
  })
  await registry.create(kind('Job'), 'default', job('queue', { parallelism: 2, completions: null }), WRITE)
  await until('one succeeded, one still running', async () => {
    const pods = await podsOf('queue')
    return pods.filter((p) => p.status.phase === 'Succeeded').length === 1 && pods.filter((p) => p.status.phase === 'Running').length === 1
  })
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await podsOf('queue')).length, 2, 'no new pod once one has succeeded')
  t.notOk(await condition('queue', 'Complete'), 'not complete while a pod still runs')
  release = true
  await until('the Job is Complete', async () => Boolean(await condition('queue', 'Complete')))
  t.equal((await podsOf('queue')).length, 2)
})

t.test('replaces failed pods after 10 s, then 20 s, and fails with BackoffLimitExceeded after backoffLimit + 1, making no more', async (t) => {
  const clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000)
  const { registry, until, podsOf, getJob, condition } = await setup(t, { clock, outcome: () => 'Failed' })
  await registry.create(kind('Job'), 'default', job('flaky', { backoffLimit: 2 }), WRITE)
  const failedPods = async () => (await podsOf('flaky')).filter((p) => p.status.phase === 'Failed').length
  await until('the first pod failed', async () => (await failedPods()) === 1)
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await podsOf('flaky')).length, 1, 'no replacement before its back-off')
  clock.advance(10_000)
  await until('the second pod failed', async () => (await failedPods()) === 2)
  clock.advance(19_000)
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await podsOf('flaky')).length, 2, 'the second back-off is twice as long')
  clock.advance(1_000)
  await until('the Job has Failed', async () => Boolean(await condition('flaky', 'Failed')))
  t.match(await condition('flaky', 'Failed'), { reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' })
  t.match((await getJob('flaky')).status, { failed: 3, succeeded: 0, active: 0 })
  await new Promise((r) => setTimeout(r, 200))
  const pods = await podsOf('flaky')
  t.equal(pods.length, 3, 'three failed pods, kept, and no fourth')
  t.ok(pods.every((p) => p.status.phase === 'Failed'))
  t.notOk((await getJob('flaky')).status.completionTime, 'a failed Job has no completionTime')
})

t.test('with OnFailure, container restarts count against backoffLimit and the running pod is deleted', async (t) => {
  const { registry, until, podsOf, condition } = await setup(t, { outcome: () => 'Running' })
  await registry.create(kind('Job'), 'default', job('crashy', { backoffLimit: 1 }, 'OnFailure'), WRITE)
  await until('its pod runs', async () => (await podsOf('crashy')).some((p) => p.status.phase === 'Running'))
  const [pod] = await podsOf('crashy')
  const status = { ...pod.status, containerStatuses: [{ name: 'c', restartCount: 2, ready: false, image: 'busybox:1', imageID: '', state: { waiting: { reason: 'CrashLoopBackOff' } } }] }
  await registry.update(kind('Pod'), 'default', pod.metadata.name!, { ...pod, status }, WRITE, 'status')
  await until('the Job has Failed', async () => Boolean(await condition('crashy', 'Failed')))
  t.match(await condition('crashy', 'Failed'), { reason: 'BackoffLimitExceeded' })
  await until('its running pod is deleted', async () => (await podsOf('crashy')).length === 0)
})

t.test('activeDeadlineSeconds fails the Job and deletes its pods, woken by a timer rather than polling', async (t) => {
  const clock = new FakeClock(Date.now())
  const { registry, until, podsOf, condition, getJob } = await setup(t, { clock, outcome: () => 'Running' })
  await registry.create(kind('Job'), 'default', job('slow', { activeDeadlineSeconds: 60, parallelism: 2, completions: 4 }), WRITE)
  await until('2 pods run', async () => (await podsOf('slow')).filter((p) => p.status.phase === 'Running').length === 2)
  await until('status shows them', async () => (await getJob('slow')).status?.ready === 2)
  t.notOk(await condition('slow', 'Failed'), 'not failed before the deadline')
  t.ok(clock.pendingTimers > 0, 'a wake-up is set for the deadline')
  clock.advance(59_000)
  await new Promise((r) => setTimeout(r, 150))
  t.notOk(await condition('slow', 'Failed'), 'still not failed a second before it')
  clock.advance(2_000)
  await until('the Job has Failed', async () => Boolean(await condition('slow', 'Failed')))
  t.match(await condition('slow', 'Failed'), { reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' })
  await until('its pods are deleted', async () => (await podsOf('slow')).length === 0)
  t.equal((await getJob('slow')).status.active, 0)
})

t.test('a suspended Job runs no pods; resuming starts them and the clock; suspending again stops them', async (t) => {
  const { registry, until, podsOf, getJob, condition } = await setup(t, { outcome: () => 'Running' })
  await registry.create(kind('Job'), 'default', job('later', { suspend: true, parallelism: 2, completions: 2 }), WRITE)
  await until('it is marked Suspended', async () => Boolean(await condition('later', 'Suspended')))
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await podsOf('later')).length, 0, 'no pods while suspended')
  t.notOk((await getJob('later')).status.startTime, 'no startTime while suspended from the start')
  t.match(await condition('later', 'Suspended'), { reason: 'JobSuspended' })

  // A merge patch, as kubectl sends it: retried by the registry when the controller wrote in between.
  const set = (suspend: boolean) => registry.patch(kind('Job'), 'default', 'later', Buffer.from(JSON.stringify({ spec: { suspend } })), 'application/merge-patch+json', WRITE)
  await set(false)
  await until('2 pods run', async () => (await podsOf('later')).filter((p) => p.status.phase === 'Running').length === 2)
  await until('resumed, with a startTime', async () => {
    const j = await getJob('later')
    return Boolean(j.status.startTime) && j.status.conditions.some((c: any) => c.type === 'Suspended' && c.status === 'False' && c.reason === 'JobResumed')
  })
  await set(true)
  await until('its pods are deleted', async () => (await podsOf('later')).length === 0)
  await until('suspended again', async () => Boolean(await condition('later', 'Suspended')))
  t.equal((await getJob('later')).status.active, 0)
})

t.test('ttlSecondsAfterFinished deletes a finished Job, and its pods, that long after it finished', async (t) => {
  const clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000)
  const { registry, until, podsOf, condition } = await setup(t, { clock })
  await registry.create(kind('Job'), 'default', job('brief', { ttlSecondsAfterFinished: 30 }), WRITE)
  await until('the Job is Complete', async () => Boolean(await condition('brief', 'Complete')))
  clock.advance(29_000)
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await podsOf('brief')).length, 1, 'kept until its time')
  clock.advance(1_000)
  await until('the Job is gone', async () => !(await registry.list(kind('Job'), 'default')).items.some((j: KubeObject) => j.metadata.name === 'brief'))
  await until('its pods are gone', async () => (await podsOf('brief')).length === 0)
})

t.test('does nothing once a Job is finished, and a deleted Job takes its pods with it', async (t) => {
  const { registry, store, until, podsOf, condition } = await setup(t)
  await registry.create(kind('Job'), 'default', job('once'), WRITE)
  await until('the Job is Complete', async () => Boolean(await condition('once', 'Complete')))
  const before = await store.revision()
  await new Promise((r) => setTimeout(r, 300))
  t.equal(await store.revision(), before, 'no write while nothing changes')
  t.equal((await podsOf('once')).length, 1)
  await registry.delete(kind('Job'), 'default', 'once', { dryRun: false })
  await until('its pods are gone', async () => (await podsOf('once')).length === 0)
})

t.test('an Indexed Job runs one pod per index, replaces a failed index, and records completedIndexes', async (t) => {
  // Index 1 fails once; everything else succeeds.
  let failedOnce = false
  const clock = new FakeClock(Math.floor(Date.now() / 1000) * 1000)
  const { registry, until, podsOf, getJob, condition } = await setup(t, {
    clock,
    outcome: (p) => {
      if (p.status?.phase === 'Running' && p.metadata.annotations?.['batch.kubernetes.io/job-completion-index'] === '1' && !failedOnce) {
        failedOnce = true
        return 'Failed'
      }
      return 'Succeeded'
    },
  })
  await registry.create(kind('Job'), 'default', job('shards', { completionMode: 'Indexed', completions: 3, parallelism: 3 }), WRITE)
  await until('index 1 failed and the others are done', async () => (await getJob('shards')).status?.completedIndexes === '0,2')
  clock.advance(10_000)
  await until('the Job is Complete', async () => Boolean(await condition('shards', 'Complete')))
  const done = await getJob('shards')
  t.match(done.status, { succeeded: 3, failed: 1, completedIndexes: '0-2' })
  const pods = await podsOf('shards')
  const indexOf = (p: KubeObject) => p.metadata.annotations?.['batch.kubernetes.io/job-completion-index']
  t.same(pods.map(indexOf).sort(), ['0', '1', '1', '2'], 'one pod per index, and a second for the index that failed')
  for (const p of pods) {
    t.match(p.metadata.name, new RegExp(`^shards-${indexOf(p)}-[a-z0-9]{5}$`))
    t.same(p.spec.containers[0].env, [{ name: 'JOB_COMPLETION_INDEX', value: indexOf(p) }])
    t.equal(p.metadata.labels?.['batch.kubernetes.io/job-completion-index'], indexOf(p))
  }
})
