// The scheduler's scores: each rates a feasible node from 0 to 100; the weighted sum decides.

import type { KubeObject } from '../api/types.js'
import { nodeMatchesTerm, tolerates, type Taint } from './filters.js'
import { allocatable, nonZeroRequestedOn, nonZeroRequests, type NodeSnapshot } from './snapshot.js'

export type Strategy = 'spread' | 'binpack'

/** A scorer sees every feasible node at once, so it can normalise across them. */
export type Scorer = (pod: KubeObject, nodes: NodeSnapshot[]) => number[]

/** Node condition an agent sets while the SoC throttles for heat. */
export const THROTTLED_CONDITION = 'ThermalThrottling'

function fractions(pod: KubeObject, n: NodeSnapshot): { cpu: number; memory: number } {
  const want = nonZeroRequests(pod)
  const used = nonZeroRequestedOn(n)
  const cap = allocatable(n.node)
  const frac = (u: bigint, c: bigint) => (c <= 0n ? 1 : Math.min(1, Number(u) / Number(c)))
  return { cpu: frac(used.cpuMilli + want.cpuMilli, cap.cpuMilli), memory: frac(used.memoryBytes + want.memoryBytes, cap.memoryBytes) }
}

const leastAllocated: Scorer = (pod, nodes) =>
  nodes.map((n) => {
    const f = fractions(pod, n)
    return ((1 - f.cpu + (1 - f.memory)) / 2) * 100
  })

const mostAllocated: Scorer = (pod, nodes) =>
  nodes.map((n) => {
    const f = fractions(pod, n)
    return ((f.cpu + f.memory) / 2) * 100
  })

const balancedAllocation: Scorer = (pod, nodes) =>
  nodes.map((n) => {
    const f = fractions(pod, n)
    return (1 - Math.abs(f.cpu - f.memory)) * 100
  })

/** Replicas of one owner (the same controller) spread over nodes. */
const ownerSpread: Scorer = (pod, nodes) => {
  const owner = controllerUid(pod)
  if (!owner) return nodes.map(() => 100)
  const counts = nodes.map((n) => n.pods.filter((p) => controllerUid(p) === owner).length)
  const most = Math.max(...counts)
  return counts.map((c) => (most === 0 ? 100 : (1 - c / most) * 100))
}

const preferredNodeAffinity: Scorer = (pod, nodes) => {
  const terms: any[] = pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []
  const raw = nodes.map((n) => terms.reduce((sum, t) => sum + (nodeMatchesTerm(n.node, t.preference) ? Number(t.weight) || 0 : 0), 0))
  const best = Math.max(0, ...raw)
  return raw.map((r) => (best === 0 ? 0 : (r / best) * 100))
}

const preferNoScheduleTaints: Scorer = (pod, nodes) => {
  const counts = nodes.map((n) => ((n.node.spec?.taints ?? []) as Taint[]).filter((t) => t.effect === 'PreferNoSchedule' && !tolerates(pod, t)).length)
  const most = Math.max(0, ...counts)
  return counts.map((c) => (most === 0 ? 100 : (1 - c / most) * 100))
}

const notThrottled: Scorer = (_pod, nodes) =>
  nodes.map((n) => ((n.node.status?.conditions ?? []).some((c: any) => c.type === THROTTLED_CONDITION && c.status === 'True') ? 0 : 100))

export interface WeightedScorer {
  name: string
  weight: number
  score: Scorer
}

export function scorers(strategy: Strategy): WeightedScorer[] {
  return [
    { name: strategy === 'binpack' ? 'MostAllocated' : 'LeastAllocated', weight: 1, score: strategy === 'binpack' ? mostAllocated : leastAllocated },
    { name: 'BalancedAllocation', weight: 1, score: balancedAllocation },
    // Spreading a controller's replicas matters more than packing on a fleet that loses nodes.
    { name: 'OwnerSpread', weight: strategy === 'binpack' ? 1 : 2, score: ownerSpread },
    { name: 'NodeAffinity', weight: 2, score: preferredNodeAffinity },
    { name: 'TaintToleration', weight: 3, score: preferNoScheduleTaints },
    { name: 'ThermalThrottling', weight: 2, score: notThrottled },
  ]
}

function controllerUid(pod: KubeObject): string | undefined {
  return pod.metadata.ownerReferences?.find((o) => o.controller)?.uid
}

