// The scheduler's scores: each rates a feasible node from 0 to 100; the weighted sum decides.

import type { KubeObject } from '../api/types.js'
import { nodeMatchesTerm, tolerates, type Taint } from './filters.js'
import { allocatable, nonZeroRequestedOn, nonZeroRequests, type NodeSnapshot } from './snapshot.js'

export type Strategy = 'spread' | 'binpack'

/** What several scorers need, worked out once per decision. */
export interface ScoreInput {
  pod: KubeObject
  nodes: readonly NodeSnapshot[]
  /** Per node, the share of its allocatable CPU and memory taken once the pod is there (0..1). */
  cpu: Float64Array
  memory: Float64Array
}

/** A scorer sees every feasible node at once, so it can normalise across them. */
export type Scorer = (input: ScoreInput) => ArrayLike<number>

/** Node condition an agent sets while the SoC throttles for heat. */
export const THROTTLED_CONDITION = 'ThermalThrottling'

export function scoreInput(pod: KubeObject, nodes: readonly NodeSnapshot[]): ScoreInput {
  const want = nonZeroRequests(pod)
  const cpu = new Float64Array(nodes.length)
  const memory = new Float64Array(nodes.length)
  const frac = (u: number, c: number) => (c <= 0 ? 1 : Math.min(1, u / c))
  for (let i = 0; i < nodes.length; i++) {
    const n = nodes[i]!
    const used = nonZeroRequestedOn(n)
    const cap = allocatable(n.node)
    cpu[i] = frac(used.cpuMilli + want.cpuMilli, cap.cpuMilli)
    memory[i] = frac(used.memoryBytes + want.memoryBytes, cap.memoryBytes)
  }
  return { pod, nodes, cpu, memory }
}

const constant = (nodes: readonly NodeSnapshot[], value: number) => new Float64Array(nodes.length).fill(value)

const leastAllocated: Scorer = ({ cpu, memory }) => cpu.map((c, i) => ((1 - c + (1 - memory[i]!)) / 2) * 100)

const mostAllocated: Scorer = ({ cpu, memory }) => cpu.map((c, i) => ((c + memory[i]!) / 2) * 100)

const balancedAllocation: Scorer = ({ cpu, memory }) => cpu.map((c, i) => (1 - Math.abs(c - memory[i]!)) * 100)

/** Replicas of one owner (the same controller) spread over nodes. */
const ownerSpread: Scorer = ({ pod, nodes }) => {
  const owner = controllerUid(pod)
  if (!owner) return constant(nodes, 100)
  const counts = nodes.map((n) => ownerCounts(n.pods).get(owner) ?? 0)
  const most = Math.max(...counts)
  return counts.map((c) => (most === 0 ? 100 : (1 - c / most) * 100))
}

const preferredNodeAffinity: Scorer = ({ pod, nodes }) => {
  const terms: any[] = pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []
  if (terms.length === 0) return constant(nodes, 0)
  const raw = nodes.map((n) => terms.reduce((sum, t) => sum + (nodeMatchesTerm(n.node, t.preference) ? Number(t.weight) || 0 : 0), 0))
  const best = Math.max(0, ...raw)
  return raw.map((r) => (best === 0 ? 0 : (r / best) * 100))
}

const preferNoScheduleTaints: Scorer = ({ pod, nodes }) => {
  const counts = nodes.map((n) => softTaints(n.node).filter((t) => !tolerates(pod, t)).length)
  const most = Math.max(0, ...counts)
  return counts.map((c) => (most === 0 ? 100 : (1 - c / most) * 100))
}

const notThrottled: Scorer = ({ nodes }) => nodes.map((n) => (throttled(n.node) ? 0 : 100))

export interface WeightedScorer {
  name: string
  weight: number
  score: Scorer
}

export function scorers(strategy: Strategy): WeightedScorer[] {
  return strategy === 'binpack' ? BINPACK : SPREAD
}

function weighted(strategy: Strategy): WeightedScorer[] {
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

const SPREAD = weighted('spread')
const BINPACK = weighted('binpack')

function controllerUid(pod: KubeObject): string | undefined {
  return pod.metadata.ownerReferences?.find((o) => o.controller)?.uid
}

// Node objects and a node's pod list are replaced, never changed in place (NodeSnapshot), so what
// is read from one is kept with it: a decision asks the same of hundreds of nodes.
const ownerCountsOf = new WeakMap<readonly KubeObject[], Map<string, number>>()
const softTaintsOf = new WeakMap<KubeObject, Taint[]>()
const throttledOf = new WeakMap<KubeObject, boolean>()

function ownerCounts(pods: readonly KubeObject[]): Map<string, number> {
  let counts = ownerCountsOf.get(pods)
  if (!counts) {
    counts = new Map()
    for (const p of pods) {
      const uid = controllerUid(p)
      if (uid) counts.set(uid, (counts.get(uid) ?? 0) + 1)
    }
    ownerCountsOf.set(pods, counts)
  }
  return counts
}

function softTaints(node: KubeObject): Taint[] {
  let taints = softTaintsOf.get(node)
  if (!taints) softTaintsOf.set(node, (taints = ((node.spec?.taints ?? []) as Taint[]).filter((t) => t.effect === 'PreferNoSchedule')))
  return taints
}

function throttled(node: KubeObject): boolean {
  const known = throttledOf.get(node)
  if (known !== undefined) return known
  const hot: boolean = (node.status?.conditions ?? []).some((c: any) => c.type === THROTTLED_CONDITION && c.status === 'True')
  throttledOf.set(node, hot)
  return hot
}
