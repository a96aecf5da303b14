// Which pods a drain evicts, refuses or passes over, decided as kubectl's drain filters decide:
// DaemonSet pods, pods with emptyDir data and pods no controller would replace are refused
// unless a flag allows them; mirror pods and pods already being deleted are passed over.

import type { KubeObject } from '../api/types.js'

export interface DrainFlags {
  ignoreDaemonSets?: boolean
  deleteEmptyDirData?: boolean
  force?: boolean
}

export interface DrainPlan {
  /** Pods to evict, in the order listed. */
  evict: KubeObject[]
  /** `Warning: ` text for stderr, or '' when there is none. */
  warnings: string
  /** Why the drain cannot go ahead, one sentence per reason, each naming its pods; empty when it can. */
  errors: string[]
}

// kubectl's wording, kept so scripts that read drain's output work on both.
export const DAEMONSET_FATAL = 'DaemonSet-managed Pods (use --ignore-daemonsets to ignore)'
export const DAEMONSET_WARNING = 'ignoring DaemonSet-managed Pods'
export const LOCAL_STORAGE_FATAL = 'Pods with local storage (use --delete-emptydir-data to override)'
export const LOCAL_STORAGE_WARNING = 'deleting Pods with local storage'
export const UNMANAGED_FATAL = 'Pods that declare no controller (use --force to override)'
export const UNMANAGED_WARNING = 'deleting Pods that declare no controller'
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror'

type Verdict = { evict: boolean; kind: 'ok' | 'warning' | 'error' | 'skip'; message?: string }
type Filter = (pod: KubeObject, flags: DrainFlags) => Verdict

const OK: Verdict = { evict: true, kind: 'ok' }
const controllerOf = (pod: KubeObject) => (pod.metadata.ownerReferences ?? []).find((r) => r.controller)
const finished = (pod: KubeObject) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'

const FILTERS: Filter[] = [
  (pod) => (pod.metadata.deletionTimestamp ? { evict: false, kind: 'skip' } : OK),
  (pod, f) => {
    if (controllerOf(pod)?.kind !== 'DaemonSet' || finished(pod)) return OK
    // The DaemonSet controller would put the pod straight back, so it is never evicted.
    return f.ignoreDaemonSets ? { evict: false, kind: 'warning', message: DAEMONSET_WARNING } : { evict: false, kind: 'error', message: DAEMONSET_FATAL }
  },
  (pod) => (pod.metadata.annotations?.[MIRROR_ANNOTATION] !== undefined ? { evict: false, kind: 'skip' } : OK),
  (pod, f) => {
    const emptyDir = (pod.spec?.volumes ?? []).some((v: any) => v.emptyDir !== undefined)
    if (!emptyDir || finished(pod)) return OK
    return f.deleteEmptyDirData ? { evict: true, kind: 'warning', message: LOCAL_STORAGE_WARNING } : { evict: false, kind: 'error', message: LOCAL_STORAGE_FATAL }
  },
  (pod, f) => {
    if (controllerOf(pod) || finished(pod)) return OK
    return f.force ? { evict: true, kind: 'warning', message: UNMANAGED_WARNING } : { evict: false, kind: 'error', message: UNMANAGED_FATAL }
  },
]

/**
 * Runs each pod through the filters until one keeps it; as in kubectl, the verdict of the last
 * filter run is the pod's (so a later OK replaces an earlier warning).
 */
export function planDrain(pods: readonly KubeObject[], flags: DrainFlags): DrainPlan {
  const evict: KubeObject[] = []
  const warnings = new Map<string, string[]>()
  const errors = new Map<string, string[]>()
  for (const pod of pods) {
    let verdict = OK
    for (const filter of FILTERS) {
      verdict = filter(pod, flags)
      if (!verdict.evict) break
    }
    const ref = `${pod.metadata.namespace}/${pod.metadata.name}`
    if (verdict.kind === 'warning') warnings.set(verdict.message!, [...(warnings.get(verdict.message!) ?? []), ref])
    if (verdict.kind === 'error') errors.set(verdict.message!, [...(errors.get(verdict.message!) ?? []), ref])
    if (verdict.evict) evict.push(pod)
  }
  return {
    evict,
    warnings: [...warnings].map(([message, refs]) => `${message}: ${refs.join(', ')}`).join('; '),
    errors: [...errors].map(([message, refs]) => `cannot delete ${message}: ${refs.join(', ')}`),
  }
}
