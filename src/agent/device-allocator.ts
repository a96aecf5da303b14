// Which of the node's devices a pod gets for its `devices.bramble.dev/<class>` limits. A pod holds
// max(sum of its app containers, largest init container) devices per class, as the scheduler
// counts it; app containers take consecutive ones in spec order, init containers (which run
// before them) start from the first. Picks are stable: a pod keeps what it holds while the device
// is there (also across agent restarts: its containers' labels say what they hold), new picks are
// the first free devices in name order, and a pod's devices are free again once it is gone or done.

import { DEVICE_RESOURCE_PREFIX, deviceClassOfResource, deviceResource } from '../api/devices.js'
import { Quantity } from '../api/quantity.js'
import { LABELS, type ContainerInfo } from './container-runtime.js'
import type { HostDevices } from './host-devices.js'

/** Device paths per class. */
export type DeviceGrant = Record<string, string[]>

/** Device counts per class a container asks for (its limits; requests must equal them). */
export function containerDeviceWants(container: any): Record<string, number> {
  const wants: Record<string, number> = {}
  const asked = { ...(container?.resources?.limits ?? {}), ...(container?.resources?.requests ?? {}) }
  for (const [resource, value] of Object.entries(asked)) {
    const cls = deviceClassOfResource(resource)
    const n = Number(Quantity.tryParse(value)?.value() ?? 0)
    if (cls && n > 0) wants[cls] = n
  }
  return wants
}

export function podDeviceWants(podSpec: any): Record<string, number> {
  const wants: Record<string, number> = {}
  for (const c of podSpec?.containers ?? []) for (const [cls, n] of Object.entries(containerDeviceWants(c))) wants[cls] = (wants[cls] ?? 0) + n
  for (const c of podSpec?.initContainers ?? []) for (const [cls, n] of Object.entries(containerDeviceWants(c))) wants[cls] = Math.max(wants[cls] ?? 0, n)
  return wants
}

/** True when some container names a devices.bramble.dev resource. */
export function wantsDevices(podSpec: any): boolean {
  return [...(podSpec?.containers ?? []), ...(podSpec?.initContainers ?? [])].some((c: any) =>
    Object.keys({ ...(c?.resources?.limits ?? {}), ...(c?.resources?.requests ?? {}) }).some((r) => r.startsWith(DEVICE_RESOURCE_PREFIX)),
  )
}

/**
 * `want` devices out of `available` (in order): those of `previous` still there and not `taken`
 * first, then the first free ones; undefined when there are not enough.
 */
export function pickDevices(want: number, available: readonly string[], taken: ReadonlySet<string>, previous: readonly string[] = []): string[] | undefined {
  const free = available.filter((d) => !taken.has(d))
  const kept = previous.filter((d) => free.includes(d)).slice(0, want)
  const picked = [...kept, ...free.filter((d) => !kept.includes(d))].slice(0, want)
  if (picked.length < want) return undefined
  return picked.sort((a, b) => available.indexOf(a) - available.indexOf(b))
}

/** The part of the pod's grant one container gets. */
export function containerGrant(podSpec: any, containerName: string, grant: DeviceGrant): DeviceGrant {
  const init = (podSpec?.initContainers ?? []).find((c: any) => c?.name === containerName)
  if (init) return sliceGrant(grant, containerDeviceWants(init), {})
  const offsets: Record<string, number> = {}
  for (const c of podSpec?.containers ?? []) {
    const wants = containerDeviceWants(c)
    if (c?.name === containerName) return sliceGrant(grant, wants, offsets)
    for (const [cls, n] of Object.entries(wants)) offsets[cls] = (offsets[cls] ?? 0) + n
  }
  return {}
}

function sliceGrant(grant: DeviceGrant, wants: Record<string, number>, offsets: Record<string, number>): DeviceGrant {
  const out: DeviceGrant = {}
  for (const [cls, n] of Object.entries(wants)) out[cls] = (grant[cls] ?? []).slice(offsets[cls] ?? 0, (offsets[cls] ?? 0) + n)
  return out
}

/** `serial=/dev/ttyUSB0,/dev/ttyUSB1;video=/dev/video0`: a container's devices, as its label carries them. */
export function grantLabel(grant: DeviceGrant): string {
  return Object.keys(grant)
    .sort()
    .filter((cls) => grant[cls]!.length > 0)
    .map((cls) => `${cls}=${grant[cls]!.join(',')}`)
    .join(';')
}

export function parseGrantLabel(label: string | undefined): DeviceGrant {
  const grant: DeviceGrant = {}
  for (const part of (label ?? '').split(';')) {
    const [cls, paths] = part.split('=')
    if (cls && paths) grant[cls] = paths.split(',').filter(Boolean)
  }
  return grant
}

/** Why a pod cannot have its devices: `1 devices.bramble.dev/serial wanted, 0 free of 1 on this node`. */
function shortage(cls: string, want: number, available: readonly string[], taken: ReadonlySet<string>): string {
  const free = available.filter((d) => !taken.has(d)).length
  return `${want} ${deviceResource(cls)} wanted, ${free} free of ${available.length} on this node`
}

/** The node's grants, by pod uid. Synchronous, so two pods reconciled at once never get the same device. */
export class DeviceAllocator {
  private readonly held = new Map<string, DeviceGrant>()

  /** Takes over what containers already hold (an agent restarted): each pod's latest containers' labels. */
  adopt(containers: readonly ContainerInfo[]): void {
    for (const c of containers) {
      const uid = c.labels[LABELS.podUid]
      const label = c.labels[LABELS.devices]
      if (!uid || !label || this.held.has(uid)) continue
      const grant: DeviceGrant = {}
      for (const other of containers) {
        if (other.labels[LABELS.podUid] !== uid) continue
        for (const [cls, paths] of Object.entries(parseGrantLabel(other.labels[LABELS.devices]))) grant[cls] = [...new Set([...(grant[cls] ?? []), ...paths])]
      }
      this.held.set(uid, grant)
    }
  }

  /** The pod's devices per class, kept from before where possible, or why it cannot have them. */
  grant(uid: string, wants: Record<string, number>, devices: HostDevices): { grant: DeviceGrant } | { problem: string } {
    const previous = this.held.get(uid) ?? {}
    const grant: DeviceGrant = {}
    for (const cls of Object.keys(wants).sort()) {
      const available = devices[cls] ?? []
      const taken = this.takenByOthers(uid, cls)
      const picked = pickDevices(wants[cls]!, available, taken, previous[cls])
      if (!picked) return { problem: shortage(cls, wants[cls]!, available, taken) }
      grant[cls] = picked
    }
    this.held.set(uid, grant)
    return { grant }
  }

  release(uid: string): void {
    this.held.delete(uid)
  }

  private takenByOthers(uid: string, cls: string): Set<string> {
    const taken = new Set<string>()
    for (const [other, grant] of this.held) if (other !== uid) for (const d of grant[cls] ?? []) taken.add(d)
    return taken
  }
}
