// HostInfo for a simulated node: the size, architecture and address bench/sched gives it, instead
// of what the bench machine reports for itself. Usage stays flat and light.

import type { HostFacts, HostInfo, HostUsage } from '../src/agent/host-info.js'

export interface SimulatedNodeSpec {
  /** The node name (a DNS-1123 label). */
  name: string
  /** Kubernetes architecture: amd64, arm64, ... */
  arch: string
  cpuCores: number
  memoryBytes: number
  /** The node's InternalIP. */
  address: string
  /** Set on the Node by the bench once it joined, as `kubectl label` would. */
  labels: Record<string, string>
  /** Set on the Node by the bench once it joined, as `kubectl taint` would. */
  taints: Array<{ key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }>
}

const GiB = 1024 ** 3

export class SimulatedHostInfo implements HostInfo {
  constructor(private readonly spec: SimulatedNodeSpec) {}

  async facts(): Promise<HostFacts> {
    const s = this.spec
    return {
      architecture: s.arch,
      operatingSystem: 'linux',
      osImage: 'Bramble simulated node (bench/sched)',
      kernelVersion: 'simulated',
      hostname: s.name,
      addresses: [s.address],
      cpu: { cores: s.cpuCores, model: 'simulated' },
      memory: { totalBytes: s.memoryBytes, availableBytes: Math.floor(s.memoryBytes * 0.8) },
      disk: { totalBytes: 64 * GiB, freeBytes: 48 * GiB },
    }
  }

  async usage(): Promise<HostUsage> {
    return { cpu: 0.05, memoryUsedBytes: Math.floor(this.spec.memoryBytes * 0.2) }
  }
}
