// What a request body must be before the registry's rules run: its envelope checked against the
// URL (apiVersion, kind, namespace), unknown and ignored fields refused or named, and what a new
// object starts with (its status, the suffix of a generated name).

import { randomBytes } from 'node:crypto'
import { apiVersionOf, type KindInfo } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import { validateObject } from '../api/validate.js'
import { badRequest, invalid } from './api-errors.js'
import type { WriteContext } from './registry.js'

/** Checks apiVersion, kind and namespace of a request body against the URL, filling what is missing. */
export function checkEnvelope(info: KindInfo, body: unknown, namespace: string): KubeObject {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be a JSON or YAML object')
  // Its own top level and metadata, which the checks below and the Registry fill in: the caller's
  // object may be one an informer's cache holds (a controller's `{ ...cached, status }`).
  const object = { ...(body as KubeObject) }
  const apiVersion = apiVersionOf(info)
  if (object.apiVersion === undefined) object.apiVersion = apiVersion
  if (object.kind === undefined) object.kind = info.kind
  if (object.apiVersion !== apiVersion || object.kind !== info.kind) {
    throw badRequest(`the object's apiVersion and kind (${String(object.apiVersion)} ${String(object.kind)}) do not match the URL (${apiVersion} ${info.kind})`)
  }
  if (object.metadata === undefined) object.metadata = {}
  if (typeof object.metadata !== 'object' || object.metadata === null || Array.isArray(object.metadata)) {
    throw invalid(info.group, info.kind, '', [{ field: 'metadata', type: 'FieldValueTypeInvalid', message: 'must be an object' }])
  }
  object.metadata = { ...object.metadata }
  if (info.namespaced) {
    if (object.metadata.namespace !== undefined && object.metadata.namespace !== '' && object.metadata.namespace !== namespace) {
      throw badRequest(`the namespace of the provided object (${String(object.metadata.namespace)}) does not match the namespace sent on the request (${namespace})`)
    }
    object.metadata.namespace = namespace
  } else {
    delete object.metadata.namespace
  }
  return object
}

/**
 * Unknown fields are refused under Strict and warned about under Warn; fields Kubernetes defines
 * but Bramble does not act on are always named. For patches, only fields the patch introduced count.
 */
export function fieldWarnings(info: KindInfo, incoming: KubeObject, ctx: WriteContext, old: KubeObject | undefined): string[] {
  if (ctx.warnings === false && ctx.fieldValidation !== 'Strict') return []
  const found = validateObject(incoming)
  let { unknownFields, ignoredFields } = found
  if (old) {
    const before = validateObject(old)
    unknownFields = unknownFields.filter((f) => !before.unknownFields.includes(f))
    ignoredFields = ignoredFields.filter((f) => !before.ignoredFields.includes(f))
  }
  const warnings: string[] = []
  if (unknownFields.length > 0 && ctx.fieldValidation === 'Strict') {
    throw badRequest(`strict decoding error: ${unknownFields.map((f) => `unknown field "${f}"`).join(', ')}`)
  }
  if (ctx.fieldValidation === 'Warn') for (const f of unknownFields) warnings.push(`unknown field "${f}"`)
  for (const f of ignoredFields) warnings.push(`${f}: Bramble keeps this field but does not act on it`)
  return warnings
}

/** What a new object's status starts as: Kubernetes resets status on create for most kinds. */
export function initialStatus(info: KindInfo, incoming: KubeObject): unknown {
  switch (info.kind) {
    case 'Namespace':
      return { phase: 'Active' }
    case 'Pod':
      return { phase: 'Pending' }
    case 'Node':
      return incoming.status
    default:
      return info.subresources.includes('status') ? {} : incoming.status
  }
}

const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789'

/** Five characters, as Kubernetes appends to generateName. */
export function randomSuffix(): string {
  return [...randomBytes(5)].map((b) => SUFFIX_ALPHABET[b % SUFFIX_ALPHABET.length]).join('')
}
