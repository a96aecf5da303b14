// Field errors as Kubernetes' apimachinery (field/errors.go) builds them. The message is the
// cause message Kubernetes puts in a Status (`Invalid value: "Foo": a lowercase RFC 1123 ...`),
// so the API can pass it through unchanged.

import type { FieldError } from './types.js'

/** The child field `name` of `path` (`spec` + `containers` → `spec.containers`). */
export function child(path: string, name: string): string {
  return path === '' ? name : `${path}.${name}`
}

/** The list element `i` of `path` (`spec.containers[0]`). */
export function index(path: string, i: number): string {
  return `${path}[${i}]`
}

/** The map entry `key` of `path` (`data[my.key]`), as Kubernetes' field.Path.Key. */
export function key(path: string, k: string): string {
  return `${path}[${k}]`
}

const MAX_VALUE_CHARS = 200

/** Formats a bad value the way Kubernetes prints it: strings quoted, numbers bare. */
export function showValue(value: unknown): string {
  let s: string
  if (typeof value === 'string') s = JSON.stringify(value)
  else if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') s = String(value)
  else if (value === null) s = 'null'
  else if (value === undefined) s = '"undefined"'
  else {
    try {
      s = JSON.stringify(value) ?? String(value)
    } catch {
      s = String(value)
    }
  }
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS)}...(truncated)` : s
}

/** A short copy of a bad value for the error's `value` field (huge strings are cut). */
function keepValue(value: unknown): unknown {
  if (typeof value === 'string' && value.length > MAX_VALUE_CHARS) return `${value.slice(0, MAX_VALUE_CHARS)}...`
  if (value !== null && typeof value === 'object') return undefined
  return value
}

export function required(field: string, detail = ''): FieldError {
  return { field, type: 'FieldValueRequired', message: detail ? `Required value: ${detail}` : 'Required value' }
}

export function invalid(field: string, value: unknown, detail: string): FieldError {
  return { field, type: 'FieldValueInvalid', message: `Invalid value: ${showValue(value)}${detail ? `: ${detail}` : ''}`, value: keepValue(value) }
}

export function notSupported(field: string, value: unknown, supported: readonly string[]): FieldError {
  const list = supported.map((s) => JSON.stringify(s)).join(', ')
  return { field, type: 'FieldValueNotSupported', message: `Unsupported value: ${showValue(value)}: supported values: ${list}`, value: keepValue(value) }
}

export function duplicate(field: string, value: unknown): FieldError {
  return { field, type: 'FieldValueDuplicate', message: `Duplicate value: ${showValue(value)}`, value: keepValue(value) }
}

export function tooLong(field: string, max: number, unit = 'bytes'): FieldError {
  return { field, type: 'FieldValueTooLong', message: `Too long: may not be more than ${max} ${unit}` }
}

export function forbidden(field: string, detail: string): FieldError {
  return { field, type: 'FieldValueForbidden', message: `Forbidden: ${detail}` }
}

export function typeInvalid(field: string, value: unknown, expected: string): FieldError {
  return { field, type: 'FieldValueTypeInvalid', message: `Invalid value: ${showValue(value)}: must be of type ${expected}`, value: keepValue(value) }
}

/** Builds FieldValueInvalid errors from the messages of a name check (IsDNS1123Label and the like). */
export function invalidEach(field: string, value: unknown, messages: readonly string[]): FieldError[] {
  return messages.map((m) => invalid(field, value, m))
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
