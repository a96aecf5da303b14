// The pods/binding subresource: `POST .../pods/NAME/binding` with a v1 Binding assigns a pending
// pod to a node, as Kubernetes' scheduler does it. One narrow write: spec.nodeName, the
// PodScheduled=True condition and the Binding's annotations, nothing else; the rest of the pod
// was validated when it was written, so only what the Binding brings is checked here.
//
// As in Kubernetes: a pod already assigned, or being deleted, is a 409 Conflict; the target node
// need not exist yet (the scheduler decides, the API only records); the answer is a 201 Status.

import type { FieldError, KubeObject } from '../api/types.js'
import { isDNS1123Subdomain } from '../api/names.js'
import { ApiError, badRequest, invalid } from './api-errors.js'

export interface BindingRequest {
  /** The node the pod goes to. */
  node: string
  /** Precondition: the pod's uid (metadata.uid of the Binding). */
  uid?: string
  /** Copied onto the pod. */
  annotations?: Record<string, string>
}

/** Checks a Binding body against the pod the URL names; every bad field is named in the 422. */
export function parseBinding(body: unknown, namespace: string, name: string): BindingRequest {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw badRequest('the request body must be a Binding object')
  const b = body as { apiVersion?: unknown; kind?: unknown; metadata?: any; target?: any }
  if (b.kind !== 'Binding' || b.apiVersion !== 'v1') {
    throw badRequest(`the request body must be a Binding of apiVersion v1, not ${String(b.kind ?? '(no kind)')} ${String(b.apiVersion ?? '(no apiVersion)')}`)
  }
  const meta = b.metadata ?? {}
  if (typeof meta !== 'object' || Array.isArray(meta)) throw badRequest('metadata: must be an object')
  if (meta.name !== name) throw badRequest(`metadata.name: the Binding names pod "${String(meta.name ?? '')}", the URL names pod "${name}"; they must match`)
  if (meta.namespace !== undefined && meta.namespace !== '' && meta.namespace !== namespace) {
    throw badRequest(`metadata.namespace: the Binding is for namespace "${String(meta.namespace)}", the URL for namespace "${namespace}"; they must match`)
  }
  const errors: FieldError[] = []
  if (meta.uid !== undefined && meta.uid !== null && typeof meta.uid !== 'string') errors.push({ field: 'metadata.uid', type: 'FieldValueTypeInvalid', message: 'must be a string', value: meta.uid })
  const annotations = meta.annotations ?? {}
  if (typeof annotations !== 'object' || Array.isArray(annotations)) errors.push({ field: 'metadata.annotations', type: 'FieldValueTypeInvalid', message: 'must be a map of strings', value: annotations })
  else {
    for (const [key, value] of Object.entries(annotations)) {
      if (key === '' || typeof value !== 'string') errors.push({ field: `metadata.annotations[${key}]`, type: 'FieldValueTypeInvalid', message: 'must be a string under a non-empty key', value })
    }
  }
  const target = b.target
  if (typeof target !== 'object' || target === null || Array.isArray(target)) {
    errors.push({ field: 'target', type: 'FieldValueRequired', message: 'Required value: the node to bind to' })
  } else {
    if (target.kind !== undefined && target.kind !== '' && target.kind !== 'Node') {
      errors.push({ field: 'target.kind', type: 'FieldValueNotSupported', message: 'must be empty or "Node"', value: target.kind })
    }
    if (target.name === undefined || target.name === '') errors.push({ field: 'target.name', type: 'FieldValueRequired', message: 'Required value: the node to bind to' })
    else if (typeof target.name !== 'string') errors.push({ field: 'target.name', type: 'FieldValueTypeInvalid', message: 'must be a string', value: target.name })
    else for (const problem of isDNS1123Subdomain(target.name)) errors.push({ field: 'target.name', type: 'FieldValueInvalid', message: problem, value: target.name })
  }
  if (errors.length > 0) throw invalid('', 'Binding', name, errors)
  return {
    node: target.name,
    ...(typeof meta.uid === 'string' && meta.uid !== '' ? { uid: meta.uid } : {}),
    ...(Object.keys(annotations).length > 0 ? { annotations: { ...annotations } } : {}),
  }
}

/**
 * The pod as the binding leaves it (a new object; `pod` is not changed), or a 409 when it cannot
 * be bound: already on a node, being deleted, or not the pod the Binding's uid names.
 */
export function boundPod(pod: KubeObject, request: BindingRequest, nowIso: string): KubeObject {
  const key = `${pod.metadata.namespace}/${pod.metadata.name}`
  const refuse = (message: string) => new ApiError(409, 'Conflict', message, { name: pod.metadata.name, kind: 'pods' })
  if (request.uid !== undefined && request.uid !== pod.metadata.uid) {
    throw refuse(`Precondition failed: UID in precondition: ${request.uid}, UID in object meta: ${pod.metadata.uid ?? ''}`)
  }
  if (pod.metadata.deletionTimestamp) throw refuse(`pod ${key} is being deleted, cannot be assigned to a host`)
  if (pod.spec?.nodeName) throw refuse(`pod ${key} is already assigned to node "${pod.spec.nodeName}"`)
  const conditions = setCondition(pod.status?.conditions, { type: 'PodScheduled', status: 'True', lastTransitionTime: nowIso })
  return {
    ...pod,
    metadata: { ...pod.metadata, ...(request.annotations ? { annotations: { ...pod.metadata.annotations, ...request.annotations } } : {}) },
    spec: { ...pod.spec, nodeName: request.node },
    status: { ...pod.status, conditions },
  }
}

/** Sets one condition, keeping its lastTransitionTime when its status did not change. */
export function setCondition(conditions: any[] | undefined, next: { type: string; status: string; reason?: string; message?: string; lastTransitionTime: string }): any[] {
  const list = [...(conditions ?? [])]
  const i = list.findIndex((c) => c.type === next.type)
  if (i < 0) return [...list, next]
  const same = list[i].status === next.status
  list[i] = { ...next, lastTransitionTime: same ? list[i].lastTransitionTime : next.lastTransitionTime }
  return list
}
