// Walks an object against the Kubernetes field schema (k8s-schema.ts): JSON types that do not fit
// (FieldValueTypeInvalid), fields Kubernetes does not define (unknownFields, refused under
// fieldValidation=Strict) and fields it defines that Bramble does not act on (ignoredFields).

import type { ActedIndex } from './validate-acted-fields.js'
import { fieldsOfType } from './k8s-schema.js'
import type { FieldError } from './types.js'
import { child, index, isRecord, key, typeInvalid } from './validate-errors.js'

export interface SchemaFindings {
  errors: FieldError[]
  unknownFields: string[]
  ignoredFields: string[]
}

/**
 * Fields holding resource.Quantity values, which client-node types as strings but Kubernetes also
 * reads from JSON numbers (`cpu: 2` in YAML). Their values take a string or a number.
 */
const QUANTITY_FIELDS = new Set([
  'V1ContainerStatus.allocatedResources',
  'V1EmptyDirVolumeSource.sizeLimit',
  'V1NodeStatus.allocatable',
  'V1NodeStatus.capacity',
  'V1PodSpec.overhead',
  'V1ResourceFieldSelector.divisor',
  'V1ResourceRequirements.limits',
  'V1ResourceRequirements.requests',
  'V1VolumeResourceRequirements.limits',
  'V1VolumeResourceRequirements.requests',
])

/** Deeper than any Kubernetes type nests; guards against pathological input. */
const MAX_DEPTH = 64

export function walkSchema(obj: unknown, typeName: string, acted: ActedIndex): SchemaFindings {
  const found: SchemaFindings = { errors: [], unknownFields: [], ignoredFields: [] }
  const ignored = new Set<string>()
  const walk = (value: unknown, type: string, path: string, pattern: string, checkIgnored: boolean, depth: number): void => {
    if (value === null || value === undefined) return
    if (depth > MAX_DEPTH) {
      found.errors.push({ field: path, type: 'FieldValueInvalid', message: `Invalid value: nested more than ${MAX_DEPTH} levels deep` })
      return
    }
    const arr = /^Array<(.+)>$/.exec(type)
    if (arr) {
      if (!Array.isArray(value)) return void found.errors.push(typeInvalid(path, value, 'array'))
      value.forEach((v, i) => {
        // A null field means "unset", but a null list item is a hole later code would trip on.
        if (v === null || v === undefined) found.errors.push(typeInvalid(index(path, i), null, itemTypeName(arr[1])))
        else walk(v, arr[1], index(path, i), `${pattern}[*]`, checkIgnored, depth + 1)
      })
      return
    }
    const map = /^\{ \[key: string\]: (.+); \}$/.exec(type)
    if (map) {
      if (!isRecord(value)) return void found.errors.push(typeInvalid(path, value, 'object'))
      for (const [k, v] of Object.entries(value)) walk(v, map[1], key(path, k), pattern, false, depth + 1)
      return
    }
    switch (type) {
      case 'Quantity':
        if (typeof value !== 'string' && (typeof value !== 'number' || !Number.isFinite(value))) found.errors.push(typeInvalid(path, value, 'string'))
        return
      case 'string':
      case 'Date':
      case 'V1MicroTime':
        if (typeof value !== 'string') found.errors.push(typeInvalid(path, value, 'string'))
        return
      case 'boolean':
        if (typeof value !== 'boolean') found.errors.push(typeInvalid(path, value, 'boolean'))
        return
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value)) found.errors.push(typeInvalid(path, value, 'number'))
        else if (!Number.isInteger(value)) found.errors.push(typeInvalid(path, value, 'integer'))
        return
      case 'IntOrString':
        if (typeof value === 'string') return
        if (typeof value !== 'number' || !Number.isInteger(value)) found.errors.push(typeInvalid(path, value, 'integer or string'))
        return
      case 'object':
      case 'any':
        return
    }
    const fields = fieldsOfType(type)
    if (!fields) return
    if (!isRecord(value)) return void found.errors.push(typeInvalid(path, value, 'object'))
    for (const [name, v] of Object.entries(value)) {
      const p = child(path, name)
      const pat = child(pattern, name)
      if (!Object.prototype.hasOwnProperty.call(fields, name)) {
        found.unknownFields.push(p)
        continue
      }
      let check = checkIgnored
      if (check && acted.covers(pat)) check = false
      if (check && !acted.leadsTo(pat)) {
        if (!isEmpty(v) && !ignored.has(p)) {
          ignored.add(p)
          found.ignoredFields.push(p)
        }
        check = false
      }
      const fieldType = QUANTITY_FIELDS.has(`${type}.${name}`) ? fields[name].type.replace(/string(; \})?$/, 'Quantity$1') : fields[name].type
      walk(v, fieldType, p, pat, check, depth + 1)
    }
  }
  walk(obj, typeName, '', '', true, 0)
  return found
}

function itemTypeName(type: string): string {
  if (type === 'string' || type === 'boolean' || type === 'number') return type === 'number' ? 'integer' : type
  return type === 'IntOrString' ? 'integer or string' : 'object'
}

/** Empty values (`{}`, `[]`, null, false) are not worth a warning: they ask for nothing. */
function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === false) return true
  if (Array.isArray(v)) return v.length === 0
  if (isRecord(v)) return Object.keys(v).length === 0
  return false
}
