// OpenAPI v3 component schemas for the kinds Bramble serves, built from the field schema
// (k8s-schema) and the strategic-merge table, under the definition names Kubernetes uses
// (`io.k8s.api.core.v1.Pod`), so that kubectl finds the kind and its patch metadata.

import { KINDS, apiVersionOf } from './kinds.js'
import { fieldsOfType, typeOfKind } from './k8s-schema.js'
import { arrayElementType, mapValueType, patchStrategyOf } from './strategic-merge.js'

export type Schema = Record<string, unknown>

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1'
const META_TYPES = new Set(['ObjectMeta', 'LabelSelector', 'LabelSelectorRequirement', 'OwnerReference', 'ManagedFieldsEntry', 'Condition', 'ListMeta', 'Status', 'StatusDetails', 'StatusCause', 'Time', 'MicroTime', 'FieldsV1', 'Patch', 'WatchEvent', 'DeleteOptions', 'Preconditions'])
const APPS_PREFIXES = ['Deployment', 'ReplicaSet', 'DaemonSet', 'StatefulSet', 'RollingUpdateDeployment', 'RollingUpdateDaemonSet', 'RollingUpdateStatefulSetStrategy']
const STORAGE_PREFIXES = ['StorageClass']
const BATCH_PREFIXES = ['Job', 'CronJob', 'PodFailurePolicy', 'SuccessPolicy', 'UncountedTerminatedPods']
/** client-node names whose group is not the one their prefix suggests. */
const EXPLICIT: Record<string, string> = {
  V1Scale: 'io.k8s.api.autoscaling.v1.Scale',
  V1ScaleSpec: 'io.k8s.api.autoscaling.v1.ScaleSpec',
  V1ScaleStatus: 'io.k8s.api.autoscaling.v1.ScaleStatus',
  CoreV1Event: 'io.k8s.api.core.v1.Event',
  CoreV1EventSeries: 'io.k8s.api.core.v1.EventSeries',
  CoreV1EndpointPort: 'io.k8s.api.core.v1.EndpointPort',
  CoreV1ResourceClaim: 'io.k8s.api.core.v1.ResourceClaim',
}

export const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString'
export const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity'

/** The Kubernetes definition name of a client-node model name (`V1PodSpec` → `io.k8s.api.core.v1.PodSpec`). */
export function definitionName(modelName: string): string {
  if (Object.prototype.hasOwnProperty.call(EXPLICIT, modelName)) return EXPLICIT[modelName]
  const base = modelName.replace(/^(CoreV1|V1)/, '')
  if (META_TYPES.has(base)) return `${META}.${base}`
  if (APPS_PREFIXES.some((p) => base.startsWith(p))) return `io.k8s.api.apps.v1.${base}`
  if (BATCH_PREFIXES.some((p) => base.startsWith(p))) return `io.k8s.api.batch.v1.${base}`
  if (STORAGE_PREFIXES.some((p) => base.startsWith(p))) return `io.k8s.api.storage.v1.${base}`
  return `io.k8s.api.core.v1.${base}`
}

/** Fields that hold resource quantities; client-node types them as plain strings. */
const QUANTITY_FIELDS = new Set([
  'V1ResourceRequirements.limits', 'V1ResourceRequirements.requests', 'V1VolumeResourceRequirements.limits', 'V1VolumeResourceRequirements.requests',
  'V1EmptyDirVolumeSource.sizeLimit', 'V1PodSpec.overhead', 'V1NodeStatus.capacity', 'V1NodeStatus.allocatable', 'V1ContainerStatus.allocatedResources',
  'V1ResourceFieldSelector.divisor', 'V1PersistentVolumeSpec.capacity', 'V1PersistentVolumeClaimStatus.capacity',
])

export const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` })

function schemaOfType(type: string, format: string | undefined, quantity: boolean): Schema {
  const element = arrayElementType(type)
  if (element !== undefined) return { type: 'array', items: schemaOfType(element, format, quantity) }
  const value = mapValueType(type)
  if (value !== undefined) return { type: 'object', additionalProperties: schemaOfType(value, format, quantity) }
  if (quantity && type === 'string') return ref(QUANTITY)
  switch (type) {
    case 'string':
      return format ? { type: 'string', format } : { type: 'string' }
    case 'number':
      return format?.startsWith('int') ? { type: 'integer', format } : { type: 'number', format: format ?? 'double' }
    case 'boolean':
      return { type: 'boolean' }
    case 'Date':
      return ref(`${META}.Time`)
    case 'V1MicroTime':
      return ref(`${META}.MicroTime`)
    case 'IntOrString':
      return ref(INT_OR_STRING)
    case 'object':
    case 'any':
      return { type: 'object' }
    default:
      return ref(definitionName(type))
  }
}

function gvkOf(modelName: string): { group: string; version: string; kind: string }[] | undefined {
  const info = KINDS.find((k) => typeOfKind(apiVersionOf(k), k.kind) === modelName)
  return info ? [{ group: info.group, kind: info.kind, version: info.version }] : undefined
}

/** The schema of one client-node model, with patch and GVK extensions. */
function modelSchema(modelName: string): Schema {
  const properties: Record<string, Schema> = {}
  for (const [field, { type, format }] of Object.entries(fieldsOfType(modelName) ?? {})) {
    const schema = schemaOfType(type, format === 'int-or-string' || format === 'date-time' ? undefined : format, QUANTITY_FIELDS.has(`${modelName}.${field}`))
    const strategy = patchStrategyOf(modelName, field)
    if (strategy) {
      schema['x-kubernetes-patch-strategy'] = strategy.strategy
      if (strategy.mergeKey) schema['x-kubernetes-patch-merge-key'] = strategy.mergeKey
      if (strategy.listType) schema['x-kubernetes-list-type'] = strategy.listType
      if (strategy.listMapKeys) schema['x-kubernetes-list-map-keys'] = strategy.listMapKeys
    }
    properties[field] = schema
  }
  const schema: Schema = { type: 'object', properties }
  const gvk = gvkOf(modelName)
  if (gvk) schema['x-kubernetes-group-version-kind'] = gvk
  return schema
}

const envelope = { apiVersion: { type: 'string' }, kind: { type: 'string' } }

/** Schemas client-node's models do not give: primitives with formats, Scale, Status, lists, events. */
function fixedSchemas(): Record<string, Schema> {
  const schemas: Record<string, Schema> = {
    [INT_OR_STRING]: { type: 'string', format: 'int-or-string' },
    [QUANTITY]: { type: 'string' },
    [`${META}.Time`]: { type: 'string', format: 'date-time' },
    [`${META}.MicroTime`]: { type: 'string', format: 'date-time' },
    [`${META}.FieldsV1`]: { type: 'object' },
    [`${META}.Patch`]: { type: 'object' },
    [`${META}.ListMeta`]: { type: 'object', properties: { continue: { type: 'string' }, remainingItemCount: { type: 'integer', format: 'int64' }, resourceVersion: { type: 'string' }, selfLink: { type: 'string' } } },
    [`${META}.StatusCause`]: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' }, reason: { type: 'string' } } },
    [`${META}.StatusDetails`]: {
      type: 'object',
      properties: { causes: { type: 'array', items: ref(`${META}.StatusCause`) }, group: { type: 'string' }, kind: { type: 'string' }, name: { type: 'string' }, retryAfterSeconds: { type: 'integer', format: 'int32' }, uid: { type: 'string' } },
    },
    [`${META}.Status`]: {
      type: 'object',
      properties: { ...envelope, code: { type: 'integer', format: 'int32' }, details: ref(`${META}.StatusDetails`), message: { type: 'string' }, metadata: ref(`${META}.ListMeta`), reason: { type: 'string' }, status: { type: 'string' } },
      'x-kubernetes-group-version-kind': [{ group: '', kind: 'Status', version: 'v1' }],
    },
    [`${META}.Preconditions`]: { type: 'object', properties: { resourceVersion: { type: 'string' }, uid: { type: 'string' } } },
    [`${META}.DeleteOptions`]: {
      type: 'object',
      properties: {
        ...envelope,
        dryRun: { type: 'array', items: { type: 'string' } },
        gracePeriodSeconds: { type: 'integer', format: 'int64' },
        orphanDependents: { type: 'boolean' },
        preconditions: ref(`${META}.Preconditions`),
        propagationPolicy: { type: 'string' },
      },
    },
    [`${META}.WatchEvent`]: { type: 'object', required: ['type', 'object'], properties: { object: { type: 'object' }, type: { type: 'string' } } },
    'io.k8s.api.autoscaling.v1.ScaleSpec': { type: 'object', properties: { replicas: { type: 'integer', format: 'int32' } } },
    'io.k8s.api.autoscaling.v1.ScaleStatus': { type: 'object', required: ['replicas'], properties: { replicas: { type: 'integer', format: 'int32' }, selector: { type: 'string' } } },
    'io.k8s.api.autoscaling.v1.Scale': {
      type: 'object',
      properties: { ...envelope, metadata: ref(`${META}.ObjectMeta`), spec: ref('io.k8s.api.autoscaling.v1.ScaleSpec'), status: ref('io.k8s.api.autoscaling.v1.ScaleStatus') },
      'x-kubernetes-group-version-kind': [{ group: 'autoscaling', kind: 'Scale', version: 'v1' }],
    },
  }
  for (const k of KINDS) {
    const item = definitionName(typeOfKind(apiVersionOf(k), k.kind) ?? k.kind)
    schemas[`${item}List`] = {
      type: 'object',
      required: ['items'],
      properties: { ...envelope, items: { type: 'array', items: ref(item) }, metadata: ref(`${META}.ListMeta`) },
      'x-kubernetes-group-version-kind': [{ group: k.group, kind: `${k.kind}List`, version: k.version }],
    }
  }
  return schemas
}

let all: Record<string, Schema> | undefined

/** Every schema Bramble knows, by Kubernetes definition name. Built once. */
export function allSchemas(): Record<string, Schema> {
  if (all) return all
  const schemas: Record<string, Schema> = {}
  const pending = KINDS.map((k) => typeOfKind(apiVersionOf(k), k.kind)).filter((n): n is string => n !== undefined)
  const seen = new Set<string>()
  while (pending.length > 0) {
    const model = pending.pop()!
    if (seen.has(model) || !fieldsOfType(model)) continue
    seen.add(model)
    schemas[definitionName(model)] = modelSchema(model)
    for (const { type } of Object.values(fieldsOfType(model)!)) {
      const inner = mapValueType(arrayElementType(type) ?? type) ?? arrayElementType(type) ?? type
      if (fieldsOfType(inner)) pending.push(inner)
    }
  }
  all = { ...schemas, ...fixedSchemas() }
  return all
}

/** The schemas `roots` reach through `$ref`s, roots included. */
export function reachableSchemas(roots: string[]): Record<string, Schema> {
  const schemas = allSchemas()
  const out: Record<string, Schema> = {}
  const pending = [...roots]
  while (pending.length > 0) {
    const name = pending.pop()!
    if (out[name] || !schemas[name]) continue
    out[name] = schemas[name]
    JSON.stringify(schemas[name], (key, value) => {
      if (key === '$ref' && typeof value === 'string') pending.push(value.slice('#/components/schemas/'.length))
      return value
    })
  }
  return Object.fromEntries(Object.keys(out).sort().map((k) => [k, out[k]]))
}
