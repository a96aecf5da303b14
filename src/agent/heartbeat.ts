// The node's pulse: `up/heartbeat` every interval while connected (kept in memory at the hub),
// and `up/node-status` whenever the status changed in more than its heartbeat times, so the hub
// writes the Node object only then.

import type { NodeStatusMessage, PodUsage } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { HostDevices } from './host-devices.js'
import type { HostInfo, HostUsage } from './host-info.js'
import { nodeLabels, nodeStatus, statusFingerprint, type NodeFacts, type NodeImage, type NodeStatus, type ResourceReserve } from './node-status.js'
import type { Uplink } from './agent-uplink.js'
import type { MeshReport } from './mesh-agent.js'

export interface HeartbeatOptions {
  hostInfo: HostInfo
  uplink: Uplink
  clock: Clock
  logger: Logger
  reserve: ResourceReserve
  intervalMs: number
  /** Facts that are not the host's: container runtime and agent versions. */
  extraFacts: Pick<NodeFacts, 'containerRuntimeVersion' | 'kubeletVersion'>
  /** Why the container runtime cannot run pods now; undefined while it can. */
  runtimeDown?: () => string | undefined
  /** Why image garbage collection cannot make room (DiskPressure); undefined while it can. */
  imageGcProblem?: () => string | undefined
  /** The engine's images as last listed (status.images); undefined before the first list. */
  images?: () => NodeImage[] | undefined
  /** The overlay's condition and public WireGuard facts, when the node runs the mesh; given the node's InternalIP now. */
  mesh?: (internalIP: string | undefined) => MeshReport
  /** The node's public key for Secrets in transit: with every node status, so a node joined before it existed reports it too. */
  secretsPublicKey?: string
  /** The running pods' usage, sent with every heartbeat (metrics.k8s.io, `top pods`). */
  podUsage?: () => Promise<PodUsage[]>
  /** The node's devices, looked at with every node status: a stick plugged in or out is advertised. */
  devices?: () => Promise<HostDevices>
}

export class Heartbeat {
  private seq = 0
  private timer: { cancel(): void } | undefined
  private last: NodeStatus | undefined
  private published: string | undefined
  private readonly startedAt: number
  private stopped = false
  /** The host's usage as last sent (the agent's /metrics reads it). */
  lastUsage: HostUsage | undefined

  constructor(private readonly o: HeartbeatOptions) {
    this.startedAt = o.clock.monotonic()
  }

  start(): void {
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    this.timer?.cancel()
  }

  /** The node status now; publishes it when it changed, or always with `force` (a new session). */
  async checkNodeStatus(force = false): Promise<NodeStatus> {
    const runtimeDown = this.o.runtimeDown?.()
    const devices = await this.o.devices?.().catch((err) => {
      this.o.logger.warn({ component: 'heartbeat', err: (err as Error).message }, "could not read the node's devices")
      return undefined
    })
    const imageGcProblem = this.o.imageGcProblem?.()
    const images = this.o.images?.()
    const facts: NodeFacts = { ...(await this.o.hostInfo.facts()), ...this.o.extraFacts, ...(runtimeDown ? { runtimeDown } : {}), ...(devices ? { devices } : {}), ...(imageGcProblem ? { imageGcProblem } : {}), ...(images ? { images } : {}) }
    const mesh = this.o.mesh?.(facts.addresses[0])
    const status = nodeStatus(facts, this.o.reserve, this.o.clock.now(), this.last, mesh ? [mesh.condition] : [])
    this.last = status
    const fingerprint = statusFingerprint(status) + JSON.stringify(mesh?.wireguard ?? null)
    if (force || fingerprint !== this.published) {
      this.published = fingerprint
      // `labels` rides along: the hub keeps the Node's devices.bramble.dev labels in step with them.
      await this.o.uplink.publish('node-status', { status: status as unknown as Record<string, unknown>, labels: nodeLabels(facts), ...(mesh ? { wireguard: mesh.wireguard } : {}), ...(this.o.secretsPublicKey ? { secretsPublicKey: this.o.secretsPublicKey } : {}) } satisfies NodeStatusMessage)
    }
    return status
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = this.o.clock.setTimeout(() => {
      void this.beat()
        .catch((err) => this.o.logger.warn({ component: 'heartbeat', err: (err as Error).message }, 'heartbeat failed'))
        .finally(() => this.schedule())
    }, this.o.intervalMs)
  }

  private async beat(): Promise<void> {
    if (!this.o.uplink.connected) return
    const usage = await this.o.hostInfo.usage()
    this.lastUsage = usage
    const pods = await this.o.podUsage?.().catch((err) => {
      this.o.logger.warn({ component: 'heartbeat', err: (err as Error).message }, "could not read the pods' usage")
      return undefined
    })
    await this.o.uplink.publish('heartbeat', {
      seq: ++this.seq,
      uptimeMs: Math.round(this.o.clock.monotonic() - this.startedAt),
      cpu: usage.cpu,
      memory: usage.memoryUsedBytes,
      ...(usage.temperatureC !== undefined ? { temperature: usage.temperatureC } : {}),
      ...(pods ? { pods } : {}),
    })
    await this.checkNodeStatus()
  }
}
