// The numbers a decision reads for every node it visits, side by side by position in
// Snapshot.nodes: a decision visits hundreds of nodes, and reading each number from one block is
// far cheaper than chasing per-node objects spread over the heap. The hub keeps a table up to
// date as pods come and go; without one, a decision fills its own for the nodes it considers.

import { antiAffinityPodsOn } from './filters.js'
import { nonZeroRequestedOn, requestedOn, type NodeSnapshot } from './snapshot.js'

export interface NodeUsage {
  /** How many pods hold resources on the node (NodeSnapshot.pods.length). */
  pods: Float64Array
  /** The sum of their requests (requestedOn). */
  cpuMilli: Float64Array
  memoryBytes: Float64Array
  /** The sum as the scorers count it (nonZeroRequestedOn). */
  nonZeroCpuMilli: Float64Array
  nonZeroMemoryBytes: Float64Array
  /** How many of them carry pod anti-affinity (antiAffinityPodsOn). */
  antiAffinityPods: Float64Array
}

/** A table for `nodes`, filled from them. */
export function nodeUsage(nodes: readonly NodeSnapshot[]): NodeUsage {
  const usage = emptyUsage(nodes.length)
  for (let i = 0; i < nodes.length; i++) writeUsage(usage, i, nodes[i]!)
  return usage
}

/** A table of `count` nodes holding nothing yet. */
export function emptyUsage(count: number): NodeUsage {
  return {
    pods: new Float64Array(count),
    cpuMilli: new Float64Array(count),
    memoryBytes: new Float64Array(count),
    nonZeroCpuMilli: new Float64Array(count),
    nonZeroMemoryBytes: new Float64Array(count),
    antiAffinityPods: new Float64Array(count),
  }
}

/** Writes what node `n` (at position `i`) now holds into the table. */
export function writeUsage(usage: NodeUsage, i: number, n: NodeSnapshot): void {
  const requested = requestedOn(n)
  const nonZero = nonZeroRequestedOn(n)
  usage.pods[i] = n.pods.length
  usage.cpuMilli[i] = requested.cpuMilli
  usage.memoryBytes[i] = requested.memoryBytes
  usage.nonZeroCpuMilli[i] = nonZero.cpuMilli
  usage.nonZeroMemoryBytes[i] = nonZero.memoryBytes
  usage.antiAffinityPods[i] = antiAffinityPodsOn(n)
}
