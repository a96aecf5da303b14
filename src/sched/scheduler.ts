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
}

export function schedule(pod: KubeObject, snapshot: Snapshot, options: ScheduleOptions = { strategy: 'spread' }): Decision {
  const reasons: Record<string, number> = {}
  const feasible: NodeSnapshot[] = []
  for (const n of snapshot.nodes) {
    const failed = firstFailure(pod, n)
    if (failed.length === 0) feasible.push(n)
    for (const r of failed) reasons[r] = (reasons[r] ?? 0) + 1
  }
  if (feasible.length === 0) return { kind: 'unschedulable', reasons, message: unschedulableMessage(snapshot.nodes.length, reasons) }

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
  return { kind: 'bind', node: feasible[best].node.metadata.name!, score: totals[best] }
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
