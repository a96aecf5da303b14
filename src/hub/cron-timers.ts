// What wakes the CronJob controller at each schedule time: node-cron in the hub, or the parser's next
// time on an injected Clock where time is simulated. A wake-up only says "look again": the controller
// decides from the stored lastScheduleTime, so a wake-up twice or late is harmless.

import cron from 'node-cron'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { CronSchedule } from './cron-schedule.js'

export interface CronTimer {
  cancel(): void
}

export interface CronTimers {
  /** Calls `fire` at every time of the schedule until the timer is cancelled. */
  start(schedule: CronSchedule, fire: () => void): CronTimer
}

/** node-cron tasks, unref'd so that they never keep a process alive on their own. */
export function nodeCronTimers(logger: Logger): CronTimers {
  const log = logger.child({ component: 'node-cron' })
  const cronLogger = {
    info: (message: string) => log.debug(message),
    debug: (message: string | Error) => log.debug({ message }),
    warn: (message: string) => log.warn(message),
    error: (message: string | Error, err?: Error) => log.error({ err: err ?? message }, 'node-cron task error'),
  }
  return {
    start(schedule, fire) {
      const task = cron.schedule(schedule.canonicalFields(), () => fire(), { timezone: schedule.timeZone, unref: true, logger: cronLogger })
      return { cancel: () => void task.destroy() }
    },
  }
}

/** Timers on a Clock, each armed for the schedule's next time after the clock's now. */
export function clockCronTimers(clock: Clock): CronTimers {
  return {
    start(schedule, fire) {
      let pending: { cancel(): void } | undefined
      let cancelled = false
      const arm = () => {
        const now = clock.now()
        pending = clock.setTimeout(() => {
          if (cancelled) return
          fire()
          arm()
        }, schedule.nextAfter(now) - now)
      }
      arm()
      return {
        cancel() {
          cancelled = true
          pending?.cancel()
        },
      }
    },
  }
}
