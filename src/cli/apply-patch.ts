// The client side of `apply`, as kubectl does it: the manifest is remembered in the
// last-applied-configuration annotation, and a re-apply sends only what differs between the
// last-applied manifest, the new one and the live object: new or changed fields set, fields the
// old manifest had and the new one dropped deleted (null). Sent as a JSON merge patch, in which a
// list is replaced whole: that is right for apply, since a manifest's lists are complete.

import type { KubeObject } from '../api/types.js'
import { deepEqual } from '../api/strategic-merge.js'

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration'

type JsonMap = Record<string, unknown>
const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v)

/** The manifest as applied: its annotation records the manifest itself (without that annotation). */
export function withLastApplied(manifest: KubeObject): KubeObject {
  const bare = withoutLastApplied(manifest)
  const annotations = { ...(bare.metadata.annotations ?? {}), [LAST_APPLIED]: canonicalJson(bare) + '\n' }
  return { ...bare, metadata: { ...bare.metadata, annotations } }
}

/** The manifest without the last-applied annotation (and without an annotations map left empty by that). */
export function withoutLastApplied(manifest: KubeObject): KubeObject {
  const annotations = manifest.metadata?.annotations
  if (!annotations || !(LAST_APPLIED in annotations)) return manifest
  const { [LAST_APPLIED]: _dropped, ...rest } = annotations
  const metadata = { ...manifest.metadata }
  if (Object.keys(rest).length > 0) metadata.annotations = rest
  else delete metadata.annotations
  return { ...manifest, metadata }
}

/** The manifest recorded on a live object, or undefined when it has none (or an unreadable one). */
export function lastAppliedOf(live: KubeObject): KubeObject | undefined {
  const text = live.metadata?.annotations?.[LAST_APPLIED]
  if (typeof text !== 'string') return undefined
  try {
    const parsed = JSON.parse(text)
    return isMap(parsed) ? (parsed as KubeObject) : undefined
  } catch {
    return undefined
  }
}

/**
 * The merge patch that brings `live` to the new `manifest`, given the manifest applied last time
 * (undefined when the object was never applied). The result carries the updated annotation;
 * an empty object means nothing to send.
 */
export function applyPatch(lastApplied: KubeObject | undefined, manifest: KubeObject, live: KubeObject): JsonMap {
  return threeWay(lastApplied as JsonMap | undefined, withLastApplied(manifest) as JsonMap, live as JsonMap)
}

function threeWay(last: JsonMap | undefined, desired: JsonMap, live: JsonMap | undefined): JsonMap {
  const patch: JsonMap = {}
  for (const [key, want] of Object.entries(desired)) {
    const have = live?.[key]
    const before = last?.[key]
    if (isMap(want)) {
      if (!isMap(have)) patch[key] = want
      else {
        const sub = threeWay(isMap(before) ? before : undefined, want, have)
        if (Object.keys(sub).length > 0) patch[key] = sub
      }
    } else if (Array.isArray(want)) {
      // Live lists carry defaults the server filled in (a port's protocol), so "already there"
      // means each item holds at least what the manifest says; a changed manifest list is sent
      // whole so that fields dropped from its items go too.
      if (!covers(have, want) || (last !== undefined && !deepEqual(before, want))) patch[key] = want
    } else if (want === null) {
      // `creationTimestamp: null` and the like: asks for nothing that is not already absent.
      if (have !== undefined && have !== null && before !== undefined && before !== null) patch[key] = null
    } else if (!deepEqual(have, want)) {
      patch[key] = want
    }
  }
  if (last) {
    for (const key of Object.keys(last)) {
      if (!(key in desired) && live !== undefined && live[key] !== undefined) patch[key] = null
    }
  }
  return patch
}

/** Whether `have` already holds everything `want` says: maps by subset, lists item by item. */
export function covers(have: unknown, want: unknown): boolean {
  if (isMap(want)) return isMap(have) && Object.entries(want).every(([k, v]) => covers(have[k], v))
  if (Array.isArray(want)) return Array.isArray(have) && have.length === want.length && want.every((v, i) => covers(have[i], v))
  if (want === null) return have === undefined || have === null
  return deepEqual(have, want)
}


/** JSON with map keys sorted, as Go's encoder writes kubectl's annotation, so both tools agree on it. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value))
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys)
  if (isMap(value)) return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys(value[k])]))
  return value
}
