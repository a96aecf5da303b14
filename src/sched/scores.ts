// The scheduler's scores: each rates a feasible node from 0 to 100; the weighted sum decides.

import type { KubeObject } from '../api/types.js'
import { nodeMatchesTerm, tolerates } from './filters.js'
import { controllerUid, type NodeFacts, type NodeSnapshot } from './snapshot.js'

export type Strategy = 'spread' | 'binpack'

/**
 * What several scorers need, worked out once per decision (the scheduler fills it as it filters).
 * The feasible nodes are the first `totals.length` entries of `nodes` and `facts`: buffers the
 * scheduler reuses from one decision to the next, so a scorer reads no further.
 */
export interface ScoreInput {
  pod: KubeObject
  nodes: readonly NodeSnapshot[]
  facts: readonly NodeFacts[]
  /** Per node, the share of its allocatable CPU and memory taken once the pod is there (0..1; see share). */
  cpu: Float64Array
  memory: Float64Array
  /** Per node, how many of its PreferNoSchedule taints the pod does not tolerate. */
  untoleratedSoftTaints: Float64Array
}

/**
 * A scorer sees every feasible node at once, so it can normalise across them, and adds its score
 * (0 to 100) times `weight` to each node's total. Adding in place, rather than handing back an
 * array per scorer, keeps a decision over hundreds of nodes from making garbage at every step.
 */
export type Scorer = (input: ScoreInput, totals: Float64Array, weight: number) => void

/** The share of `allocatable` taken by `used` plus the pod's `wanted` (nonZeroRequests), capped at 1; 1 when nothing is allocatable. */
export function share(used: number, wanted: number, allocatable: number): number {
  return allocatable <= 0 ? 1 : Math.min(1, (used + wanted) / allocatable)
}

/** How many of `node`'s PreferNoSchedule taints `pod` does not tolerate. */
export function untoleratedSoftTaints(pod: KubeObject, node: NodeFacts): number {
  let untolerated = 0
  for (const t of node.softTaints) if (!tolerates(pod, t)) untolerated++
  return untolerated
}

/** The same score for every node: nothing about this pod tells them apart. */
function addToAll(totals: Float64Array, score: number, weight: number): void {
  for (let i = 0; i < totals.length; i++) totals[i]! += score * weight
}

/** Scores `raw / best * 100` (0 when no node has any), for scorers that rate nodes against the best of them. */
function addRelative(totals: Float64Array, raw: ArrayLike<number>, weight: number, best: number, whenNone: number): void {
  for (let i = 0; i < totals.length; i++) totals[i]! += (best === 0 ? whenNone : (raw[i]! / best) * 100) * weight
}

/** Scores `(1 - raw / most) * 100` (100 when no node has any): fewer is better. */
function addInverse(totals: Float64Array, raw: ArrayLike<number>, weight: number, most: number): void {
  for (let i = 0; i < totals.length; i++) totals[i]! += (most === 0 ? 100 : (1 - raw[i]! / most) * 100) * weight
}

const leastAllocated: Scorer = ({ cpu, memory }, totals, weight) => {
  for (let i = 0; i < totals.length; i++) totals[i]! += ((1 - cpu[i]! + (1 - memory[i]!)) / 2) * 100 * weight
}

const mostAllocated: Scorer = ({ cpu, memory }, totals, weight) => {
  for (let i = 0; i < totals.length; i++) totals[i]! += ((cpu[i]! + memory[i]!) / 2) * 100 * weight
}

const balancedAllocation: Scorer = ({ cpu, memory }, totals, weight) => {
  for (let i = 0; i < totals.length; i++) totals[i]! += (1 - Math.abs(cpu[i]! - memory[i]!)) * 100 * weight
}

/** Replicas of one owner (the same controller) spread over nodes. */
const ownerSpread: Scorer = ({ pod, nodes }, totals, weight) => {
  const owner = controllerUid(pod)
  if (!owner) return addToAll(totals, 100, weight)
  // A loop into a reused buffer: this runs for hundreds of nodes in every decision of a rollout.
  const counts = rawScratch(totals.length)
  let most = 0
  for (let i = 0; i < totals.length; i++) {
    const count = (nodes[i]!.owners ?? ownerCounts(nodes[i]!.pods)).get(owner) ?? 0
    counts[i] = count
    if (count > most) most = count
  }
  addInverse(totals, counts, weight, most)
}

const preferredNodeAffinity: Scorer = ({ pod, nodes }, totals, weight) => {
  const terms: any[] = pod.spec?.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? []
  if (terms.length === 0) return addToAll(totals, 0, weight)
  const known = preferenceScores(terms)
  const raw = rawScratch(totals.length)
  let best = 0
  for (let i = 0; i < totals.length; i++) {
    const node = nodes[i]!.node
    let score = known.get(node)
    if (score === undefined) {
      score = terms.reduce((sum: number, t) => sum + (nodeMatchesTerm(node, t.preference) ? Number(t.weight) || 0 : 0), 0) as number
      known.set(node, score)
    }
    raw[i] = score
    if (score > best) best = score
  }
  addRelative(totals, raw, weight, best, 0)
}

/**
 * Each Node object's sum of matched preference weights, per set of preferred terms: most pods
 * with preferences share a few sets, and a decision asks for hundreds of nodes. A new Node object
 * (its labels may have changed) is asked again.
 */
const preferenceScoresOf = new Map<string, WeakMap<KubeObject, number>>()
const termsKeys = new WeakMap<object, string>()
/** Sets of terms remembered; past this the oldest is dropped. */
const PREFERENCE_SETS_REMEMBERED = 256

function preferenceScores(terms: any[]): WeakMap<KubeObject, number> {
  let key = termsKeys.get(terms)
  if (key === undefined) termsKeys.set(terms, (key = JSON.stringify(terms)))
  let scores = preferenceScoresOf.get(key)
  if (!scores) {
    if (preferenceScoresOf.size >= PREFERENCE_SETS_REMEMBERED) preferenceScoresOf.delete(preferenceScoresOf.keys().next().value!)
    preferenceScoresOf.set(key, (scores = new WeakMap()))
  }
  return scores
}

let rawBuffer = new Float64Array(128)

/** A buffer for `size` raw scores, reused by one scorer after another (none keeps it past its call). */
function rawScratch(size: number): Float64Array {
  if (rawBuffer.length < size) rawBuffer = new Float64Array(size)
  return rawBuffer
}

const preferNoScheduleTaints: Scorer = ({ untoleratedSoftTaints: counts }, totals, weight) => {
  let most = 0
  for (let i = 0; i < counts.length; i++) if (counts[i]! > most) most = counts[i]!
  addInverse(totals, counts, weight, most)
}

const notThrottled: Scorer = ({ facts }, totals, weight) => {
  let any = false
  for (let i = 0; i < totals.length && !any; i++) any = facts[i]!.throttled
  if (!any) return addToAll(totals, 100, weight)
  for (let i = 0; i < totals.length; i++) totals[i]! += (facts[i]!.throttled ? 0 : 100) * weight
}

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

// A node's pod list is replaced, never changed in place (NodeSnapshot), so its counts are kept with it.
const ownerCountsOf = new WeakMap<readonly KubeObject[], Map<string, number>>()

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
