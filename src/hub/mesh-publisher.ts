// The cluster-wide mesh topic (`bramble/v1/cluster/mesh`): every node's public key, endpoint and
// pod subnets, retained, so an agent gets the whole mesh whenever it subscribes (also after a
// reconnect), and published again when a Node's mesh facts change or a Node goes. Nodes may read
// this topic and never write it (broker-acl.ts). Also: an agent's WireGuard report, checked and
// kept as Node annotations.

import { isDeepStrictEqual } from 'node:util'
import { KINDS } from '../api/kinds.js'
import { clusterTopic } from '../api/protocol.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { KubeObject } from '../api/types.js'
import { ANNOTATION_WIREGUARD_PUBLIC_KEY, meshFromNodes, wireGuardAnnotations, wireGuardReportProblems, type WireGuardReport } from '../mesh/wireguard-nodes.js'
import type { MeshMessage } from '../mesh/wireguard-peers.js'
import type { Informer } from './informer.js'
import { mutateObject } from './node-gateway-writes.js'
import { RetainedTopic } from './retained-topic.js'
import type { Registry } from './registry.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!

export interface MeshPublisherOptions {
  bus: Bus
  nodes: Informer
  clock: Clock
  logger: Logger
  /** Node changes within this window go out as one message. */
  coalesceMs?: number
}

export class MeshPublisher {
  private readonly topic: RetainedTopic<MeshMessage>

  constructor(private readonly o: MeshPublisherOptions) {
    const log = o.logger.child({ component: 'mesh-publisher' })
    this.topic = new RetainedTopic<MeshMessage>({
      bus: o.bus,
      topic: clusterTopic('mesh'),
      clock: o.clock,
      log,
      coalesceMs: o.coalesceMs ?? 100,
      what: 'the mesh',
      build: () => {
        const mesh = meshFromNodes(o.nodes.list())
        return { value: mesh, payload: JSON.stringify(mesh) }
      },
      same: isDeepStrictEqual,
      onPublished: (mesh) => log.info({ nodes: mesh.nodes.map((n) => n.node) }, 'published the mesh'),
    })
  }

  /** Call once the bus is connected and the node informer synced. */
  start(): void {
    this.o.nodes.onChange(() => this.topic.changed())
    this.topic.start()
  }

  stop(): Promise<void> {
    return this.topic.stop()
  }

  /** Resolves once the latest mesh is published (for tests). */
  idle(): Promise<void> {
    return this.topic.idle()
  }
}

/**
 * Keeps a node's WireGuard report as annotations on its Node, written only when they change.
 * A report that is not valid is refused with the field named, and nothing is written; so is a
 * public key another Node already holds (`nodes`): a node claiming someone else's key could
 * otherwise push that node out of every peer set.
 */
export async function recordWireGuardReport(registry: Registry, node: string, report: unknown, nodes: KubeObject[] = []): Promise<{ written: boolean; problems: string[] }> {
  const problems = wireGuardReportProblems(report)
  const holder = nodes.find((n) => n.metadata.name !== node && n.metadata.annotations?.[ANNOTATION_WIREGUARD_PUBLIC_KEY] === (report as WireGuardReport).publicKey)
  if (holder) problems.push(`wireguard.publicKey: already used by node ${holder.metadata.name}`)
  if (problems.length > 0) return { written: false, problems }
  const written = await mutateObject(registry, NODE, '', node, (current) => {
    const next = wireGuardAnnotations(current.metadata.annotations, report as WireGuardReport)
    if (isDeepStrictEqual(next, current.metadata.annotations ?? {})) return undefined
    current.metadata.annotations = next
    return current
  })
  return { written: written !== undefined, problems }
}
