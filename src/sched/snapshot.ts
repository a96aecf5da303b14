// What the scheduler sees: nodes with the pods bound to them, and what each asks for.

import { Quantity } from '../api/quantity.js'
import type { KubeObject } from '../api/types.js'

export interface NodeSnapshot {
  node: KubeObject
  /** Pods bound to the node that still hold resources (not Succeeded or Failed). */
  pods: KubeObject[]
}

export interface Snapshot {
  nodes: NodeSnapshot[]
}

/** CPU in millicores and memory in bytes. */
export interface Resources {
  cpuMilli: bigint
  memoryBytes: bigint
}

const ZERO: Resources = { cpuMilli: 0n, memoryBytes: 0n }

function quantity(value: unknown): Quantity | undefined {
  return Quantity.tryParse(value)
}

function resourcesOf(list: Record<string, unknown> | undefined): Resources {
  return {
    cpuMilli: quantity(list?.cpu)?.milliValue() ?? 0n,
    memoryBytes: quantity(list?.memory)?.value() ?? 0n,
  }
}

/** A container's requests; Kubernetes takes the limit when a request is absent. */
function containerRequests(c: any): Resources {
  const requests = { ...(c?.resources?.limits ?? {}), ...(c?.resources?.requests ?? {}) }
  return resourcesOf(requests)
}

const add = (a: Resources, b: Resources): Resources => ({ cpuMilli: a.cpuMilli + b.cpuMilli, memoryBytes: a.memoryBytes + b.memoryBytes })
const max = (a: Resources, b: Resources): Resources => ({
  cpuMilli: a.cpuMilli > b.cpuMilli ? a.cpuMilli : b.cpuMilli,
  memoryBytes: a.memoryBytes > b.memoryBytes ? a.memoryBytes : b.memoryBytes,
})

/** A pod's effective requests: the sum of its containers, or its largest init container if more. */
export function podRequests(pod: KubeObject): Resources {
  const spec = pod.spec ?? {}
  const app = ((spec.containers as unknown[]) ?? []).map(containerRequests).reduce(add, ZERO)
  const init = ((spec.initContainers as unknown[]) ?? []).map(containerRequests).reduce(max, ZERO)
  return max(app, init)
}

/** Requests as the scorers see them: a pod asking for nothing still counts as a small one, as in Kubernetes. */
export const NON_ZERO_DEFAULT: Resources = { cpuMilli: 100n, memoryBytes: 200n * 1024n * 1024n }

export function nonZeroRequests(pod: KubeObject): Resources {
  const r = podRequests(pod)
  return { cpuMilli: r.cpuMilli || NON_ZERO_DEFAULT.cpuMilli, memoryBytes: r.memoryBytes || NON_ZERO_DEFAULT.memoryBytes }
}

export function allocatable(node: KubeObject): Resources & { pods: number } {
  const a = node.status?.allocatable ?? node.status?.capacity ?? {}
  const pods = quantity(a.pods)?.value()
  return { ...resourcesOf(a), pods: pods === undefined ? 110 : Number(pods) }
}

export function sumRequests(pods: KubeObject[], of: (p: KubeObject) => Resources = podRequests): Resources {
  return pods.map(of).reduce(add, ZERO)
}

export function isTerminal(pod: KubeObject): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
}
