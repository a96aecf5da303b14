// A CronJob's schedule read in its time zone (cron-parser): the next time after a moment, and the
// times missed between two moments, which a hub that was down must know and node-cron cannot list.

import { CronExpressionParser, type CronExpression } from 'cron-parser'
import { cronFields } from '../api/validate-cron.js'

export class CronSchedule {
  /** Five fields, macros expanded. */
  readonly fields: string
  private readonly expression: CronExpression

  /** `timeZone` undefined reads the schedule in the hub's local zone, as kube-controller-manager does. Throws on a bad schedule. */
  constructor(
    schedule: string,
    readonly timeZone: string | undefined,
  ) {
    this.fields = cronFields(schedule)
    this.expression = CronExpressionParser.parse(this.fields, { tz: timeZone, currentDate: 0 })
  }

  /** The first schedule time strictly after `ms`. */
  nextAfter(ms: number): number {
    this.expression.reset(new Date(ms))
    return this.expression.next().getTime()
  }

  /** The last schedule time at or before `ms`. */
  latestAtOrBefore(ms: number): number {
    // The parser's prev() is strictly before its current date; one ms later makes `ms` itself count.
    this.expression.reset(new Date(ms + 1))
    return this.expression.prev().getTime()
  }

  /** The schedule in the parser's canonical form (steps and names resolved, seconds first) for node-cron, which reads fewer forms. */
  canonicalFields(): string {
    return this.expression.stringify(true).replaceAll('?', '*')
  }
}

export interface UnmetTimes {
  /** The most recent schedule time in the window, if any. */
  latest?: number
  /** How many schedule times fall in the window; counting stops at limit + 1. */
  count: number
}

/**
 * The schedule times t with sinceMs < t <= nowMs. Bounded work whatever the gap: the latest comes
 * from one step back from now, and counting forward stops once it passes `limit`.
 */
export function unmetScheduleTimes(schedule: CronSchedule, sinceMs: number, nowMs: number, limit = 100): UnmetTimes {
  if (nowMs <= sinceMs) return { count: 0 }
  const latest = schedule.latestAtOrBefore(nowMs)
  if (latest <= sinceMs) return { count: 0 }
  let count = 0
  for (let t = schedule.nextAfter(sinceMs); t <= nowMs && count <= limit; t = schedule.nextAfter(t)) count++
  return { latest, count }
}
