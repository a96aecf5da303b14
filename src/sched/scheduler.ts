// schedule(pod, snapshot) → a decision: the node to bind to, or why none fits. Pure: no clock,
// no I/O; the hub feeds it a snapshot and writes the binding.

import type { KubeObject } from '../api/types.js'
import { FILTERS } from './filters.js'
import { scorers, type Strategy } from './scores.js'
import type { NodeSnapshot, Snapshot } from './snapshot.js'

export type Decision =
  | { kind: 'bind'; node: string; score: number }
  | { kind: 'unschedulable'; message: string; reasons: Record<string, number> }

export interface ScheduleOptions {
  strategy: Strategy
  /**
   * Where in `snapshot.nodes` the search starts (wrapping around). The caller moves it on by
   * `visited` after each decision, as Kubernetes does, so that on big clusters, where the search
   * stops early, every node gets its turn.
   */
  startIndex?: number
}

/**
 * Kubernetes' adaptive percentageOfNodesToScore: below 100 nodes every node is considered; above,
 * the search stops once this many feasible nodes are found (50% less 1% per 125 nodes, at least
 * 5%, and never fewer than 100): 420 of 1,000 nodes, 500 of 5,000.
 */
export function feasibleNodesToFind(nodeCount: number): number {
  if (nodeCount < 100) return nodeCount
  const percent = Math.max(5, 50 - nodeCount / 125)
  return Math.max(100, Math.floor((nodeCount * percent) / 100))
}

export function schedule(pod: KubeObject, snapshot: Snapshot, options: ScheduleOptions = { strategy: 'spread' }): Decision & { visited: number } {
  const reasons: Record<string, number> = {}
  const feasible: NodeSnapshot[] = []
  const nodes = snapshot.nodes
  const enough = feasibleNodesToFind(nodes.length)
  const start = nodes.length > 0 ? (options.startIndex ?? 0) % nodes.length : 0
  let visited = 0
  for (; visited < nodes.length && feasible.length < enough; visited++) {
    const n = nodes[(start + visited) % nodes.length]!
    const failed = firstFailure(pod, n)
    if (failed.length === 0) feasible.push(n)
    for (const r of failed) reasons[r] = (reasons[r] ?? 0) + 1
  }
  if (feasible.length === 0) return { kind: 'unschedulable', reasons, message: unschedulableMessage(nodes.length, reasons), visited }

  const totals = feasible.map(() => 0)
  for (const s of scorers(options.strategy)) {
    const scores = s.score(pod, feasible)
    scores.forEach((v, i) => (totals[i] += v * s.weight))
  }
  // Highest score wins; ties go to the first name, so a decision is repeatable.
  let best = 0
  for (let i = 1; i < feasible.length; i++) {
    const better = totals[i] > totals[best] + 1e-9
    const tie = Math.abs(totals[i] - totals[best]) <= 1e-9 && feasible[i].node.metadata.name! < feasible[best].node.metadata.name!
    if (better || tie) best = i
  }
  return { kind: 'bind', node: feasible[best].node.metadata.name!, score: totals[best], visited }
}

function firstFailure(pod: KubeObject, node: NodeSnapshot): string[] {
  for (const filter of FILTERS) {
    const reasons = filter(pod, node)
    if (reasons.length > 0) return reasons
  }
  return []
}

/** `0/5 nodes are available: 3 Insufficient memory, 2 node(s) didn't match node selector.` */
export function unschedulableMessage(nodeCount: number, reasons: Record<string, number>): string {
  const parts = Object.entries(reasons)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, count]) => `${count} ${reason}`)
  return `0/${nodeCount} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}.`
}
