// CronJob schedules: the missed-times function catch-up relies on, time zones, and the promise that
// every schedule the API accepts is one cron-parser reads and node-cron can fire.

import fc from 'fast-check'
import cron from 'node-cron'
import t from 'tap'
import { cronScheduleError, cronTimeZoneError } from '../../src/api/validate-cron.js'
import { CronSchedule, unmetScheduleTimes } from '../../src/hub/cron-schedule.js'
import { rfc3339InZone } from '../../src/hub/cronjob-controller.js'

const at = (iso: string) => Date.parse(iso)
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString())

t.test('unmet times: none before the first schedule time, nor when now is not after since', async (t) => {
  const every5 = new CronSchedule('*/5 * * * *', 'UTC')
  t.same(unmetScheduleTimes(every5, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:04:59Z')), { count: 0 })
  t.same(unmetScheduleTimes(every5, at('2026-01-01T00:05:00Z'), at('2026-01-01T00:05:00Z')), { count: 0 }, 'since itself never counts')
  t.same(unmetScheduleTimes(every5, at('2026-01-01T00:10:00Z'), at('2026-01-01T00:09:00Z')), { count: 0 }, 'a clock behind the record')
})

t.test('unmet times: a time exactly at now counts; the latest and how many are answered', async (t) => {
  const every5 = new CronSchedule('*/5 * * * *', 'UTC')
  const one = unmetScheduleTimes(every5, at('2026-01-01T00:00:00Z'), at('2026-01-01T00:05:00Z'))
  t.same({ latest: iso(one.latest), count: one.count }, { latest: '2026-01-01T00:05:00.000Z', count: 1 })
  const three = unmetScheduleTimes(every5, at('2026-01-01T00:00:30Z'), at('2026-01-01T00:17:59Z'))
  t.same({ latest: iso(three.latest), count: three.count }, { latest: '2026-01-01T00:15:00.000Z', count: 3 })
})

t.test('unmet times: a long outage is counted only up to the limit, the latest still exact', async (t) => {
  const everyMinute = new CronSchedule('* * * * *', 'UTC')
  const started = performance.now()
  const year = unmetScheduleTimes(everyMinute, at('2025-01-01T00:00:00Z'), at('2026-01-01T12:34:56Z'), 100)
  t.equal(iso(year.latest), '2026-01-01T12:34:00.000Z')
  t.equal(year.count, 101, 'stops counting past the limit')
  t.ok(performance.now() - started < 5_000, 'bounded work, not a year of minutes')
  const exactly = unmetScheduleTimes(everyMinute, at('2026-01-01T00:00:00Z'), at('2026-01-01T01:40:00Z'), 100)
  t.equal(exactly.count, 100, 'exactly the limit is not "more than"')
})

t.test('unmet times follow the schedule time zone, macros included', async (t) => {
  const tokyo9 = new CronSchedule('0 9 * * *', 'Asia/Tokyo')
  const r = unmetScheduleTimes(tokyo9, at('2026-01-01T12:00:00Z'), at('2026-01-03T12:00:00Z'))
  t.same({ latest: iso(r.latest), count: r.count }, { latest: '2026-01-03T00:00:00.000Z', count: 2 }, '09:00 in Tokyo is 00:00 UTC')
  const ny = new CronSchedule('@daily', 'America/New_York')
  t.equal(iso(ny.nextAfter(at('2026-07-01T00:00:00Z'))), '2026-07-01T04:00:00.000Z', 'midnight EDT')
  t.equal(iso(ny.nextAfter(at('2026-12-01T00:00:00Z'))), '2026-12-01T05:00:00.000Z', 'midnight EST')
  t.equal(new CronSchedule('@midnight', 'UTC').fields, '0 0 * * *')
})

t.test('every schedule the API accepts is read by cron-parser and by node-cron alike', async (t) => {
  const field = (min: number, max: number, names: string[] = []) =>
    fc.oneof(
      fc.constant('*'),
      fc.integer({ min, max }).map(String),
      fc.tuple(fc.integer({ min, max }), fc.integer({ min, max })).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
      fc.tuple(fc.oneof(fc.constant('*'), fc.integer({ min, max }).map(String)), fc.integer({ min: 1, max: max + 1 })).map(([r, s]) => `${r}/${s}`),
      fc.array(fc.integer({ min, max }), { minLength: 2, maxLength: 4 }).map((xs) => xs.join(',')),
      ...(names.length > 0 ? [fc.constantFrom(...names)] : []),
    )
  const schedule = fc
    .tuple(field(0, 59), field(0, 23), fc.oneof(field(1, 31), fc.constant('?')), field(1, 12, ['JAN', 'jun', 'DEC']), fc.oneof(field(0, 7, ['MON', 'sun', 'FRI']), fc.constant('?')))
    .map((parts) => parts.join(' '))
  const zone = fc.constantFrom(undefined, 'UTC', 'Asia/Tokyo', 'America/New_York', 'Australia/Lord_Howe')
  let accepted = 0
  fc.assert(
    fc.property(schedule, zone, (s, tz) => {
      if (cronScheduleError(s) !== undefined) return
      accepted++
      const parsed = new CronSchedule(s, tz)
      const from = at('2026-03-01T00:00:00Z')
      const next = parsed.nextAfter(from)
      if (!(next > from)) throw new Error(`${s}: no next time`)
      if (!cron.validate(parsed.canonicalFields())) throw new Error(`${s}: node-cron refuses ${parsed.canonicalFields()}`)
    }),
    { numRuns: 300, seed: 4 },
  )
  t.ok(accepted > 100, `exercised ${accepted} accepted schedules`)
  for (const s of ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', '0 0 ? * 7', '5/15 * * * *']) {
    t.equal(cronScheduleError(s), undefined, s)
    t.ok(cron.validate(new CronSchedule(s, 'UTC').canonicalFields()), `node-cron reads ${s}`)
  }
})

t.test('schedules no calendar has are refused, naming why', async (t) => {
  t.match(cronScheduleError('0 0 31 2 *'), /never fires/)
  t.match(cronScheduleError('0 0 30 2 *'), /never fires/)
  t.equal(cronScheduleError('0 0 29 2 *'), undefined, 'leap days exist')
  t.equal(cronScheduleError('0 0 31 4,5 *'), undefined, 'one month of the list has a 31st')
})

t.test('time zones: IANA names only, as Kubernetes checks them', async (t) => {
  for (const ok of ['UTC', 'Etc/UTC', 'Europe/Paris', 'America/Argentina/Buenos_Aires', 'Asia/Kolkata']) t.equal(cronTimeZoneError(ok), undefined, ok)
  t.match(cronTimeZoneError('Local'), /explicit time zone/)
  t.match(cronTimeZoneError(''), /non-empty/)
  t.match(cronTimeZoneError('Mars/Olympus_Mons'), /unknown time zone/)
  t.match(cronTimeZoneError('../etc/passwd'), /unknown time zone/)
})

t.test('scheduled timestamps are written in the CronJob time zone', async (t) => {
  const ms = at('2026-01-02T00:00:00Z')
  t.equal(rfc3339InZone(ms, undefined), '2026-01-02T00:00:00Z')
  t.equal(rfc3339InZone(ms, 'UTC'), '2026-01-02T00:00:00Z')
  t.equal(rfc3339InZone(ms, 'Asia/Tokyo'), '2026-01-02T09:00:00+09:00')
  t.equal(rfc3339InZone(ms, 'America/New_York'), '2026-01-01T19:00:00-05:00')
  t.equal(rfc3339InZone(ms, 'Asia/Kolkata'), '2026-01-02T05:30:00+05:30')
})
