// Where a pod's PersistentVolumeClaims let it go (Kubernetes' VolumeBinding filter): a claim bound
// to a volume with a required node affinity (a local-path volume: its node) pins the pod there; an
// unbound claim of a WaitForFirstConsumer class fits anywhere (the volume is made where the pod
// lands); an unbound claim of any other class, or a missing claim, keeps the pod Pending. Pure.

import { claimsOfPod } from '../api/claims.js'
import type { KubeObject } from '../api/types.js'
import { nodeMatchesTerm } from './filters.js'

export const VOLUME_NODE_CONFLICT = 'node(s) had volume node affinity conflict'
const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class'

/** The claims, volumes and storage classes the hub knows, by `namespace/name` and name. */
export interface VolumeView {
  claim(namespace: string, name: string): KubeObject | undefined
  volume(name: string): KubeObject | undefined
  storageClasses(): KubeObject[]
}

export type VolumePlacement =
  | { kind: 'anywhere' }
  | { kind: 'unschedulable'; message: string }
  /** Each entry is one volume's node selector terms: a node must match one term of every entry. */
  | { kind: 'terms'; terms: unknown[][] }

export function volumePlacement(pod: KubeObject, view: VolumeView): VolumePlacement {
  const namespace = pod.metadata.namespace ?? 'default'
  const claimNames = claimsOfPod(pod)
  if (claimNames.length === 0) return { kind: 'anywhere' }
  const terms: unknown[][] = []
  for (const name of claimNames) {
    const claim = view.claim(namespace, name)
    if (!claim) return { kind: 'unschedulable', message: `persistentvolumeclaim "${name}" not found` }
    if (claim.metadata.deletionTimestamp) return { kind: 'unschedulable', message: `persistentvolumeclaim "${name}" is being deleted` }
    const volumeName = claim.spec?.volumeName
    if (volumeName) {
      const pv = view.volume(volumeName)
      if (!pv) return { kind: 'unschedulable', message: `pvc ${name} bound to non-existent pv ${volumeName}` }
      const required = pv.spec?.nodeAffinity?.required?.nodeSelectorTerms
      if (Array.isArray(required) && required.length > 0) terms.push(required)
      continue
    }
    const classes = view.storageClasses()
    const className = claim.spec?.storageClassName ?? classes.find((c) => c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true')?.metadata.name
    const sc = classes.find((c) => c.metadata.name === className)
    if (sc?.volumeBindingMode !== 'WaitForFirstConsumer') return { kind: 'unschedulable', message: 'pod has unbound immediate PersistentVolumeClaims' }
  }
  return terms.length === 0 ? { kind: 'anywhere' } : { kind: 'terms', terms }
}

export function volumesFit(placement: VolumePlacement, node: KubeObject): boolean {
  if (placement.kind === 'anywhere') return true
  if (placement.kind === 'unschedulable') return false
  return placement.terms.every((terms) => terms.some((term) => nodeMatchesTerm(node, term)))
}
