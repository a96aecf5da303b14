// What nodes last said about themselves, kept in memory only: heartbeats arrive every few seconds
// from every node, and writing them to LMDB would wear out an SD card for nothing (DESIGN.md,
// "Objects and the store"). Times are the hub's monotonic clock, never the node's.

import type { HeartbeatMessage, PodUsage } from '../api/protocol.js'
import type { NodeHistory } from './node-history.js'

/** What a node's last heartbeat said. */
export interface HeartbeatFigures {
  receivedMs: number
  seq: number
  uptimeMs: number
  /** Fraction of all cores, 0..1. */
  cpu: number
  /** Bytes in use. */
  memory: number
  /** °C, where the board reports it. */
  temperature?: number
  /** The node's running pods' usage (what metrics.k8s.io serves); empty from agents that do not report it. */
  pods: PodUsage[]
}

export interface NodeLiveness {
  /** Monotonic ms of the last valid message of any kind from the node. */
  lastSeenMs: number
  /** The last heartbeat, when one has arrived since the hub started. */
  heartbeat?: HeartbeatFigures
}

export class Heartbeats {
  private readonly nodes = new Map<string, NodeLiveness>()

  /** `history`, when given, keeps every node's last hour of figures (the dashboard's charts). */
  constructor(private readonly history?: NodeHistory) {}

  /** Any valid message proves the node is alive. */
  seen(node: string, atMs: number): void {
    const entry = this.nodes.get(node)
    if (entry) entry.lastSeenMs = Math.max(entry.lastSeenMs, atMs)
    else this.nodes.set(node, { lastSeenMs: atMs })
  }

  record(node: string, message: HeartbeatMessage, atMs: number): void {
    this.seen(node, atMs)
    const { seq, uptimeMs, cpu, memory, temperature, pods } = message
    this.nodes.get(node)!.heartbeat = { receivedMs: atMs, seq, uptimeMs, cpu, memory, ...(temperature === undefined ? {} : { temperature }), pods: pods ?? [] }
    this.history?.record(node, { cpu, memory, temperature }, atMs)
  }

  get(node: string): NodeLiveness | undefined {
    const entry = this.nodes.get(node)
    return entry && { ...entry, ...(entry.heartbeat ? { heartbeat: { ...entry.heartbeat } } : {}) }
  }

  lastSeenMs(node: string): number | undefined {
    return this.nodes.get(node)?.lastSeenMs
  }

  forget(node: string): void {
    this.nodes.delete(node)
    this.history?.forget(node)
  }

  /** Calls `visit` with each node's last heartbeat, not copied (get() copies): for reading many at once. */
  forEachHeartbeat(visit: (node: string, heartbeat: Readonly<HeartbeatFigures>) => void): void {
    for (const [node, entry] of this.nodes) if (entry.heartbeat) visit(node, entry.heartbeat)
  }

  nodeNames(): string[] {
    return [...this.nodes.keys()]
  }
}
