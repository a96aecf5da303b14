// One contract for what wakes the CronJob controller, run against node-cron (real time, a
// seconds schedule so the test is short) and against timers on a Clock (a fake one).

import t from 'tap'
import { CronSchedule } from '../../src/hub/cron-schedule.js'
import { clockCronTimers, nodeCronTimers, type CronTimers } from '../../src/hub/cron-timers.js'
import type { Clock } from '../../src/lib/clock.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

interface Subject {
  timers: CronTimers
  clock: Clock
  /** Lets `ms` of the subject's time pass. */
  pass(ms: number): Promise<void>
}

function timersContract(name: string, make: () => Subject): void {
  t.test(`${name}: fires at each schedule time, and never again once cancelled`, async (t) => {
    const { timers, clock, pass } = make()
    const fired: number[] = []
    const timer = timers.start(new CronSchedule('* * * * * *', 'UTC'), () => fired.push(clock.now()))
    await pass(3_500)
    t.ok(fired.length >= 2 && fired.length <= 4, `fired ${fired.length} times in 3.5 s of an every-second schedule`)
    for (const at of fired) t.ok(at % 1000 < 900, `fired at a whole second (${new Date(at).toISOString()})`)
    timer.cancel()
    const before = fired.length
    await pass(2_000)
    t.equal(fired.length, before, 'nothing after cancel')
  })

  t.test(`${name}: each timer keeps its own schedule`, async (t) => {
    const { timers, pass } = make()
    let every = 0
    let never = 0
    const a = timers.start(new CronSchedule('* * * * * *', 'UTC'), () => every++)
    const b = timers.start(new CronSchedule('0 0 1 1 *', 'UTC'), () => never++)
    await pass(2_500)
    a.cancel()
    b.cancel()
    t.ok(every >= 1, 'the every-second timer fired')
    t.equal(never, 0, 'the yearly one did not')
  })
}

timersContract('node-cron', () => ({
  timers: nodeCronTimers(silentLogger()),
  clock: systemClock,
  pass: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
}))

timersContract('clock timers', () => {
  const clock = new FakeClock(Date.parse('2026-01-01T00:00:00.250Z'))
  return {
    timers: clockCronTimers(clock),
    clock,
    pass: async (ms) => clock.advance(ms),
  }
})

t.test('clock timers: a minute schedule fires exactly on the minute, in its time zone', async (t) => {
  const clock = new FakeClock(Date.parse('2026-01-01T23:58:30Z'))
  const fired: string[] = []
  const timer = clockCronTimers(clock).start(new CronSchedule('0 9 * * *', 'Asia/Tokyo'), () => fired.push(new Date(clock.now()).toISOString()))
  clock.advance(24 * 3600_000)
  timer.cancel()
  t.same(fired, ['2026-01-02T00:00:00.000Z'])
  t.equal(clock.pendingTimers, 0, 'cancel leaves no timer behind')
})
