// Leases each Node a pod subnet of the cluster CIDR (a /24 of 10.42.0.0/16 by default), as
// Kubernetes' node IPAM controller does: the lease is the Node's own `spec.podCIDR` (and
// `spec.podCIDRs`), so it lives in LMDB with the Node, survives hub restarts and goes when the
// Node is deleted. The allocator in memory is rebuilt from the Nodes at start; it hands out
// blocks synchronously, so Nodes registering at the same moment never get the same subnet.
//
// Level-triggered (STYLE.md §1): a Node change queues its name; the worker gives a Node without a
// subnet the lowest free one. A subnet set by hand is kept if it is free and inside the range;
// otherwise the Node gets a Warning Event (CIDRNotAvailable) and keeps what it has.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { CidrInvalidError, IpamConflictError, IpamExhaustedError } from '../mesh/errors.js'
import { CidrAllocator } from '../mesh/ipam.js'
import { ANNOTATION_CLUSTER_CIDR } from '../mesh/pod-network.js'
import type { EventRecorder } from './event-recorder.js'
import type { Informer } from './informer.js'
import { mutateObject } from './node-gateway-writes.js'
import type { Registry } from './registry.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!

export const DEFAULT_CLUSTER_CIDR = '10.42.0.0/16'
export const DEFAULT_NODE_CIDR_MASK_SIZE = 24

export interface PodCidrAllocatorOptions {
  registry: Registry
  nodes: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
  /** --cluster-cidr */
  clusterCidr?: string
  /** --node-cidr-mask-size */
  nodeCidrMaskSize?: number
}

/** A Node's pod subnet, if it has one. */
export function podCidrOf(node: KubeObject): string | undefined {
  const cidr = node.spec?.podCIDR
  return typeof cidr === 'string' && cidr !== '' ? cidr : undefined
}

export class PodCidrAllocator {
  private readonly allocator: CidrAllocator
  private readonly queue: WorkQueue<string>
  private readonly log: Logger
  /** Node name → subnet handed out but not yet seen written on the Node. */
  private readonly pending = new Map<string, string>()
  /** Nodes already told their subnet cannot be kept (one Event per subnet, not per change). */
  private readonly refused = new Map<string, string>()

  constructor(private readonly o: PodCidrAllocatorOptions) {
    this.log = o.logger.child({ component: 'pod-cidr-allocator' })
    this.allocator = new CidrAllocator({ range: o.clusterCidr ?? DEFAULT_CLUSTER_CIDR, blockPrefix: o.nodeCidrMaskSize ?? DEFAULT_NODE_CIDR_MASK_SIZE, what: 'pod subnet' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'leasing a pod subnet failed; will retry') })
    o.nodes.onChange((type, node, previous) => {
      const name = node.metadata.name!
      if (type === 'DELETED') {
        this.free(name, [podCidrOf(node), previous && podCidrOf(previous), this.pending.get(name)])
        return
      }
      // Claimed at once, in event order, so no worker hands the subnet to another Node meanwhile.
      this.claimQuietly(node)
      this.queue.add(name)
    })
  }

  /** Claims the subnets of the Nodes already known, then starts leasing. Call after the informer started. */
  start(): void {
    for (const node of this.o.nodes.list()) this.claimQuietly(node)
    this.queue.start((name) => this.reconcile(name))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** Resolves once no Node is queued or being leased a subnet. */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  private claimQuietly(node: KubeObject): void {
    const cidr = podCidrOf(node)
    if (!cidr) return
    try {
      this.allocator.claim(cidr, node.metadata.name!)
    } catch {
      // The worker reports it.
    }
  }

  private free(name: string, cidrs: Array<string | undefined>): void {
    for (const cidr of new Set(cidrs)) {
      if (cidr && this.allocator.holderOf(cidr) === name && this.allocator.release(cidr)) this.log.info({ node: name, podCIDR: cidr }, 'node deleted: its pod subnet is free')
    }
    this.pending.delete(name)
    this.refused.delete(name)
    // Room again for Nodes the range had none for.
    for (const other of this.o.nodes.list()) if (!podCidrOf(other) && other.metadata.name !== name) this.queue.add(other.metadata.name!)
  }

  private async reconcile(name: string): Promise<void> {
    const node = this.o.nodes.get(name)
    if (!node) return
    const current = podCidrOf(node)
    if (current) {
      // Set by hand while ours was on its way: ours goes back.
      const promised = this.pending.get(name)
      this.pending.delete(name)
      if (promised && promised !== current && this.allocator.holderOf(promised) === name) this.allocator.release(promised)
      this.checkKept(node, current)
      const leased = this.allocator.holderOf(current) === name
      const annotated = node.metadata.annotations?.[ANNOTATION_CLUSTER_CIDR] === this.allocator.range.text
      if (!Array.isArray(node.spec?.podCIDRs) || node.spec.podCIDRs[0] !== current || (leased && !annotated)) await this.write(name, current)
      return
    }
    let cidr = this.pending.get(name)
    if (!cidr) {
      try {
        cidr = this.allocator.allocate(name)
      } catch (err) {
        if (!(err instanceof IpamExhaustedError)) throw err
        this.refuse(node, 'exhausted', `Node ${name} has no pod subnet: ${err.message}`)
        return // a deleted Node frees one and queues this one again
      }
      this.pending.set(name, cidr)
    }
    // A Node deleted meanwhile frees the subnet through its DELETED event.
    if (await this.write(name, cidr)) this.log.info({ node: name, podCIDR: cidr }, 'leased the node a pod subnet')
  }

  /** Writes the subnet on the Node unless it has another one by now (set by hand meanwhile). */
  private write(name: string, cidr: string): Promise<KubeObject | undefined> {
    return mutateObject(this.o.registry, NODE, '', name, (current) => {
      const held = podCidrOf(current)
      if (held && held !== cidr) return undefined
      current.spec = { ...current.spec, podCIDR: cidr, podCIDRs: [cidr] }
      if (this.allocator.holderOf(cidr) === name) current.metadata.annotations = { ...current.metadata.annotations, [ANNOTATION_CLUSTER_CIDR]: this.allocator.range.text }
      return current
    })
  }

  /** A subnet on the Node that this allocator cannot hold for it: told once with a Warning Event. */
  private checkKept(node: KubeObject, cidr: string): void {
    const name = node.metadata.name!
    if (this.allocator.holderOf(cidr) === name) return
    try {
      this.allocator.claim(cidr, name)
      this.refused.delete(name)
    } catch (err) {
      if (!(err instanceof IpamConflictError) && !(err instanceof CidrInvalidError)) throw err
      this.refuse(node, cidr, `Node ${name} keeps pod subnet ${cidr}, which cannot be leased to it (${err.message}); delete the Node and let it join again to get a free one`)
    }
  }

  private refuse(node: KubeObject, what: string, message: string): void {
    const name = node.metadata.name!
    if (this.refused.get(name) === what) return
    this.refused.set(name, what)
    this.log.warn({ node: name }, message)
    void this.o.events.record(node, 'Warning', 'CIDRNotAvailable', message)
  }
}
