// schedule(pod, snapshot) → a decision: the node to bind to, or why none fits. Pure: no clock,
// no I/O; the hub feeds it a snapshot and writes the binding.

import type { KubeObject } from '../api/types.js'
import { NODE_FILTERS, onlyResourcesMatter, POD_FILTERS, podConstraintKey, type Filter } from './filters.js'
import { emptyUsage, writeUsage } from './node-usage.js'
import { scorers, share, untoleratedSoftTaints, type ScoreInput, type Strategy } from './scores.js'
import { nodeFacts, nonZeroRequests, podRequests, type NodeFacts, type NodeSnapshot, type Snapshot } from './snapshot.js'
import { VOLUME_NODE_CONFLICT, volumesFit, type VolumePlacement } from './volume-binding.js'

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
  /** Where the pod's PersistentVolumeClaims let it go (volume-binding.ts); absent, anywhere. */
  volumes?: VolumePlacement
}

const VOLUME_REASONS: readonly string[] = Object.freeze([VOLUME_NODE_CONFLICT])

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
  const nodes = snapshot.nodes
  const volumes = options.volumes
  if (volumes?.kind === 'unschedulable') return { kind: 'unschedulable', reasons: {}, message: `0/${nodes.length} nodes are available: ${volumes.message}.`, visited: 0 }
  const enough = feasibleNodesToFind(nodes.length)
  const start = nodes.length > 0 ? (options.startIndex ?? 0) % nodes.length : 0
  const known = nodeFilterMemo(nodes, pod)
  // Without a table kept by the caller, one is filled for the nodes that pass the node filters.
  const usage = snapshot.usage ?? emptyUsage(nodes.length)
  const fillUsage = snapshot.usage === undefined
  const want = podRequests(pod)
  const wantScored = nonZeroRequests(pod)
  const simple = onlyResourcesMatter(pod)
  // What the scorers read of each feasible node, written as it is found (see ScoreInput).
  const scratch = scoreScratch(enough)
  const feasible = scratch.nodes
  const feasibleFacts = scratch.facts
  let count = 0
  let visited = 0
  for (; visited < nodes.length && count < enough; visited++) {
    const i = (start + visited) % nodes.length
    const n = nodes[i]!
    if (known.node[i] !== n.node) {
      known.node[i] = n.node
      known.failed[i] = firstFailure(NODE_FILTERS, pod, n)
      const facts = (known.facts[i] = nodeFacts(n.node))
      known.cpu[i] = facts.allocatable.cpuMilli
      known.memory[i] = facts.allocatable.memoryBytes
      known.pods[i] = facts.allocatable.pods
      known.softTaints[i] = untoleratedSoftTaints(pod, facts)
    }
    let failed = known.failed[i]!
    // Outside the memo: two pods of one shape may use different claims.
    if (failed.length === 0 && volumes && !volumesFit(volumes, n.node)) failed = VOLUME_REASONS
    if (failed.length === 0) {
      if (fillUsage) writeUsage(usage, i, n)
      // resourcesFit's arithmetic inline, on allocatable kept side by side (a decision reads it for
      // hundreds of nodes); the filters themselves run, and name reasons, only when it may fail.
      const fits =
        usage.pods[i]! + 1 <= known.pods[i]! &&
        (want.cpuMilli <= 0 || usage.cpuMilli[i]! + want.cpuMilli <= known.cpu[i]!) &&
        (want.memoryBytes <= 0 || usage.memoryBytes[i]! + want.memoryBytes <= known.memory[i]!)
      if (!fits || !simple || usage.antiAffinityPods[i]! > 0) failed = firstFailure(POD_FILTERS, pod, n)
    }
    if (failed.length === 0) {
      scratch.cpu[count] = share(usage.nonZeroCpuMilli[i]!, wantScored.cpuMilli, known.cpu[i]!)
      scratch.memory[count] = share(usage.nonZeroMemoryBytes[i]!, wantScored.memoryBytes, known.memory[i]!)
      scratch.softTaints[count] = known.softTaints[i]!
      feasible[count] = n
      feasibleFacts[count] = known.facts[i]!
      count++
    }
  }
  if (count === 0) {
    // Every node was looked at and failed: ask again (the answers are remembered) to count why.
    const reasons: Record<string, number> = {}
    for (let i = 0; i < nodes.length; i++) {
      const failed =
        known.failed[i]!.length > 0 ? known.failed[i]! : volumes && !volumesFit(volumes, nodes[i]!.node) ? VOLUME_REASONS : firstFailure(POD_FILTERS, pod, nodes[i]!)
      for (const r of failed) reasons[r] = (reasons[r] ?? 0) + 1
    }
    return { kind: 'unschedulable', reasons, message: unschedulableMessage(nodes.length, reasons), visited }
  }

  const totals = scratch.totals.subarray(0, count).fill(0)
  const input: ScoreInput = {
    pod,
    nodes: feasible,
    facts: feasibleFacts,
    cpu: scratch.cpu.subarray(0, count),
    memory: scratch.memory.subarray(0, count),
    untoleratedSoftTaints: scratch.softTaints.subarray(0, count),
  }
  for (const s of scorers(options.strategy)) s.score(input, totals, s.weight)
  // Highest score wins; ties go to the first name, so a decision is repeatable.
  let best = 0
  for (let i = 1; i < count; i++) {
    const better = totals[i]! > totals[best]! + 1e-9
    const tie = Math.abs(totals[i]! - totals[best]!) <= 1e-9 && feasible[i]!.node.metadata.name! < feasible[best]!.node.metadata.name!
    if (better || tie) best = i
  }
  const chosen = feasible[best]!.node.metadata.name!
  const score = totals[best]!
  // The buffers keep no node past the decision (nodes and their objects come and go).
  feasible.fill(undefined as unknown as NodeSnapshot, 0, count)
  feasibleFacts.fill(undefined as unknown as NodeFacts, 0, count)
  return { kind: 'bind', node: chosen, score, visited }
}

function firstFailure(filters: readonly Filter[], pod: KubeObject, node: NodeSnapshot): readonly string[] {
  for (const filter of filters) {
    const reasons = filter(pod, node)
    if (reasons.length > 0) return reasons
  }
  return reasons0
}

const reasons0: readonly string[] = Object.freeze([])

/**
 * What NODE_FILTERS said of each node, by position, for one list of nodes and one pod shape,
 * with the Node object it was said of (a node whose object was replaced is asked again). The
 * hub hands in the same list while no node comes or goes, and most pods share a few shapes, so
 * a decision mostly reads answers instead of matching selectors and taints on every node.
 */
interface NodeFilterMemo {
  node: (KubeObject | undefined)[]
  failed: (readonly string[] | undefined)[]
  facts: (NodeFacts | undefined)[]
  /** Allocatable CPU (millicores), memory (bytes) and pods of each node. */
  cpu: Float64Array
  memory: Float64Array
  pods: Float64Array
  /** PreferNoSchedule taints of each node the pod shape does not tolerate. */
  softTaints: Float64Array
}

const memos = new WeakMap<readonly NodeSnapshot[], Map<string, NodeFilterMemo>>()
/** Pod shapes remembered per node list; past this the oldest is dropped. */
const SHAPES_REMEMBERED = 256

function nodeFilterMemo(nodes: readonly NodeSnapshot[], pod: KubeObject): NodeFilterMemo {
  let byShape = memos.get(nodes)
  if (!byShape) memos.set(nodes, (byShape = new Map()))
  const key = podConstraintKey(pod)
  let memo = byShape.get(key)
  if (!memo) {
    if (byShape.size >= SHAPES_REMEMBERED) byShape.delete(byShape.keys().next().value!)
    byShape.set(key, (memo = { node: new Array(nodes.length), failed: new Array(nodes.length), facts: new Array(nodes.length), cpu: new Float64Array(nodes.length), memory: new Float64Array(nodes.length), pods: new Float64Array(nodes.length), softTaints: new Float64Array(nodes.length) }))
  }
  return memo
}

/**
 * Buffers a decision fills for its scorers, reused from one decision to the next (a decision runs
 * to its end before another starts, and none keeps them): a thousand-node cluster would otherwise
 * make six arrays of hundreds of entries per pod for the collector.
 */
interface ScoreScratch {
  /** The feasible nodes and their facts, in their first `count` places. */
  nodes: NodeSnapshot[]
  facts: NodeFacts[]
  cpu: Float64Array
  memory: Float64Array
  softTaints: Float64Array
  totals: Float64Array
}

let scratchInUse: ScoreScratch = makeScratch(128)

function makeScratch(size: number): ScoreScratch {
  return { nodes: new Array(size), facts: new Array(size), cpu: new Float64Array(size), memory: new Float64Array(size), softTaints: new Float64Array(size), totals: new Float64Array(size) }
}

/** Buffers for at least `size` feasible nodes. */
function scoreScratch(size: number): ScoreScratch {
  if (scratchInUse.cpu.length < size) scratchInUse = makeScratch(size)
  return scratchInUse
}

/** `0/5 nodes are available: 3 Insufficient memory, 2 node(s) didn't match node selector.` */
export function unschedulableMessage(nodeCount: number, reasons: Record<string, number>): string {
  const parts = Object.entries(reasons)
    .sort(([a, x], [b, y]) => y - x || a.localeCompare(b))
    .map(([reason, count]) => `${count} ${reason}`)
  return `0/${nodeCount} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}.`
}
