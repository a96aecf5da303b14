// What a resource request asks for beyond its path: query parameters checked before anything is
// read or written (a value that does not parse is a 400 naming the parameter, never silently read
// as a default), its Kubernetes verb, and whether it wants a Table.

import type { IncomingMessage } from 'node:http'
import { checkFieldSelector, matchesFields, matchesLabels, parseFieldSelector, parseLabelSelector } from '../api/selector.js'
import type { KubeObject } from '../api/types.js'
import { badRequest } from './api-errors.js'
import type { FieldValidation } from './registry.js'

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

/** The Kubernetes verb of a resource request (get, list, watch, create, ...), for metrics and authorization. */
export function verbOf(method: string, name: string | undefined, subresource: string | undefined, q: URLSearchParams): string | undefined {
  // An eviction or a binding is created (POST) on a named pod, and is nothing else.
  if (subresource === 'eviction' || subresource === 'binding') return method === 'POST' && name ? 'create' : undefined
  switch (method) {
    case 'GET':
      if (name) return 'get'
      return parseBool(q.get('watch') ?? '') ? 'watch' : 'list'
    case 'POST':
      return name ? undefined : 'create'
    case 'PUT':
      return name ? 'update' : undefined
    case 'PATCH':
      return name ? 'patch' : undefined
    case 'DELETE':
      return name ? 'delete' : 'deletecollection'
    default:
      return undefined
  }
}

export function isDryRun(q: URLSearchParams): boolean {
  const values = q.getAll('dryRun')
  for (const v of values) if (v !== 'All') throw badRequest(`dryRun: Unsupported value: "${v}": supported values: "All"`)
  return values.length > 0
}

export function fieldValidationOf(q: URLSearchParams): FieldValidation {
  const v = q.get('fieldValidation')
  if (v === null || v === '') return 'Warn'
  if (v === 'Strict' || v === 'Warn' || v === 'Ignore') return v
  throw badRequest(`fieldValidation: Unsupported value: "${v}": supported values: "Ignore", "Strict", "Warn"`)
}

export function wantsTable(req: IncomingMessage): boolean {
  const accept = req.headers.accept ?? ''
  return accept.split(',').some((part) => /;\s*as=Table/.test(part) && /g=meta\.k8s\.io/.test(part))
}

export function includeObjectOf(q: URLSearchParams): (typeof INCLUDE_OBJECT)[number] {
  return oneOfParam(q, 'includeObject', INCLUDE_OBJECT) ?? 'Metadata'
}

/** labelSelector and fieldSelector as one predicate; a malformed selector is a 400. */
export function selectorOf(q: URLSearchParams, kind: string): { test: (o: KubeObject) => boolean; filtered: boolean } {
  const labelSel = q.get('labelSelector') ?? ''
  const fieldSel = q.get('fieldSelector') ?? ''
  let labels: ReturnType<typeof parseLabelSelector>
  let fields: ReturnType<typeof parseFieldSelector>
  try {
    labels = parseLabelSelector(labelSel)
  } catch (err) {
    throw badRequest(`unable to parse requirement: ${(err as Error).message}`, { cause: err })
  }
  try {
    fields = parseFieldSelector(fieldSel)
    checkFieldSelector(fields, kind)
  } catch (err) {
    throw badRequest(`invalid field selector: ${(err as Error).message}`, { cause: err })
  }
  const filtered = labelSel !== '' || fieldSel !== ''
  return { test: (o) => matchesLabels(labels, o.metadata.labels) && matchesFields(fields, o), filtered }
}
