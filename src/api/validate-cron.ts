// Cron schedules as CronJob takes them: five fields (minute hour day-of-month month day-of-week)
// or a macro such as @hourly, and the IANA time zone they are read in. Answers what is wrong, or
// undefined when valid. A schedule that passes here is one the hub's parser (cron-parser) can run.

import { CronExpressionParser } from 'cron-parser'

/** The macros Kubernetes accepts, as five fields (cron-parser lacks @midnight, so the hub expands them all). */
const MACROS: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
}
const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC']
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT']

interface CronField {
  name: string
  min: number
  max: number
  names?: string[]
  /** The first name stands for this number (JAN is 1, SUN is 0). */
  namesFrom?: number
  question?: boolean
}

const FIELDS: CronField[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31, question: true },
  { name: 'month', min: 1, max: 12, names: MONTHS, namesFrom: 1 },
  { name: 'day of week', min: 0, max: 7, names: DAYS, namesFrom: 0, question: true },
]

/** Checks a cron schedule; returns a reason when it is invalid. */
export function cronScheduleError(schedule: string): string | undefined {
  const s = schedule.trim()
  if (s === '') return 'empty spec string'
  if (/^(CRON_)?TZ=/.test(s)) return 'cannot use TZ or CRON_TZ in schedule, use timeZone field instead'
  if (s.startsWith('@')) return MACROS[s] ? undefined : `unrecognized descriptor: ${s}`
  const parts = s.split(/\s+/)
  if (parts.length !== 5) return `expected exactly 5 fields, found ${parts.length}: ${s}`
  for (let i = 0; i < 5; i++) {
    const why = fieldError(parts[i], FIELDS[i])
    if (why) return `${FIELDS[i].name}: ${why}`
  }
  // What the fields allow but no calendar has (`0 0 31 2 *`): the parser refuses it or never fires.
  try {
    CronExpressionParser.parse(s, { currentDate: Date.UTC(2000, 0, 1), tz: 'UTC' }).next()
  } catch (err) {
    return `the schedule never fires: ${(err as Error).message}`
  }
  return undefined
}

/** A valid schedule as five fields: macros expanded, spaces normalised. */
export function cronFields(schedule: string): string {
  const s = schedule.trim()
  return MACROS[s] ?? s.split(/\s+/).join(' ')
}

/** Checks a CronJob's timeZone as Kubernetes does: an explicit IANA name, not "Local". */
export function cronTimeZoneError(timeZone: string): string | undefined {
  if (timeZone === '') return 'timeZone must be nil or non-empty string'
  if (timeZone.toLowerCase() === 'local') return 'timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones'
  for (const part of timeZone.split('/')) {
    if (part === '.' || part === '..' || part.startsWith('-') || !/^[A-Za-z\.\-_0-9+]{1,14}$/.test(part)) return `unknown time zone ${timeZone}`
  }
  try {
    new Intl.DateTimeFormat('en-US', { timeZone })
  } catch {
    return `unknown time zone ${timeZone}`
  }
  return undefined
}

function fieldError(text: string, f: CronField): string | undefined {
  for (const part of text.split(',')) {
    if (part === '') return `empty list item in "${text}"`
    if (part === '?' && f.question) continue
    const [range, step, ...rest] = part.split('/')
    if (rest.length > 0) return `too many slashes: ${part}`
    if (step !== undefined && !/^[0-9]+$/.test(step)) return `failed to parse step "${step}" in ${part}`
    if (step !== undefined && Number(step) === 0) return `step of range should be a positive number: ${part}`
    if (range === '*') continue
    const [lo, hi, ...more] = range.split('-')
    if (more.length > 0) return `too many hyphens: ${part}`
    const a = value(lo, f)
    if (a === undefined) return `failed to parse "${lo}"`
    const b = hi === undefined ? a : value(hi, f)
    if (b === undefined) return `failed to parse "${hi}"`
    if (a < f.min || b > f.max) return `${part} is beyond the range ${f.min}-${f.max}`
    if (a > b) return `beginning of range (${a}) beyond end of range (${b}): ${part}`
  }
  return undefined
}

function value(text: string, f: CronField): number | undefined {
  if (/^[0-9]+$/.test(text)) return Number(text)
  const i = f.names?.indexOf(text.toUpperCase()) ?? -1
  return i >= 0 ? i + (f.namesFrom ?? 0) : undefined
}
