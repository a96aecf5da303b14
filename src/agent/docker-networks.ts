// The BridgeNetworks port on the Docker Engine API: list, create and remove the bridge networks
// that own pod subnets. Found by labels, as containers are, so an agent restart adopts its
// network and two clusters on one engine never touch each other's.

import type Docker from 'dockerode'
import { ContainerRuntimeError } from './errors.js'

export interface BridgeNetwork {
  id: string
  name: string
  labels: Record<string, string>
  /** The IPAM subnet: `10.42.3.0/24`. */
  subnet?: string
  /** The Linux bridge interface. */
  bridge: string
  mtu?: number
  /** Containers attached now. */
  containers: number
}

export interface BridgeNetworkSpec {
  name: string
  subnet: string
  gateway: string
  mtu: number
  labels: Record<string, string>
}

export interface BridgeNetworks {
  list(labels: Record<string, string>): Promise<BridgeNetwork[]>
  /** Docker's masquerade is off: the pod network masquerades only what leaves the cluster. */
  create(spec: BridgeNetworkSpec): Promise<BridgeNetwork>
  /** False when containers still use it (Docker refuses); a missing network is not an error. */
  remove(id: string): Promise<boolean>
}

export class DockerBridgeNetworks implements BridgeNetworks {
  constructor(private readonly docker: Docker) {}

  async list(labels: Record<string, string>): Promise<BridgeNetwork[]> {
    const found = await this.call('list networks', 'by labels', () =>
      this.docker.listNetworks({ filters: { label: Object.entries(labels).map(([k, v]) => `${k}=${v}`) } as any }),
    )
    const out: BridgeNetwork[] = []
    for (const n of found) {
      const inspected = await this.inspect(n.Id)
      if (inspected) out.push(inspected)
    }
    return out
  }

  async create(spec: BridgeNetworkSpec): Promise<BridgeNetwork> {
    const created = await this.call('create network', spec.name, () =>
      this.docker.createNetwork({
        Name: spec.name,
        Driver: 'bridge',
        CheckDuplicate: true,
        Labels: spec.labels,
        IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
        Options: {
          'com.docker.network.bridge.enable_ip_masquerade': 'false',
          'com.docker.network.driver.mtu': String(spec.mtu),
        },
      }),
    )
    const network = await this.inspect(created.id)
    if (!network) throw new ContainerRuntimeError('inspect network', spec.name, { cause: new Error('gone right after it was made') })
    return network
  }

  async remove(id: string): Promise<boolean> {
    try {
      await this.docker.getNetwork(id).remove()
      return true
    } catch (e) {
      const status = (e as { statusCode?: number }).statusCode
      if (status === 404) return true
      if (status === 403 || /active endpoints/i.test(String((e as Error).message))) return false
      throw new ContainerRuntimeError('remove network', id, { cause: e })
    }
  }

  private async inspect(id: string): Promise<BridgeNetwork | undefined> {
    let n: any
    try {
      n = await this.docker.getNetwork(id).inspect()
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined
      throw new ContainerRuntimeError('inspect network', id, { cause: e })
    }
    const options: Record<string, string> = n.Options ?? {}
    const mtu = Number(options['com.docker.network.driver.mtu'])
    return {
      id: n.Id,
      name: n.Name,
      labels: n.Labels ?? {},
      subnet: n.IPAM?.Config?.[0]?.Subnet,
      bridge: options['com.docker.network.bridge.name'] ?? `br-${String(n.Id).slice(0, 12)}`,
      ...(Number.isInteger(mtu) && mtu > 0 ? { mtu } : {}),
      containers: Object.keys(n.Containers ?? {}).length,
    }
  }

  private async call<T>(operation: string, target: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw new ContainerRuntimeError(operation, target, { cause: e })
    }
  }
}
