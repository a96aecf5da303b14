// The `scale` subresource: an autoscaling/v1 Scale view of a workload's replicas.

import type { KindInfo } from '../api/kinds.js'
import { applyPatch } from '../api/patch.js'
import { formatSelector } from './tables.js'
import type { KubeObject } from '../api/types.js'
import { badRequest, conflict, invalid, patchFailed } from './api-errors.js'
import type { Registry, WriteContext, WriteResult } from './registry.js'

export function getScale(info: KindInfo, object: KubeObject): KubeObject {
  const m = object.metadata
  return {
    kind: 'Scale',
    apiVersion: 'autoscaling/v1',
    metadata: { name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion, creationTimestamp: m.creationTimestamp },
    spec: { replicas: object.spec?.replicas ?? 0 },
    status: { replicas: object.status?.replicas ?? 0, selector: object.spec?.selector ? formatSelector(object.spec.selector) : '' },
  }
}

export type ScaleChange = { kind: 'replace'; body: unknown } | { kind: 'patch'; patch: Buffer; contentType: string }

/** Sets a workload's replicas through its Scale, honouring a resourceVersion the caller sent. */
export async function updateScale(registry: Registry, info: KindInfo, namespace: string, name: string, change: ScaleChange, ctx: WriteContext): Promise<WriteResult> {
  const current = await registry.get(info, namespace, name)
  const scale = getScale(info, current)
  let wanted: KubeObject
  if (change.kind === 'replace') {
    if (typeof change.body !== 'object' || change.body === null) throw badRequest('the request body must be a Scale object')
    wanted = change.body as KubeObject
  } else {
    // A Scale has no lists, so a strategic merge patch is a plain merge patch here.
    const type = change.contentType === 'application/json-patch+json' ? change.contentType : 'application/merge-patch+json'
    try {
      wanted = applyPatch(structuredClone(scale), change.patch, type)
    } catch (err) {
      throw patchFailed(err, 'autoscaling', 'Scale', name)
    }
  }
  const replicas = (wanted.spec as { replicas?: unknown } | undefined)?.replicas
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0 || replicas > 2 ** 31 - 1) {
    throw invalid('autoscaling', 'Scale', name, [{ field: 'spec.replicas', type: 'FieldValueInvalid', message: 'must be greater than or equal to 0', value: replicas }])
  }
  const rv = wanted.metadata?.resourceVersion
  if (rv && rv !== current.metadata.resourceVersion) throw conflict(info.group, info.plural, name)
  const next = structuredClone(current)
  next.spec = { ...next.spec, replicas }
  const result = await registry.update(info, namespace, name, next, ctx)
  return { ...result, object: getScale(info, result.object) }
}
