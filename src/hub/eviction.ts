// The pods/eviction subresource: `POST .../pods/NAME/eviction` with a policy/v1 (or v1beta1)
// Eviction, as `kubectl drain` and `bramble drain` send it. An accepted eviction deletes the pod
// and answers a 201 Status, as Kubernetes does.
//
// Kubernetes refuses an eviction (429) that would break a PodDisruptionBudget. Bramble has no
// PodDisruptionBudgets, so every eviction of an existing pod is allowed.
//
// Bramble deletes at once (there is no Terminating phase in the store); the node then stops the
// pod's containers within the pod's terminationGracePeriodSeconds, or within the eviction's
// deleteOptions.gracePeriodSeconds when it names one (Registry.delete carries it to the node).

import { KINDS } from '../api/kinds.js'
import type { FieldError } from '../api/types.js'
import { badRequest, invalid } from './api-errors.js'
import type { Registry } from './registry.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
export const EVICTION_API_VERSIONS = ['policy/v1', 'policy/v1beta1']

export interface EvictionRequest {
  gracePeriodSeconds?: number
  dryRun: boolean
  uid?: string
  resourceVersion?: string
}

/** Checks an Eviction body against the pod the URL names; bad fields are named in the error. */
export function parseEviction(body: unknown, namespace: string, name: string): EvictionRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be an Eviction object')
  const e = body as { apiVersion?: unknown; kind?: unknown; metadata?: any; deleteOptions?: any }
  if (e.kind !== 'Eviction' || !EVICTION_API_VERSIONS.includes(e.apiVersion as string)) {
    throw badRequest(`the request body must be an Eviction of apiVersion ${EVICTION_API_VERSIONS.join(' or ')}, not ${String(e.kind ?? '(no kind)')} ${String(e.apiVersion ?? '(no apiVersion)')}`)
  }
  const meta = e.metadata ?? {}
  if (typeof meta !== 'object' || Array.isArray(meta)) throw badRequest('metadata: must be an object')
  if (meta.name !== name) throw badRequest(`metadata.name: the Eviction names pod "${String(meta.name ?? '')}", the URL names pod "${name}"; they must match`)
  if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
    throw badRequest(`metadata.namespace: the Eviction is for namespace "${String(meta.namespace)}", the URL for namespace "${namespace}"; they must match`)
  }
  const opts = e.deleteOptions ?? {}
  if (typeof opts !== 'object' || Array.isArray(opts)) throw badRequest('deleteOptions: must be an object')
  const errors: FieldError[] = []
  const grace = opts.gracePeriodSeconds
  if (grace !== undefined && grace !== null && (typeof grace !== 'number' || !Number.isInteger(grace) || grace < 0)) {
    errors.push({ field: 'deleteOptions.gracePeriodSeconds', type: 'FieldValueInvalid', message: 'must be a whole number of seconds, zero or more', value: grace })
  }
  const dryRun = opts.dryRun ?? []
  if (!Array.isArray(dryRun) || dryRun.some((v: unknown) => v !== 'All')) {
    errors.push({ field: 'deleteOptions.dryRun', type: 'FieldValueNotSupported', message: 'supported values: "All"', value: dryRun })
  }
  const pre = opts.preconditions ?? {}
  for (const key of ['uid', 'resourceVersion'] as const) {
    if (pre[key] !== undefined && pre[key] !== null && typeof pre[key] !== 'string') {
      errors.push({ field: `deleteOptions.preconditions.${key}`, type: 'FieldValueTypeInvalid', message: 'must be a string', value: pre[key] })
    }
  }
  if (errors.length > 0) throw invalid('policy', 'Eviction', name, errors)
  return {
    gracePeriodSeconds: typeof grace === 'number' ? grace : undefined,
    dryRun: Array.isArray(dryRun) && dryRun.length > 0,
    uid: pre.uid || undefined,
    resourceVersion: pre.resourceVersion || undefined,
  }
}

/** Evicts (deletes) the pod; a missing pod is a 404, a failed precondition a 409. */
export async function evictPod(registry: Registry, namespace: string, name: string, request: EvictionRequest, dryRunQuery: boolean): Promise<SuccessStatus> {
  const { uid, resourceVersion, gracePeriodSeconds } = request
  await registry.delete(POD, namespace, name, { dryRun: dryRunQuery || request.dryRun, uid, resourceVersion, gracePeriodSeconds })
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 }
}

export interface SuccessStatus {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Success'
  code: number
}
