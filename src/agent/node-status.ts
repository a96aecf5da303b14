// A Node's status and labels from the host's facts, as Kubernetes writes them. Pure: the agent
// publishes the result only when something other than heartbeat times changed, so the hub writes
// the Node object only then.

import { deviceResource } from '../api/devices.js'
import type { HostDevices } from './host-devices.js'
import type { DiskFacts, HostFacts } from './host-info.js'

export interface NodeFacts extends HostFacts {
  /** `docker://<version>` */
  containerRuntimeVersion: string
  /** `bramble-<version>` */
  kubeletVersion: string
  /** Why the container runtime cannot run pods now (`container runtime is down: ...`); absent while it can. */
  runtimeDown?: string
  /** The node's devices by class (host-devices.ts): advertised as devices.bramble.dev/<class> resources and labels. */
  devices?: HostDevices
  /** Image garbage collection could not bring the image filesystem below its high threshold (image-gc.ts): DiskPressure. */
  imageGcProblem?: string
  /** The engine's images, largest first, at most MAX_REPORTED_IMAGES (the kubelet's nodeStatusMaxImages). */
  images?: NodeImage[]
}

export interface NodeImage {
  names: string[]
  sizeBytes: number
}

export const MAX_REPORTED_IMAGES = 50

/** What the node keeps for itself and the system: allocatable = capacity − reserve. */
export interface ResourceReserve {
  cpuMillis: number
  memoryBytes: number
}

export interface NodeCondition {
  type: string
  status: 'True' | 'False' | 'Unknown'
  reason: string
  message: string
  lastHeartbeatTime: string
  lastTransitionTime: string
}

export interface NodeStatus {
  capacity: Record<string, string>
  allocatable: Record<string, string>
  conditions: NodeCondition[]
  addresses: Array<{ type: 'InternalIP' | 'Hostname'; address: string }>
  /** What `image copy` and the hub's image sharing read to find a node that has an image. */
  images?: NodeImage[]
  nodeInfo: {
    architecture: string
    operatingSystem: string
    osImage: string
    kernelVersion: string
    containerRuntimeVersion: string
    kubeletVersion: string
  }
}

export const MAX_PODS = 110
/** MemoryPressure when less than this share of memory is available. */
export const MEMORY_PRESSURE_BELOW = 0.05
/** DiskPressure when less than this share of the agent's or the engine's filesystem is free (Kubernetes' nodefs.available<10%). */
export const DISK_PRESSURE_BELOW = 0.1

const KiB = 1024

function ki(bytes: number): string {
  return `${Math.max(0, Math.floor(bytes / KiB))}Ki`
}

export function nodeLabels(facts: Pick<HostFacts, 'architecture' | 'operatingSystem' | 'hostname'> & Pick<NodeFacts, 'devices'>): Record<string, string> {
  const labels: Record<string, string> = {
    'kubernetes.io/arch': facts.architecture,
    'kubernetes.io/os': facts.operatingSystem,
    'kubernetes.io/hostname': facts.hostname.toLowerCase(),
  }
  for (const [cls, found] of Object.entries(facts.devices ?? {})) if (found.length > 0) labels[deviceResource(cls)] = 'true'
  return labels
}

/** `devices.bramble.dev/serial: "2"` per class the node has; a device is whole, so allocatable equals capacity. */
function deviceCapacity(devices: HostDevices | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const cls of Object.keys(devices ?? {}).sort()) if (devices![cls]!.length > 0) out[deviceResource(cls)] = String(devices![cls]!.length)
  return out
}

/**
 * `extraConditions` are conditions other parts of the agent own (the mesh's NetworkUnavailable),
 * given without times: their transition times are kept here like the others'.
 */
export function nodeStatus(facts: NodeFacts, reserve: ResourceReserve, now: number, previous?: NodeStatus, extraConditions: Array<Pick<NodeCondition, 'type' | 'status' | 'reason' | 'message'>> = []): NodeStatus {
  const at = new Date(now).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const condition = (type: string, status: NodeCondition['status'], reason: string, message: string): NodeCondition => {
    const before = previous?.conditions.find((c) => c.type === type)
    const lastTransitionTime = before && before.status === status ? before.lastTransitionTime : at
    return { type, status, reason, message, lastHeartbeatTime: at, lastTransitionTime }
  }
  const memoryLow = facts.memory.totalBytes > 0 && facts.memory.availableBytes / facts.memory.totalBytes < MEMORY_PRESSURE_BELOW
  const lowDisks = [facts.disk, ...(facts.imageDisk ? [facts.imageDisk] : [])].filter(diskLow)
  const throttled = facts.throttling?.throttledNow === true

  const conditions: NodeCondition[] = [
    // As the kubelet says it: Ready=False, KubeletNotReady, "container runtime is down".
    facts.runtimeDown
      ? condition('Ready', 'False', 'KubeletNotReady', facts.runtimeDown)
      : condition('Ready', 'True', 'KubeletReady', 'bramble agent is posting ready status'),
    memoryLow
      ? condition('MemoryPressure', 'True', 'KubeletHasInsufficientMemory', `less than ${MEMORY_PRESSURE_BELOW * 100}% of memory is available`)
      : condition('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'node has sufficient memory available'),
    lowDisks.length > 0 || facts.imageGcProblem
      ? condition('DiskPressure', 'True', 'KubeletHasDiskPressure', [...(lowDisks.length > 0 ? [diskPressureMessage(lowDisks)] : []), ...(facts.imageGcProblem ? [facts.imageGcProblem] : [])].join('; '))
      : condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'node has no disk pressure'),
    facts.throttling
      ? throttled
        ? condition('ThermalThrottling', 'True', 'Throttled', `the SoC is throttled (get_throttled=${facts.throttling.raw}); check cooling and the power supply`)
        : condition('ThermalThrottling', 'False', 'NotThrottled', 'the SoC is not throttled')
      : condition('ThermalThrottling', 'False', 'NotReported', 'the board reports no throttling'),
    ...extraConditions.map((c) => condition(c.type, c.status, c.reason, c.message)),
  ]

  const cpuMillis = facts.cpu.cores * 1000
  return {
    capacity: {
      cpu: String(facts.cpu.cores),
      memory: ki(facts.memory.totalBytes),
      pods: String(MAX_PODS),
      'ephemeral-storage': ki(facts.disk.totalBytes),
      ...deviceCapacity(facts.devices),
    },
    allocatable: {
      cpu: `${Math.max(0, cpuMillis - reserve.cpuMillis)}m`,
      memory: ki(facts.memory.totalBytes - reserve.memoryBytes),
      pods: String(MAX_PODS),
      'ephemeral-storage': ki(facts.disk.totalBytes),
      ...deviceCapacity(facts.devices),
    },
    conditions,
    ...(facts.images ? { images: facts.images } : {}),
    addresses: [
      ...(facts.addresses[0] ? [{ type: 'InternalIP' as const, address: facts.addresses[0] }] : []),
      { type: 'Hostname' as const, address: facts.hostname.toLowerCase() },
    ],
    nodeInfo: {
      architecture: facts.architecture,
      operatingSystem: facts.operatingSystem,
      osImage: facts.osImage,
      kernelVersion: facts.kernelVersion,
      containerRuntimeVersion: facts.containerRuntimeVersion,
      kubeletVersion: facts.kubeletVersion,
    },
  }
}

function diskLow(disk: DiskFacts): boolean {
  return disk.totalBytes > 0 && disk.freeBytes / disk.totalBytes < DISK_PRESSURE_BELOW
}

/** Names each filesystem short of room, its free bytes and its size. */
export function diskPressureMessage(disks: DiskFacts[]): string {
  const each = disks.map((d) => `${d.path ?? 'the root filesystem'} has ${d.freeBytes} bytes free of ${d.totalBytes} (${((100 * d.freeBytes) / d.totalBytes).toFixed(1)}%)`)
  return `${each.join('; ')}: less than ${DISK_PRESSURE_BELOW * 100}% free; new pods go elsewhere until space is freed`
}

/** Equal for two statuses that differ only in heartbeat times: publish only when this changes. */
export function statusFingerprint(status: NodeStatus): string {
  return JSON.stringify({ ...status, conditions: status.conditions.map(({ lastHeartbeatTime: _h, ...c }) => c) })
}
