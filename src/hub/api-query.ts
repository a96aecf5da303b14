// Query parameters of the resource verbs, checked before anything is read or written: a value
// that does not parse is a 400 naming the parameter, never silently read as a default.

import { badRequest } from './api-errors.js'

/** Go's strconv.ParseBool, as the Kubernetes API server reads booleans; '' is false. */
export function parseBool(value: string): boolean | undefined {
  if (['', '0', 'f', 'F', 'false', 'FALSE', 'False'].includes(value)) return false
  if (['1', 't', 'T', 'true', 'TRUE', 'True'].includes(value)) return true
  return undefined
}

export function booleanParam(q: URLSearchParams, name: string): boolean | undefined {
  const value = q.get(name)
  if (value === null) return undefined
  const parsed = parseBool(value)
  if (parsed === undefined) throw badRequest(`${name}: Invalid value: ${JSON.stringify(value)}: must be true or false`)
  return parsed
}

/** A whole number of at least `min`; absent or '' is undefined. */
export function integerParam(q: URLSearchParams, name: string, min = 0): number | undefined {
  const value = q.get(name)
  if (value === null || value === '') return undefined
  const parsed = /^[+-]?\d{1,15}$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(parsed) || parsed < min) throw badRequest(`${name}: Invalid value: ${JSON.stringify(value)}: must be a whole number, ${min} or more`)
  return parsed
}

export function oneOfParam<T extends string>(q: URLSearchParams, name: string, supported: readonly T[]): T | undefined {
  const value = q.get(name)
  if (value === null || value === '') return undefined
  if (!supported.includes(value as T)) throw badRequest(`${name}: Unsupported value: ${JSON.stringify(value)}: supported values: ${supported.map((s) => JSON.stringify(s)).join(', ')}`)
  return value as T
}

/** A revision as the store stamps them (a decimal number); '' and absent mean "the latest". */
export function resourceVersionParam(q: URLSearchParams): string | undefined {
  const value = q.get('resourceVersion')
  if (value === null || value === '') return undefined
  if (!/^\d{1,15}$/.test(value)) throw badRequest(`resourceVersion: Invalid value: ${JSON.stringify(value)}: must be a resourceVersion the server returned (a whole number)`)
  return value
}

/** Checks the parameters of a list or watch. */
export function checkListQuery(q: URLSearchParams): void {
  for (const name of ['watch', 'allowWatchBookmarks', 'sendInitialEvents']) booleanParam(q, name)
  integerParam(q, 'timeoutSeconds')
  integerParam(q, 'limit')
  resourceVersionParam(q)
  oneOfParam(q, 'resourceVersionMatch', ['NotOlderThan', 'Exact'])
}

export const INCLUDE_OBJECT = ['None', 'Metadata', 'Object'] as const
