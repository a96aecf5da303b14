// Kubernetes' DefaultTolerationSeconds admission: a new pod that does not already tolerate the
// not-ready and unreachable NoExecute taints gets tolerations of them for a bounded time, so its
// eviction from a failed node waits that long (a flaky link should not move every pod at once).
// DaemonSet pods carry their own, without seconds: they stay on their node for good.

import type { KubeObject } from './types.js'

export const NOT_READY_TAINT_KEY = 'node.kubernetes.io/not-ready'
export const UNREACHABLE_TAINT_KEY = 'node.kubernetes.io/unreachable'
export const DEFAULT_TOLERATION_SECONDS = 30

interface Toleration {
  key?: string
  operator?: string
  effect?: string
  tolerationSeconds?: number
}

/** True when some toleration covers `key` with effect NoExecute (an empty key or effect matches all). */
function coversNoExecute(tolerations: Toleration[], key: string): boolean {
  return tolerations.some((t) => (!t.key || t.key === key) && (!t.effect || t.effect === 'NoExecute'))
}

/** A copy of the pod with the default tolerations added where it has none for those taints. */
export function withDefaultTolerations(pod: KubeObject, seconds: number): KubeObject {
  const spec = pod.spec as { tolerations?: unknown } | undefined
  if (!spec || typeof spec !== 'object') return pod
  if (spec.tolerations !== undefined && spec.tolerations !== null && !Array.isArray(spec.tolerations)) return pod
  const existing = (spec.tolerations ?? []) as Toleration[]
  const added = [NOT_READY_TAINT_KEY, UNREACHABLE_TAINT_KEY]
    .filter((key) => !coversNoExecute(existing, key))
    .map((key) => ({ key, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: seconds }))
  if (added.length === 0) return pod
  return { ...pod, spec: { ...spec, tolerations: [...existing, ...added] } }
}
