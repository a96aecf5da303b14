// Which nodes a DaemonSet's pod belongs on, from the scheduler's own filters: node selector and
// required node affinity, architecture, and taints against the pod's tolerations. Node readiness
// and free resources do not decide it (the pod is created anyway and waits for the scheduler).

import type { KubeObject } from '../api/types.js'
import { architecture, nodeSelector, taints, tolerates, type Taint } from './filters.js'

export interface DaemonPlacement {
  /** A pod should be created here. */
  shouldRun: boolean
  /** A pod already here may stay: a new NoSchedule taint keeps it, a NoExecute one does not. */
  shouldContinueRunning: boolean
}

/** Kubernetes' NodeShouldRunDaemonPod for a pod made from the DaemonSet's template. */
export function daemonPlacement(pod: KubeObject, node: KubeObject): DaemonPlacement {
  const onNode = { node, pods: [] }
  if (nodeSelector(pod, onNode).length > 0 || architecture(pod, onNode).length > 0) return { shouldRun: false, shouldContinueRunning: false }
  const noExecuteTolerated = ((node.spec?.taints ?? []) as Taint[]).every((t) => t.effect !== 'NoExecute' || tolerates(pod, t))
  return { shouldRun: noExecuteTolerated && taints(pod, onNode).length === 0, shouldContinueRunning: noExecuteTolerated }
}

/** The node a daemon pod is meant for: its binding, or the node-name affinity it was created with. */
export function daemonPodNode(pod: KubeObject): string | undefined {
  if (pod.spec?.nodeName) return pod.spec.nodeName
  const terms: any[] = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []
  for (const term of terms) {
    for (const f of term?.matchFields ?? []) {
      if (f?.key === 'metadata.name' && f.operator === 'In' && Array.isArray(f.values) && f.values.length === 1) return String(f.values[0])
    }
  }
  return undefined
}

/**
 * Pins a pod spec to one node the way Kubernetes' DaemonSet controller does: the required node
 * affinity becomes a single `metadata.name In [node]` term (the node already matched the others),
 * preferred terms stay, and the scheduler does the binding.
 */
export function pinToNode(spec: any, node: string): any {
  const affinity = spec.affinity ?? {}
  const nodeAffinity = affinity.nodeAffinity ?? {}
  return {
    ...spec,
    affinity: {
      ...affinity,
      nodeAffinity: {
        ...nodeAffinity,
        requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] },
      },
    },
  }
}
