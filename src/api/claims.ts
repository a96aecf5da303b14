// PersistentVolumeClaims as pods name them, and Kubernetes' StorageObjectInUseProtection admission
// for claims: a new claim gets the finalizer kubernetes.io/pvc-protection, so that deleting it while
// a pod uses it only marks it Terminating (the hub's pvc-protection controller removes the
// finalizer once no pod does).

import type { KubeObject } from './types.js'

export const PVC_PROTECTION_FINALIZER = 'kubernetes.io/pvc-protection'

/** The claim names a pod's volumes use. */
export function claimsOfPod(pod: KubeObject): string[] {
  return ((pod.spec?.volumes ?? []) as any[]).map((v) => v?.persistentVolumeClaim?.claimName).filter((n): n is string => typeof n === 'string' && n !== '')
}

/** The claim with the protection finalizer (unchanged when it has it). */
export function withClaimProtection(claim: KubeObject): KubeObject {
  const finalizers = claim.metadata.finalizers ?? []
  if (finalizers.includes(PVC_PROTECTION_FINALIZER)) return claim
  return { ...claim, metadata: { ...claim.metadata, finalizers: [...finalizers, PVC_PROTECTION_FINALIZER] } }
}
