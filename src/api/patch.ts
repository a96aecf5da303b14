// PATCH bodies of the three kinds Kubernetes accepts, applied to a stored object.

import fastJsonPatch from 'fast-json-patch'
import type { Operation } from 'fast-json-patch'
import { parseJsonText } from './json-text.js'
import { PatchError } from './patch-errors.js'
import { strategicMergePatch } from './strategic-merge.js'
import type { KubeObject } from './types.js'

export const MERGE_PATCH = 'application/merge-patch+json'
export const JSON_PATCH = 'application/json-patch+json'
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json'

export const PATCH_CONTENT_TYPES: readonly string[] = [JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH]

type JsonMap = Record<string, unknown>

const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v)

/**
 * Applies `patch` to `original` as its content type says (parameters such as `; charset=utf-8`
 * are ignored) and returns the patched object; `original` is not modified.
 * Throws PatchError.
 */
export function applyPatch(original: KubeObject, patch: Buffer | string, contentType: string): KubeObject {
  const type = contentType.split(';')[0].trim().toLowerCase()
  if (!PATCH_CONTENT_TYPES.includes(type)) {
    throw new PatchError(
      'BRAMBLE_PATCH_UNSUPPORTED_TYPE',
      `the body of the request was in an unknown format - accepted media types include: ${PATCH_CONTENT_TYPES.join(', ')}; got "${contentType}"`,
    )
  }
  const body = parseJson(typeof patch === 'string' ? patch : patch.toString('utf8'))
  const base = structuredClone(original) as JsonMap
  let result: unknown
  if (type === JSON_PATCH) result = applyJsonPatch(base, body)
  else if (!isMap(body)) {
    throw new PatchError('BRAMBLE_PATCH_MALFORMED', `a ${type} body must be a JSON object, got ${describe(body)}`)
  } else if (type === MERGE_PATCH) result = mergePatch(base, body)
  else result = strategicMergePatch(base, body, original.apiVersion, original.kind)
  if (!isMap(result)) {
    throw new PatchError('BRAMBLE_PATCH_MALFORMED', `the patched object must be a JSON object, got ${describe(result)}`)
  }
  return structuredClone(result) as KubeObject
}

/** RFC 7386 JSON merge patch. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isMap(patch)) return patch
  const result: JsonMap = isMap(target) ? { ...target } : {}
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key]
    else result[key] = mergePatch(result[key], value)
  }
  return result
}

function applyJsonPatch(target: JsonMap, ops: unknown): unknown {
  if (!Array.isArray(ops)) {
    throw new PatchError('BRAMBLE_PATCH_MALFORMED', `a JSON patch must be a list of operations, got ${describe(ops)}`)
  }
  try {
    return fastJsonPatch.applyPatch(target, ops as Operation[], true, true, true).newDocument
  } catch (err) {
    const e = err as { name?: string; message?: string; index?: number; operation?: unknown }
    const where = e.index !== undefined ? `operation ${e.index} (${JSON.stringify(e.operation)})` : 'an operation'
    if (e.name === 'TEST_OPERATION_FAILED') {
      throw new PatchError('BRAMBLE_PATCH_TEST_FAILED', `JSON patch test failed at ${where}: the value differs`, { cause: err })
    }
    const invalidShape = ['SEQUENCE_NOT_AN_ARRAY', 'OPERATION_NOT_AN_OBJECT', 'OPERATION_OP_INVALID', 'OPERATION_PATH_INVALID', 'OPERATION_FROM_REQUIRED', 'OPERATION_VALUE_REQUIRED', 'OPERATION_VALUE_CANNOT_CONTAIN_UNDEFINED']
    const code = e.name !== undefined && invalidShape.includes(e.name) ? 'BRAMBLE_PATCH_MALFORMED' : 'BRAMBLE_PATCH_CONFLICT'
    const reason = (e.message ?? String(err)).split('\n')[0]
    throw new PatchError(code, `JSON patch could not be applied at ${where}: ${reason}`, { cause: err })
  }
}

function parseJson(text: string): unknown {
  try {
    return parseJsonText(text)
  } catch (err) {
    throw new PatchError('BRAMBLE_PATCH_MALFORMED', `the patch is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  return `a ${typeof value}`
}
