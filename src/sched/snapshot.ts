// What the scheduler sees: nodes with the pods bound to them, and what each asks for.

import { Quantity } from '../api/quantity.js'
import { isExtendedResourceName } from '../api/validate-host-access.js'
import type { KubeObject } from '../api/types.js'
import type { NodeUsage } from './node-usage.js'

export interface NodeSnapshot {
  node: KubeObject
  /** Pods bound to the node that still hold resources (not Succeeded or Failed). */
  pods: KubeObject[]
  /**
   * The sums of `podRequests` and `nonZeroRequests` over `pods`, when the caller keeps them up to
   * date itself (the hub does, per node, as pods come and go); computed from `pods` when absent.
   */
  requested?: Resources
  nonZeroRequested?: Resources
  /** How many of `pods` carry pod anti-affinity, when the caller keeps it up to date; counted when absent. */
  antiAffinityPods?: number
  /** How many of `pods` each controller owns (by its uid), when the caller keeps it up to date; counted when absent. */
  owners?: ReadonlyMap<string, number>
}

/** The uid of the pod's controller (its owner reference marked controller), if it has one. */
export function controllerUid(pod: KubeObject): string | undefined {
  return pod.metadata.ownerReferences?.find((o) => o.controller)?.uid
}

export interface Snapshot {
  nodes: NodeSnapshot[]
  /**
   * The nodes' hot numbers by position in `nodes` (node-usage.ts), when the caller keeps them up
   * to date itself (the hub does); filled per decision, for the nodes it considers, when absent.
   */
  usage?: NodeUsage
}

/**
 * CPU in millicores and memory in bytes. Plain numbers: exact up to 2^53 (9 PB, 9 billion
 * cores), and a decision adds and compares them for hundreds of nodes.
 */
export interface Resources {
  cpuMilli: number
  memoryBytes: number
}

const ZERO: Resources = { cpuMilli: 0, memoryBytes: 0 }

function quantity(value: unknown): Quantity | undefined {
  return Quantity.tryParse(value)
}

function resourcesOf(list: Record<string, unknown> | undefined): Resources {
  return {
    cpuMilli: Number(quantity(list?.cpu)?.milliValue() ?? 0n),
    memoryBytes: Number(quantity(list?.memory)?.value() ?? 0n),
  }
}

/** A container's requests; Kubernetes takes the limit when a request is absent. */
function containerRequests(c: any): Resources {
  const requests = { ...(c?.resources?.limits ?? {}), ...(c?.resources?.requests ?? {}) }
  return resourcesOf(requests)
}

const add = (a: Resources, b: Resources): Resources => ({ cpuMilli: a.cpuMilli + b.cpuMilli, memoryBytes: a.memoryBytes + b.memoryBytes })
export const addResources = add
export const subtractResources = (a: Resources, b: Resources): Resources => ({ cpuMilli: a.cpuMilli - b.cpuMilli, memoryBytes: a.memoryBytes - b.memoryBytes })
const max = (a: Resources, b: Resources): Resources => ({
  cpuMilli: a.cpuMilli > b.cpuMilli ? a.cpuMilli : b.cpuMilli,
  memoryBytes: a.memoryBytes > b.memoryBytes ? a.memoryBytes : b.memoryBytes,
})

// Objects the scheduler sees are never changed in place (the hub replaces them), so what is parsed
// from one is kept with it: a decision over a thousand nodes asks for the same values many times.
const allocatableOf = new WeakMap<KubeObject, Resources & { pods: number }>()

/**
 * What is worked out from a pod's containers, kept with its containers array: the versions of one
 * pod (pending, assumed bound, bound, each status report the informer gets) are copies that share
 * it, so it is worked out once per pod rather than once per version.
 */
type ByContainers<T> = WeakMap<object, { initContainers: unknown; value: T }>

function ofContainers<T>(cache: ByContainers<T>, pod: KubeObject, compute: (pod: KubeObject) => T): T {
  const containers = pod.spec?.containers
  if (typeof containers !== 'object' || containers === null) return compute(pod)
  const initContainers = pod.spec?.initContainers
  let kept = cache.get(containers)
  if (kept === undefined || kept.initContainers !== initContainers) cache.set(containers, (kept = { initContainers, value: compute(pod) }))
  return kept.value
}

const requestsOf: ByContainers<Resources> = new WeakMap()

/** A pod's effective requests: the sum of its containers, or its largest init container if more. */
export function podRequests(pod: KubeObject): Resources {
  return ofContainers(requestsOf, pod, computePodRequests)
}

function computePodRequests(pod: KubeObject): Resources {
  const spec = pod.spec ?? {}
  const app = ((spec.containers as unknown[]) ?? []).map(containerRequests).reduce(add, ZERO)
  const init = ((spec.initContainers as unknown[]) ?? []).map(containerRequests).reduce(max, ZERO)
  return max(app, init)
}

/**
 * Extended resources a pod asks for (fully qualified names outside kubernetes.io, such as
 * devices.bramble.dev/serial), as counts: the sum over its containers, or its largest init
 * container's if more. Requests default to limits; Kubernetes has them equal.
 */
export function podExtendedRequests(pod: KubeObject): ReadonlyMap<string, number> {
  return ofContainers(extendedOf, pod, computeExtended)
}

const extendedOf: ByContainers<ReadonlyMap<string, number>> = new WeakMap()
const NO_EXTENDED: ReadonlyMap<string, number> = new Map()

function computeExtended(pod: KubeObject): ReadonlyMap<string, number> {
  const of = (c: any): Map<string, number> => {
    const m = new Map<string, number>()
    for (const [name, value] of Object.entries({ ...(c?.resources?.limits ?? {}), ...(c?.resources?.requests ?? {}) })) {
      const n = Number(quantity(value)?.value() ?? 0)
      if (isExtendedResourceName(name) && n > 0) m.set(name, n)
    }
    return m
  }
  const total = new Map<string, number>()
  for (const c of (pod.spec?.containers ?? []) as unknown[]) for (const [k, n] of of(c)) total.set(k, (total.get(k) ?? 0) + n)
  for (const c of (pod.spec?.initContainers ?? []) as unknown[]) for (const [k, n] of of(c)) total.set(k, Math.max(total.get(k) ?? 0, n))
  return total.size > 0 ? total : NO_EXTENDED
}

/** How much of an extended resource the node offers: its allocatable (0 when it has none). */
export function allocatableExtended(node: KubeObject, name: string): number {
  const a = node.status?.allocatable ?? node.status?.capacity ?? {}
  return Number(quantity(a[name])?.value() ?? 0)
}

/** Requests as the scorers see them: a pod asking for nothing still counts as a small one, as in Kubernetes. */
export const NON_ZERO_DEFAULT: Resources = { cpuMilli: 100, memoryBytes: 200 * 1024 * 1024 }

const nonZeroOf: ByContainers<Resources> = new WeakMap()

export function nonZeroRequests(pod: KubeObject): Resources {
  return ofContainers(nonZeroOf, pod, (p) => {
    const req = podRequests(p)
    return { cpuMilli: req.cpuMilli || NON_ZERO_DEFAULT.cpuMilli, memoryBytes: req.memoryBytes || NON_ZERO_DEFAULT.memoryBytes }
  })
}

export function allocatable(node: KubeObject): Resources & { pods: number } {
  let r = allocatableOf.get(node)
  if (!r) {
    const a = node.status?.allocatable ?? node.status?.capacity ?? {}
    const pods = quantity(a.pods)?.value()
    allocatableOf.set(node, (r = { ...resourcesOf(a), pods: pods === undefined ? 110 : Number(pods) }))
  }
  return r
}

/** Node condition an agent sets while the SoC throttles for heat. */
export const THROTTLED_CONDITION = 'ThermalThrottling'

/** What the scores read from a Node object, worked out once per object. */
export interface NodeFacts {
  allocatable: Resources & { pods: number }
  /** PreferNoSchedule taints. */
  softTaints: Array<{ key: string; value?: string; effect: string }>
  /** The node reports ThermalThrottling=True. */
  throttled: boolean
}

const factsOf = new WeakMap<KubeObject, NodeFacts>()

export function nodeFacts(node: KubeObject): NodeFacts {
  let f = factsOf.get(node)
  if (!f) {
    f = {
      allocatable: allocatable(node),
      softTaints: ((node.spec?.taints ?? []) as NodeFacts['softTaints']).filter((t) => t.effect === 'PreferNoSchedule'),
      throttled: (node.status?.conditions ?? []).some((c: any) => c.type === THROTTLED_CONDITION && c.status === 'True'),
    }
    factsOf.set(node, f)
  }
  return f
}

/** What the node's pods request: the kept sum, or the sum over them. */
export function requestedOn(n: NodeSnapshot): Resources {
  return n.requested ?? sumRequests(n.pods)
}

/** What the node's pods request as the scorers count it (see nonZeroRequests). */
export function nonZeroRequestedOn(n: NodeSnapshot): Resources {
  return n.nonZeroRequested ?? sumRequests(n.pods, nonZeroRequests)
}

export function sumRequests(pods: KubeObject[], of: (p: KubeObject) => Resources = podRequests): Resources {
  return pods.map(of).reduce(add, ZERO)
}

export function isTerminal(pod: KubeObject): boolean {
  return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed'
}
