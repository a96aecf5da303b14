// Kubernetes strategic merge patch, as the API server applies what `kubectl apply` sends.
//
// Maps merge recursively and `null` deletes a key. How a list merges depends on the Go struct tags
// of its field (`patchStrategy`, `patchMergeKey`): the table below copies them from k8s.io/api,
// keyed by the client-node type name that holds the field, so the same rule holds wherever the
// type appears (a PodSpec at `spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`).
// Lists without a tag are replaced wholesale.

import { fieldsOfType, typeOfKind } from './k8s-schema.js'
import { PatchError } from './patch-errors.js'

export type PatchStrategyName = 'merge' | 'retainKeys' | 'merge,retainKeys'

export interface FieldPatchStrategy {
  strategy: PatchStrategyName
  /** The field that identifies an item of a list of objects (`name` for containers). */
  mergeKey?: string
  /** `x-kubernetes-list-type`, where Kubernetes declares one alongside the patch tags. */
  listType?: 'map' | 'set'
  /** `x-kubernetes-list-map-keys`, for listType map. */
  listMapKeys?: string[]
}

const byKey = (mergeKey: string, listMapKeys: string[] = [mergeKey]): FieldPatchStrategy => ({
  strategy: 'merge',
  mergeKey,
  listType: 'map',
  listMapKeys,
})

const CONTAINER_LISTS: Record<string, FieldPatchStrategy> = {
  ports: byKey('containerPort', ['containerPort', 'protocol']),
  env: byKey('name'),
  volumeMounts: byKey('mountPath'),
  volumeDevices: byKey('devicePath'),
}

const conditions = { conditions: byKey('type') }

/** Type name → field → its patch strategy, from the `patchStrategy`/`patchMergeKey` tags of k8s.io/api. */
const PATCH_STRATEGIES: Record<string, Record<string, FieldPatchStrategy>> = {
  V1ObjectMeta: {
    ownerReferences: byKey('uid'),
    finalizers: { strategy: 'merge', listType: 'set' },
  },
  V1PodSpec: {
    volumes: { ...byKey('name'), strategy: 'merge,retainKeys' },
    initContainers: byKey('name'),
    containers: byKey('name'),
    ephemeralContainers: byKey('name'),
    imagePullSecrets: byKey('name'),
    hostAliases: byKey('ip'),
    topologySpreadConstraints: byKey('topologyKey', ['topologyKey', 'whenUnsatisfiable']),
    resourceClaims: { ...byKey('name'), strategy: 'merge,retainKeys' },
    schedulingGates: byKey('name'),
  },
  V1Container: CONTAINER_LISTS,
  V1EphemeralContainer: CONTAINER_LISTS,
  V1PodStatus: { ...conditions, podIPs: byKey('ip'), hostIPs: byKey('ip') },
  V1ServiceSpec: { ports: byKey('port', ['port', 'protocol']) },
  V1ServiceStatus: conditions,
  V1NodeSpec: { podCIDRs: { strategy: 'merge', listType: 'set' } },
  V1NodeStatus: { ...conditions, addresses: byKey('type') },
  V1NamespaceStatus: conditions,
  V1DeploymentSpec: { strategy: { strategy: 'retainKeys' } },
  V1DeploymentStatus: conditions,
  V1ReplicaSetStatus: conditions,
  V1DaemonSetStatus: conditions,
  V1JobStatus: conditions,
}

/** The patch strategy of `field` in the type `typeName`, or undefined when lists of it are replaced. */
export function patchStrategyOf(typeName: string, field: string): FieldPatchStrategy | undefined {
  const fields = Object.prototype.hasOwnProperty.call(PATCH_STRATEGIES, typeName) ? PATCH_STRATEGIES[typeName] : undefined
  return fields && Object.prototype.hasOwnProperty.call(fields, field) ? fields[field] : undefined
}

/** Every type name with at least one tagged field (for tests and the OpenAPI generator). */
export function typesWithPatchStrategies(): string[] {
  return Object.keys(PATCH_STRATEGIES)
}

type JsonMap = Record<string, unknown>

const isMap = (v: unknown): v is JsonMap => typeof v === 'object' && v !== null && !Array.isArray(v)

/** Element type of `Array<X>`, or undefined. */
export function arrayElementType(type: string | undefined): string | undefined {
  const m = type === undefined ? null : /^Array<(.+)>$/.exec(type)
  return m ? m[1] : undefined
}

/** Value type of `{ [key: string]: X; }`, or undefined. */
export function mapValueType(type: string | undefined): string | undefined {
  const m = type === undefined ? null : /^\{ \[key: string\]: (.+); \}$/.exec(type)
  return m ? m[1] : undefined
}

const DELETE_FROM = '$deleteFromPrimitiveList/'
const SET_ORDER = '$setElementOrder/'

/**
 * Applies a strategic merge patch to `original` (an object of the kind `apiVersion`/`kind`) and
 * returns the result; `original` is left untouched. Unknown kinds merge maps and replace lists.
 */
export function strategicMergePatch(original: JsonMap, patch: JsonMap, apiVersion: string, kind: string): JsonMap {
  return mergeMap(original, patch, typeOfKind(apiVersion, kind), '')
}

function mergeMap(original: JsonMap, patch: JsonMap, type: string | undefined, path: string): JsonMap {
  const directive = patch.$patch
  if (directive === 'replace') return mergeMap({}, withoutKey(patch, '$patch'), type, path)
  if (directive === 'delete') return {}
  if (directive !== undefined && directive !== 'merge') {
    throw new PatchError('BRAMBLE_PATCH_BAD_DIRECTIVE', `unknown $patch directive ${JSON.stringify(directive)} at ${path || '.'}; expected replace, delete or merge`)
  }
  const model = type !== undefined && fieldsOfType(type) ? type : undefined
  const valueType = mapValueType(type)
  const childType = (key: string): string | undefined => valueType ?? (model ? fieldsOfType(model)?.[key]?.type : undefined)
  const result: JsonMap = { ...original }

  if (patch.$retainKeys !== undefined) {
    const keep = patch.$retainKeys
    if (!Array.isArray(keep) || !keep.every((k) => typeof k === 'string')) {
      throw new PatchError('BRAMBLE_PATCH_BAD_DIRECTIVE', `$retainKeys at ${path || '.'} must be a list of field names`)
    }
    for (const key of Object.keys(result)) if (!keep.includes(key)) delete result[key]
  }
  for (const [key, values] of Object.entries(patch)) {
    if (!key.startsWith(DELETE_FROM)) continue
    const field = key.slice(DELETE_FROM.length)
    if (!Array.isArray(values)) {
      throw new PatchError('BRAMBLE_PATCH_BAD_DIRECTIVE', `${key} at ${path || '.'} must be a list`)
    }
    const current = result[field]
    if (Array.isArray(current)) result[field] = current.filter((v) => !values.some((d) => deepEqual(d, v)))
  }

  for (const [key, value] of Object.entries(patch)) {
    if (key === '$patch' || key === '$retainKeys' || key.startsWith(DELETE_FROM) || key.startsWith(SET_ORDER)) continue
    if (key.startsWith('$')) {
      throw new PatchError('BRAMBLE_PATCH_BAD_DIRECTIVE', `unknown strategic merge patch directive ${key} at ${path || '.'}`)
    }
    const fieldPath = path ? `${path}.${key}` : key
    if (value === null) {
      delete result[key]
      continue
    }
    const strategy = model ? patchStrategyOf(model, key) : undefined
    result[key] = mergeValue(result[key], value, childType(key), strategy, fieldPath)
  }

  for (const [key, order] of Object.entries(patch)) {
    if (!key.startsWith(SET_ORDER)) continue
    const field = key.slice(SET_ORDER.length)
    if (!Array.isArray(order)) {
      throw new PatchError('BRAMBLE_PATCH_BAD_DIRECTIVE', `${key} at ${path || '.'} must be a list`)
    }
    const list = result[field]
    const mergeKey = model ? patchStrategyOf(model, field)?.mergeKey : undefined
    if (Array.isArray(list)) result[field] = orderList(list, order, mergeKey)
  }
  return result
}

function mergeValue(original: unknown, patch: unknown, type: string | undefined, strategy: FieldPatchStrategy | undefined, path: string): unknown {
  if (isMap(patch)) return mergeMap(isMap(original) ? original : {}, patch, type, path)
  if (Array.isArray(patch)) {
    if (strategy?.strategy.startsWith('merge')) {
      return mergeList(Array.isArray(original) ? original : [], patch, arrayElementType(type), strategy.mergeKey, path)
    }
    return replaceList(patch, arrayElementType(type), path)
  }
  return patch
}

/** A list patched wholesale: keeps the patch's items, with directives inside them resolved. */
function replaceList(patch: unknown[], elementType: string | undefined, path: string): unknown[] {
  return patch.map((item, i) => (isMap(item) ? mergeMap({}, item, elementType, `${path}[${i}]`) : item))
}

function mergeList(original: unknown[], patch: unknown[], elementType: string | undefined, mergeKey: string | undefined, path: string): unknown[] {
  const replaceAt = patch.findIndex((item) => isMap(item) && item.$patch === 'replace' && Object.keys(item).length === 1)
  if (replaceAt >= 0) return replaceList(patch.filter((_, i) => i !== replaceAt), elementType, path)

  if (mergeKey === undefined) {
    // A list of primitives merged as a set (finalizers): union, original order first.
    const result = [...original]
    for (const item of patch) if (!result.some((r) => deepEqual(r, item))) result.push(item)
    return result
  }

  const result = [...original]
  patch.forEach((item, i) => {
    const itemPath = `${path}[${i}]`
    if (!isMap(item)) {
      throw new PatchError('BRAMBLE_PATCH_MALFORMED', `${itemPath}: expected an object with the merge key "${mergeKey}", got ${JSON.stringify(item)}`)
    }
    if (!(mergeKey in item)) {
      throw new PatchError('BRAMBLE_PATCH_MALFORMED', `${itemPath}: does not contain the merge key "${mergeKey}"`)
    }
    const key = item[mergeKey]
    const at = result.findIndex((r) => isMap(r) && deepEqual(r[mergeKey], key))
    if (item.$patch === 'delete') {
      for (let j = result.length - 1; j >= 0; j--) {
        const r = result[j]
        if (isMap(r) && deepEqual(r[mergeKey], key)) result.splice(j, 1)
      }
      return
    }
    if (at >= 0) result[at] = mergeMap(result[at] as JsonMap, item, elementType, itemPath)
    else result.push(mergeMap({}, item, elementType, itemPath))
  })
  return result
}

/**
 * Orders a merged list as `$setElementOrder` says: the listed items in the given order, then any
 * item the order does not name (added by someone else) in its current relative order.
 */
function orderList(list: unknown[], order: unknown[], mergeKey: string | undefined): unknown[] {
  const identity = (v: unknown): unknown => (mergeKey !== undefined && isMap(v) ? v[mergeKey] : v)
  const rank = (v: unknown): number => order.findIndex((o) => deepEqual(identity(o), identity(v)))
  const listed = list.filter((v) => rank(v) >= 0).sort((a, b) => rank(a) - rank(b))
  const others = list.filter((v) => rank(v) < 0)
  return [...listed, ...others]
}

function withoutKey(map: JsonMap, key: string): JsonMap {
  const { [key]: _dropped, ...rest } = map
  return rest
}

export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]))
  if (isMap(a) && isMap(b)) {
    const ka = Object.keys(a)
    return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && deepEqual(a[k], b[k]))
  }
  return false
}
