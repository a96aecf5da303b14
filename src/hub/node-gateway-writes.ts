// Read-modify-write through the Registry for the gateway's controllers. Several writers touch a
// Node (status intake, lifecycle, join), so a write that loses a race reads again and retries
// instead of failing or overwriting.

import type { KindInfo } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import { ApiError } from './api-errors.js'
import type { Registry } from './registry.js'

/** The gateway's own writes: no Warning texts wanted (see WriteContext.warnings). */
export const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const, warnings: false }
const ATTEMPTS = 5

/**
 * Reads the object, lets `mutate` change a copy (returning undefined means "nothing to do"), and
 * writes it. Resolves with the written object, or undefined when nothing was written (no change,
 * or the object is gone).
 */
export async function mutateObject(
  registry: Registry,
  info: KindInfo,
  namespace: string,
  name: string,
  mutate: (current: KubeObject) => KubeObject | undefined,
  subresource?: 'status',
): Promise<KubeObject | undefined> {
  for (let attempt = 1; ; attempt++) {
    let current: KubeObject
    try {
      current = await registry.get(info, namespace, name)
    } catch (err) {
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined
      throw err
    }
    const next = mutate(structuredClone(current))
    if (!next) return undefined
    try {
      const result = await registry.update(info, namespace, name, next, WRITE, subresource)
      return result.changed ? result.object : undefined
    } catch (err) {
      if (attempt < ATTEMPTS && err instanceof ApiError && err.reason === 'Conflict') continue
      if (err instanceof ApiError && err.reason === 'NotFound') return undefined
      throw err
    }
  }
}
