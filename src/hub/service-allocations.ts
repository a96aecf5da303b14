// Cluster IPs and node ports of Services, leased in the store as the Kubernetes API server does
// with its IPAddress objects: one record per address (and per node port), keyed by the address,
// so the store's create-if-absent makes two concurrent Services never get the same one. Records
// name the Service (and its uid) holding them; they are freed when it goes, and `repair` at start
// drops records of Services that are gone (a crash between lease and write) and restores missing ones.

import type { FieldError, KubeObject } from '../api/types.js'
import { parseCidr, type Cidr } from '../lib/ipv4-cidr.js'
import { NODE_PORT_RANGE, assignableCount, firstFreeIp, firstFreeNodePort, isAssignable } from '../mesh/service-ips.js'
import type { Logger } from '../lib/logger.js'
import { invalid } from './api-errors.js'
import { StoreExistsError, StoreNotFoundError } from './errors.js'
import type { ObjectKey, Store } from './store.js'

export const SERVICE_IP_RESOURCE = 'bramble.io/serviceipleases'
export const NODE_PORT_RESOURCE = 'bramble.io/nodeportleases'
export const DEFAULT_SERVICE_CIDR = '10.43.0.0/16'
const SERVICES = 'services'
/** How long a lease may wait for its Service before repair drops it. */
const REPAIR_GRACE_MS = 60_000

interface Holder {
  namespace: string
  name: string
  uid: string
}

/** What a Service holds: its cluster IP (unless headless or ExternalName) and its node ports. */
interface Wanted {
  clusterIP?: string
  nodePorts: number[]
}

const ipKey = (ip: string): ObjectKey => ({ resource: SERVICE_IP_RESOURCE, namespace: '', name: ip })
const portKey = (port: number): ObjectKey => ({ resource: NODE_PORT_RESOURCE, namespace: '', name: String(port) })

function usesNodePorts(spec: any): boolean {
  return spec?.type === 'NodePort' || spec?.type === 'LoadBalancer'
}

function needsClusterIP(spec: any): boolean {
  return spec?.type !== 'ExternalName' && spec?.clusterIP !== 'None'
}

export class ServiceAllocations {
  readonly cidr: Cidr

  constructor(
    private readonly store: Store,
    private readonly logger: Logger,
    serviceCidr: string = DEFAULT_SERVICE_CIDR,
  ) {
    this.cidr = parseCidr(serviceCidr)
  }

  /**
   * Fills spec.clusterIP(s) and the node ports of a new Service, leasing each in the store (none
   * when dryRun). A requested address or port outside the range or already leased is a 422 naming
   * the field. On failure, nothing stays leased.
   */
  async allocate(service: KubeObject, dryRun: boolean, previous?: KubeObject): Promise<KubeObject> {
    const spec = service.spec ?? {}
    const holder: Holder = { namespace: service.metadata.namespace ?? '', name: service.metadata.name!, uid: service.metadata.uid ?? '' }
    const kept = previous ? this.held(previous) : { nodePorts: [] }
    const leased: ObjectKey[] = []
    const errors: FieldError[] = []
    const name = service.metadata.name ?? ''
    try {
      if (spec.clusterIP === 'None') spec.clusterIPs = ['None']
      else if (!needsClusterIP(spec)) {
        delete spec.clusterIP
        delete spec.clusterIPs
      } else if (previous && kept.clusterIP && (spec.clusterIP === undefined || spec.clusterIP === '')) {
        spec.clusterIP = kept.clusterIP
        spec.clusterIPs = [kept.clusterIP]
      } else if (spec.clusterIP === kept.clusterIP && kept.clusterIP !== undefined) {
        spec.clusterIPs = [kept.clusterIP]
      } else {
        const requested = typeof spec.clusterIP === 'string' && spec.clusterIP !== '' ? spec.clusterIP : undefined
        const ip = await this.leaseIp(requested, holder, dryRun, errors)
        if (ip) {
          if (!dryRun) leased.push(ipKey(ip))
          spec.clusterIP = ip
          spec.clusterIPs = [ip]
        }
      }
      const ports: any[] = Array.isArray(spec.ports) ? spec.ports : []
      if (usesNodePorts(spec)) {
        const previousPorts: any[] = Array.isArray(previous?.spec?.ports) ? previous!.spec.ports : []
        for (const [i, port] of ports.entries()) {
          const requested = typeof port.nodePort === 'number' && port.nodePort !== 0 ? port.nodePort : undefined
          // An update that leaves a node port out keeps the one the same port had.
          const same = previousPorts.find((p) => p.port === port.port && (p.protocol ?? 'TCP') === (port.protocol ?? 'TCP'))
          const want = requested ?? (same && kept.nodePorts.includes(same.nodePort) ? same.nodePort : undefined)
          if (want !== undefined && kept.nodePorts.includes(want)) {
            port.nodePort = want
            continue
          }
          const got = await this.leaseNodePort(want, holder, dryRun, errors, `spec.ports[${i}].nodePort`)
          if (got !== undefined) {
            if (!dryRun) leased.push(portKey(got))
            port.nodePort = got
          }
        }
      } else {
        for (const port of ports) delete port.nodePort
      }
      if (errors.length > 0) throw invalid('', 'Service', name, errors)
      return service
    } catch (err) {
      await this.drop(leased)
      throw err
    }
  }

  /** Frees what `service` holds and `next` (its updated self, if any) no longer does. */
  async release(service: KubeObject, next?: KubeObject): Promise<void> {
    const was = this.held(service)
    const now = next ? this.held(next) : { nodePorts: [] }
    const keys: ObjectKey[] = []
    if (was.clusterIP && was.clusterIP !== now.clusterIP) keys.push(ipKey(was.clusterIP))
    for (const p of was.nodePorts) if (!now.nodePorts.includes(p)) keys.push(portKey(p))
    await this.drop(keys, service.metadata.uid)
  }

  /**
   * Makes the leases match the stored Services: leases whose Service is gone (or another
   * incarnation) are dropped, and a Service's address or port without a lease gets one back.
   * Given `nowMs`, a lease made within the last minute stays: on hubs sharing a store (etcd),
   * another hub may have leased it for a Service it is about to write.
   */
  async repair(nowMs?: number): Promise<void> {
    const { items: services } = await this.store.list({ resource: SERVICES })
    const owners = new Map<string, string>()
    for (const s of services) {
      const wanted = this.held(s)
      const owner = s.metadata.uid ?? ''
      if (wanted.clusterIP) owners.set(`ip/${wanted.clusterIP}`, owner)
      for (const p of wanted.nodePorts) owners.set(`port/${p}`, owner)
    }
    let dropped = 0
    for (const [resource, prefix] of [
      [SERVICE_IP_RESOURCE, 'ip'],
      [NODE_PORT_RESOURCE, 'port'],
    ] as const) {
      const { items } = await this.store.list({ resource })
      for (const lease of items) {
        const id = `${prefix}/${lease.metadata.name}`
        if (owners.get(id) === (lease.spec?.uid ?? '')) {
          owners.delete(id)
          continue
        }
        if (nowMs !== undefined && nowMs - Date.parse(lease.metadata.creationTimestamp ?? '') < REPAIR_GRACE_MS) continue
        await this.store.delete({ resource, namespace: '', name: lease.metadata.name! }).catch(ignoreMissing)
        dropped++
      }
    }
    for (const [id, uid] of owners) {
      const s = services.find((x) => x.metadata.uid === uid)!
      const [kind, value] = id.split('/') as [string, string]
      const key = kind === 'ip' ? ipKey(value) : portKey(Number(value))
      await this.store.create(key, leaseObject(key, holderOf(s))).catch(ignoreExists)
    }
    if (dropped > 0 || owners.size > 0) this.logger.info({ component: 'service-allocations', dropped, restored: owners.size }, 'service address leases repaired')
  }

  private held(service: KubeObject): Wanted {
    const spec = service.spec ?? {}
    const ip = typeof spec.clusterIP === 'string' && spec.clusterIP !== 'None' && spec.clusterIP !== '' && spec.type !== 'ExternalName' ? spec.clusterIP : undefined
    const nodePorts = usesNodePorts(spec) ? (Array.isArray(spec.ports) ? spec.ports : []).map((p: any) => p.nodePort).filter((p: unknown) => typeof p === 'number') : []
    return { ...(ip ? { clusterIP: ip } : {}), nodePorts }
  }

  private async leaseIp(requested: string | undefined, holder: Holder, dryRun: boolean, errors: FieldError[]): Promise<string | undefined> {
    if (requested !== undefined) {
      if (!isAssignable(this.cidr, requested)) {
        errors.push({ field: 'spec.clusterIP', type: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(requested)}: provided IP is not in the valid range. The range of valid IPs is ${this.cidr.text}` })
        return undefined
      }
      if (await this.take(ipKey(requested), holder, dryRun)) return requested
      errors.push({ field: 'spec.clusterIP', type: 'FieldValueInvalid', message: `Invalid value: ${JSON.stringify(requested)}: provided IP is already allocated` })
      return undefined
    }
    // A concurrent create may take the address first: then the next free one is tried.
    const taken = new Set((await this.store.list({ resource: SERVICE_IP_RESOURCE })).items.map((i) => i.metadata.name!))
    for (let ip = firstFreeIp(this.cidr, taken); ip !== undefined; ip = firstFreeIp(this.cidr, taken)) {
      if (await this.take(ipKey(ip), holder, dryRun)) return ip
      taken.add(ip)
    }
    errors.push({ field: 'spec.clusterIP', type: 'FieldValueInvalid', message: `Invalid value: "": failed to allocate a service IP: the service CIDR ${this.cidr.text} is full (${assignableCount(this.cidr)} addresses)` })
    return undefined
  }

  private async leaseNodePort(requested: number | undefined, holder: Holder, dryRun: boolean, errors: FieldError[], field: string): Promise<number | undefined> {
    if (requested !== undefined) {
      if (await this.take(portKey(requested), holder, dryRun)) return requested
      errors.push({ field, type: 'FieldValueInvalid', message: `Invalid value: ${requested}: provided port is already allocated` })
      return undefined
    }
    const taken = new Set((await this.store.list({ resource: NODE_PORT_RESOURCE })).items.map((i) => Number(i.metadata.name)))
    for (let port = firstFreeNodePort(taken); port !== undefined; port = firstFreeNodePort(taken)) {
      if (await this.take(portKey(port), holder, dryRun)) return port
      taken.add(port)
    }
    errors.push({ field, type: 'FieldValueInvalid', message: `Invalid value: 0: failed to allocate a node port: the range ${NODE_PORT_RANGE.min}-${NODE_PORT_RANGE.max} is full` })
    return undefined
  }

  /** Leases `key` for `holder`; false when someone holds it. A dry run only looks. */
  private async take(key: ObjectKey, holder: Holder, dryRun: boolean): Promise<boolean> {
    if (dryRun) return (await this.store.get(key)) === undefined
    try {
      await this.store.create(key, leaseObject(key, holder))
      return true
    } catch (err) {
      if (err instanceof StoreExistsError) return false
      throw err
    }
  }

  /** Deletes leases, only those of `uid` when given (a lease another Service took since stays). */
  private async drop(keys: ObjectKey[], uid?: string): Promise<void> {
    for (const key of keys) {
      if (uid !== undefined) {
        const lease = await this.store.get(key)
        if (!lease || (lease.spec?.uid && lease.spec.uid !== uid)) continue
      }
      await this.store.delete(key).catch(ignoreMissing)
    }
  }
}

function holderOf(s: KubeObject): Holder {
  return { namespace: s.metadata.namespace ?? '', name: s.metadata.name!, uid: s.metadata.uid ?? '' }
}

function leaseObject(key: ObjectKey, holder: Holder): KubeObject {
  return { apiVersion: 'bramble.io/v1', kind: 'ServiceAddressLease', metadata: { name: key.name }, spec: { ...holder } }
}

function ignoreMissing(err: unknown): void {
  if (!(err instanceof StoreNotFoundError)) throw err
}

function ignoreExists(err: unknown): void {
  if (!(err instanceof StoreExistsError)) throw err
}
