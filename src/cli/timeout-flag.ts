// `--timeout` of the commands that wait (rollout status, drain), read as kubectl reads it.

import { FlagReason, parseDurationMs } from '../lib/config-values.js'
import { UsageError } from './errors.js'

/** Milliseconds; `0`, `0s` or no flag mean no limit, as in kubectl. */
export function timeoutMsOf(value: string | undefined, flag = '--timeout'): number {
  if (value === undefined || /^0+(ms|s|m|h)?$/.test(value.trim())) return 0
  try {
    return parseDurationMs(value)
  } catch (err) {
    if (err instanceof FlagReason) throw new UsageError(`${flag} ${err.message}`)
    throw err
  }
}
