// validateUpdate: the fields Kubernetes does not let an update change.

import type { FieldError, KubeObject } from './types.js'
import { forbidden, invalid, isRecord } from './validate-errors.js'

const IMMUTABLE = 'field is immutable'

/** Structural equality, blind to key order; undefined and absent are the same. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false
    return a.every((v, i) => deepEqual(v, b[i]))
  }
  if (isRecord(a) && isRecord(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)])
    for (const k of keys) if (!deepEqual(a[k], b[k])) return false
    return true
  }
  return false
}

const rec = (v: unknown): Record<string, unknown> => (isRecord(v) ? v : {})

export function validateUpdate(oldObj: KubeObject, newObj: KubeObject): FieldError[] {
  try {
    return updateErrors(oldObj, newObj)
  } catch (err) {
    return [invalid('', '<object>', `could not be validated: ${err instanceof Error ? err.message : String(err)}`)]
  }
}

function updateErrors(oldObj: KubeObject, newObj: KubeObject): FieldError[] {
  const errs: FieldError[] = []
  const om = rec(oldObj?.metadata)
  const nm = rec(newObj?.metadata)
  for (const f of ['name', 'namespace', 'uid'] as const) {
    const was = om[f] ?? ''
    const now = nm[f] ?? ''
    // An update may leave uid out (it is filled from the stored object); it may not change it.
    if (f === 'uid' && now === '') continue
    if (was !== now) errs.push(invalid(`metadata.${f}`, now, IMMUTABLE))
  }
  const kind = newObj?.kind
  const os = rec(oldObj?.spec)
  const ns = rec(newObj?.spec)
  switch (kind) {
    case 'Deployment':
    case 'ReplicaSet':
    case 'DaemonSet':
      if (!deepEqual(os.selector, ns.selector)) errs.push(invalid('spec.selector', ns.selector ?? null, IMMUTABLE))
      break
    case 'Job':
      if (os.selector !== undefined && !deepEqual(os.selector, ns.selector)) errs.push(invalid('spec.selector', ns.selector ?? null, IMMUTABLE))
      if (!deepEqual(os.template, ns.template)) errs.push(invalid('spec.template', '<template>', IMMUTABLE))
      if (os.completions !== undefined && !deepEqual(os.completions, ns.completions)) errs.push(invalid('spec.completions', ns.completions ?? null, IMMUTABLE))
      if (os.completionMode !== undefined && !deepEqual(os.completionMode, ns.completionMode)) errs.push(invalid('spec.completionMode', ns.completionMode ?? null, IMMUTABLE))
      break
    case 'Service': {
      const was = typeof os.clusterIP === 'string' ? os.clusterIP : ''
      // Once set, the cluster IP stays; a new object leaving it out keeps the old one (the API fills it).
      if (was !== '' && ns.clusterIP !== undefined && ns.clusterIP !== was && newObj.spec?.type !== 'ExternalName')
        errs.push(invalid('spec.clusterIP', ns.clusterIP, IMMUTABLE))
      break
    }
    case 'ConfigMap':
    case 'Secret': {
      const o = oldObj as Record<string, unknown>
      const n = newObj as Record<string, unknown>
      if (o.immutable === true) {
        if (n.immutable !== true) errs.push(forbidden('immutable', 'field is immutable when `immutable` is set'))
        if (!deepEqual(o.data, n.data)) errs.push(forbidden('data', 'field is immutable when `immutable` is set'))
        if (kind === 'ConfigMap' && !deepEqual(o.binaryData, n.binaryData)) errs.push(forbidden('binaryData', 'field is immutable when `immutable` is set'))
        if (kind === 'Secret' && n.stringData !== undefined) errs.push(forbidden('stringData', 'field is immutable when `immutable` is set'))
      }
      if (kind === 'Secret' && (o.type ?? 'Opaque') !== (n.type ?? 'Opaque')) errs.push(invalid('type', n.type ?? '', IMMUTABLE))
      break
    }
    case 'Pod':
      errs.push(...podSpecUpdateErrors(os, ns))
      break
    case 'Node':
      // A pod subnet is a lease: once assigned it stays until the Node goes (its pods hold its addresses).
      for (const f of ['podCIDR', 'podCIDRs'] as const) {
        const was = os[f]
        if (was !== undefined && was !== '' && !(Array.isArray(was) && was.length === 0) && !deepEqual(was, ns[f])) {
          errs.push(forbidden(`spec.${f}`, 'node updates may not change podCIDR except from "" to valid'))
        }
      }
      break
  }
  return errs
}

const POD_UPDATE_RULE =
  'pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)'

function podSpecUpdateErrors(os: Record<string, unknown>, ns: Record<string, unknown>): FieldError[] {
  const errs: FieldError[] = []
  const was = structuredClone(os)
  const now = structuredClone(ns)
  // Images may change: compare everything else.
  for (const list of ['containers', 'initContainers'] as const) {
    const o = Array.isArray(was[list]) ? (was[list] as unknown[]) : []
    const n = Array.isArray(now[list]) ? (now[list] as unknown[]) : []
    if (o.length === n.length) n.forEach((c, i) => isRecord(c) && isRecord(o[i]) && (c.image = (o[i] as Record<string, unknown>).image))
  }
  // activeDeadlineSeconds may be set, or lowered; never removed or raised.
  const oldDeadline = was.activeDeadlineSeconds
  const newDeadline = now.activeDeadlineSeconds
  if (!deepEqual(oldDeadline, newDeadline)) {
    if (typeof oldDeadline === 'number' && (typeof newDeadline !== 'number' || newDeadline > oldDeadline))
      errs.push(invalid('spec.activeDeadlineSeconds', newDeadline ?? null, 'must be less than or equal to previous value'))
    now.activeDeadlineSeconds = oldDeadline
  }
  // Tolerations may only be added.
  const oldTol = Array.isArray(was.tolerations) ? was.tolerations : []
  const newTol = Array.isArray(now.tolerations) ? now.tolerations : []
  if (!oldTol.every((t) => newTol.some((u) => deepEqual(t, u)))) errs.push(forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds'))
  now.tolerations = was.tolerations
  // Binding: Bramble's scheduler sets nodeName once on a pod that has none.
  if ((was.nodeName === undefined || was.nodeName === '') && typeof now.nodeName === 'string') now.nodeName = was.nodeName
  if (!deepEqual(was, now)) {
    const changed = Object.keys({ ...was, ...now }).filter((k) => !deepEqual(was[k], now[k]))
    errs.push(forbidden('spec', `${POD_UPDATE_RULE}; changed: ${changed.map((k) => `spec.${k}`).join(', ')}`))
  }
  return errs
}
