// A real `bramble hub` process, real time, node-cron firing: an every-minute CronJob with
// concurrencyPolicy Forbid runs twice in a row, then skips a minute while its Job is still active.
// The test plays the Job controller through the API (it marks the first Job Complete). About 3 minutes.

import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const BATCH = '/apis/batch/v1/namespaces/default'
const MINUTE = 60_000

t.teardown(() => closeApiAgents())

async function jobsOf(hub: HubProcess, cronJob: string): Promise<string[]> {
  const res = await apiRequest(hub, 'GET', `${BATCH}/jobs`)
  if (res.status !== 200) throw new Error(`listing jobs: ${res.status} ${res.text}`)
  return res.json.items
    .filter((j: any) => j.metadata.ownerReferences?.some((r: any) => r.kind === 'CronJob' && r.name === cronJob && r.controller))
    .map((j: any) => j.metadata.name)
    .sort()
}

async function waitFor<T>(what: string, withinMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + withinMs
  for (;;) {
    const value = await probe()
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

const minuteOf = (jobName: string) => Number(jobName.split('-').pop())

t.test('an every-minute CronJob with Forbid runs twice in a row, then waits while its Job is active', async (t) => {
  const hub = await startHubProcess()
  t.teardown(() => hub.cleanup())
  const created = await apiRequest(hub, 'POST', `${BATCH}/cronjobs`, {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'every-minute' },
    spec: {
      schedule: '* * * * *',
      concurrencyPolicy: 'Forbid',
      jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1', command: ['true'] }] } } } },
    },
  })
  t.equal(created.status, 201, created.status === 201 ? 'created' : created.text)

  // Up to a minute for the first boundary, plus a generous margin.
  const [first] = await waitFor('the first Job', 90_000, async () => {
    const jobs = await jobsOf(hub, 'every-minute')
    return jobs.length > 0 ? jobs : undefined
  })
  t.match(first, /^every-minute-\d+$/)
  t.ok(Math.abs(minuteOf(first) * MINUTE - Date.now()) < 90_000, 'named after the minute it was due')

  const done = await apiRequest(
    hub,
    'PATCH',
    `${BATCH}/jobs/${first}/status`,
    { status: { succeeded: 1, completionTime: new Date().toISOString().replace(/\.\d+Z$/, 'Z'), conditions: [{ type: 'Complete', status: 'True' }] } },
    { 'Content-Type': 'application/merge-patch+json' },
  )
  t.equal(done.status, 200, done.status === 200 ? 'the first Job is marked Complete' : done.text)

  const second = await waitFor('the second Job', 90_000, async () => {
    const jobs = await jobsOf(hub, 'every-minute')
    return jobs.length > 1 ? jobs[1] : undefined
  })
  t.equal(minuteOf(second), minuteOf(first) + 1, 'the second run is the very next minute')

  // The minute after: the second Job is still active, so Forbid skips it.
  const nextBoundary = (minuteOf(second) + 1) * MINUTE
  await new Promise((r) => setTimeout(r, Math.max(0, nextBoundary - Date.now()) + 8_000))
  t.same(await jobsOf(hub, 'every-minute'), [first, second], 'no third Job while the second is active')
  const cj = await apiRequest(hub, 'GET', `${BATCH}/cronjobs/every-minute`)
  t.same(
    cj.json.status.active.map((r: any) => r.name),
    [second],
  )
  t.equal(Date.parse(cj.json.status.lastScheduleTime), minuteOf(second) * MINUTE)
  t.ok(cj.json.status.lastSuccessfulTime, 'the first Job counts as a success')
  const events = await apiRequest(hub, 'GET', `/api/v1/namespaces/default/events?fieldSelector=involvedObject.name=every-minute`)
  t.ok(
    events.json.items.some((e: any) => e.reason === 'JobAlreadyActive'),
    'the skip is explained in an Event',
  )
})
