// Kubernetes-shaped object types shared by hub, agent and client. Only the envelope is typed
// tightly; spec and status stay open because the hub keeps fields it does not act on.

export interface OwnerReference {
  apiVersion: string
  kind: string
  name: string
  uid: string
  controller?: boolean
  blockOwnerDeletion?: boolean
}

export interface ObjectMeta {
  name?: string
  generateName?: string
  namespace?: string
  uid?: string
  resourceVersion?: string
  generation?: number
  creationTimestamp?: string
  deletionTimestamp?: string
  labels?: Record<string, string>
  annotations?: Record<string, string>
  ownerReferences?: OwnerReference[]
  finalizers?: string[]
  [field: string]: unknown
}

export interface KubeObject {
  apiVersion: string
  kind: string
  metadata: ObjectMeta
  spec?: any
  status?: any
  [field: string]: unknown
}

export interface ListMeta {
  resourceVersion?: string
  continue?: string
}

export interface KubeList<T extends KubeObject = KubeObject> {
  apiVersion: string
  kind: string
  metadata: ListMeta
  items: T[]
}

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR'

export interface WatchEvent<T = KubeObject> {
  type: WatchEventType
  object: T
}

/** One bad field, reported the way Kubernetes' field.Error does. */
export interface FieldError {
  /** Path to the field, e.g. `spec.containers[0].resources.requests.cpu`. */
  field: string
  /** Kubernetes cause type: FieldValueRequired, FieldValueInvalid, FieldValueNotSupported, FieldValueDuplicate, FieldValueTooLong, FieldValueForbidden, FieldValueTypeInvalid. */
  type: FieldErrorType
  message: string
  value?: unknown
}

export type FieldErrorType =
  | 'FieldValueRequired'
  | 'FieldValueInvalid'
  | 'FieldValueNotSupported'
  | 'FieldValueDuplicate'
  | 'FieldValueTooLong'
  | 'FieldValueForbidden'
  | 'FieldValueTypeInvalid'

/** A Kubernetes `Status` object, as returned for errors. */
export interface Status {
  kind: 'Status'
  apiVersion: 'v1'
  metadata: Record<string, never>
  status: 'Success' | 'Failure'
  message: string
  reason: string
  details?: {
    name?: string
    group?: string
    kind?: string
    causes?: { reason: string; message: string; field: string }[]
    retryAfterSeconds?: number
  }
  code: number
}
