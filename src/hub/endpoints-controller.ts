// The Endpoints controller: for each Service with a selector, an Endpoints object of the same name
// listing the selected pods' IPs, ready ones under `addresses` and the others under
// `notReadyAddresses`, with each Service port's targetPort resolved (by number, or by the name of
// a container port). Level-triggered: a change to a Service, to its Endpoints or to a pod only
// queues the Service's key; the worker compares what is stored with what should be and writes
// the difference. Services without a selector keep Endpoints their user writes.

import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'
import { isReady } from './replicaset-controller.js'

const ENDPOINTS = KINDS.find((k) => k.kind === 'Endpoints')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export interface EndpointsControllerOptions {
  registry: Registry
  services: Informer
  endpoints: Informer
  pods: Informer
  clock: Clock
  logger: Logger
}

interface EndpointAddress {
  ip: string
  /** The pod's spec.hostname, when its spec.subdomain names this Service: DNS answers `<hostname>.<svc>.<ns>.svc`. */
  hostname?: string
  nodeName?: string
  targetRef: { kind: 'Pod'; namespace: string; name: string; uid: string }
}

interface EndpointPort {
  name?: string
  port: number
  protocol: string
}

export interface EndpointSubset {
  addresses?: EndpointAddress[]
  notReadyAddresses?: EndpointAddress[]
  ports: EndpointPort[]
}

function selectorOf(service: KubeObject): Record<string, string> | undefined {
  const s = service.spec?.selector
  return s && typeof s === 'object' && Object.keys(s).length > 0 ? s : undefined
}

function selects(selector: Record<string, string>, pod: KubeObject): boolean {
  const labels = pod.metadata.labels ?? {}
  return Object.entries(selector).every(([k, v]) => labels[k] === v)
}

/** The pod port a Service port reaches: targetPort as a number, or the container port of that name and protocol. */
export function resolveTargetPort(servicePort: any, pod: KubeObject): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port
  if (typeof target === 'number') return target
  if (/^\d+$/.test(String(target))) return Number(target)
  const protocol = servicePort.protocol ?? 'TCP'
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort
  }
  return undefined
}

/**
 * The subsets of a Service's Endpoints: pods that have an IP, are not finished and not being
 * deleted, grouped by the ports they resolve to (a pod lacking a named port is left out of that
 * port), addresses sorted by IP so that equal states compare equal. An address carries its pod's
 * hostname when the pod's subdomain is the Service (a StatefulSet's pods and its serviceName).
 */
export function endpointSubsets(service: KubeObject, pods: KubeObject[]): EndpointSubset[] {
  const selector = selectorOf(service)
  if (!selector) return []
  const publishNotReady = service.spec?.publishNotReadyAddresses === true
  const groups = new Map<string, EndpointSubset>()
  for (const pod of pods) {
    if (pod.metadata.namespace !== service.metadata.namespace || !selects(selector, pod)) continue
    if (isTerminal(pod) || pod.metadata.deletionTimestamp || !pod.status?.podIP) continue
    const ports: EndpointPort[] = []
    for (const sp of service.spec?.ports ?? []) {
      const port = resolveTargetPort(sp, pod)
      if (port !== undefined) ports.push({ ...(sp.name ? { name: sp.name } : {}), port, protocol: sp.protocol ?? 'TCP' })
    }
    // A headless Service may have no ports; its pods are still its endpoints (DNS answers them).
    if (ports.length === 0 && (service.spec?.ports ?? []).length > 0) continue
    const key = JSON.stringify(ports)
    const subset = groups.get(key) ?? { ports }
    groups.set(key, subset)
    const address: EndpointAddress = {
      ip: pod.status.podIP,
      ...(pod.spec?.hostname && pod.spec.subdomain === service.metadata.name ? { hostname: pod.spec.hostname } : {}),
      ...(pod.spec?.nodeName ? { nodeName: pod.spec.nodeName } : {}),
      targetRef: { kind: 'Pod', namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! },
    }
    const list = isReady(pod) || publishNotReady ? 'addresses' : 'notReadyAddresses'
    ;(subset[list] ??= []).push(address)
  }
  const byIp = (a: EndpointAddress, b: EndpointAddress) => a.ip.localeCompare(b.ip, 'en', { numeric: true })
  return [...groups.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([, s]) => ({
      ...(s.addresses ? { addresses: s.addresses.sort(byIp) } : {}),
      ...(s.notReadyAddresses ? { notReadyAddresses: s.notReadyAddresses.sort(byIp) } : {}),
      ports: s.ports,
    }))
}

export class EndpointsController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: EndpointsControllerOptions) {
    this.log = o.logger.child({ component: 'endpoints-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    o.services.onChange((_type, service) => this.queue.add(objectKey(service)))
    o.endpoints.onChange((_type, endpoints) => this.queue.add(objectKey(endpoints)))
    o.pods.onChange((_type, pod, previous) => {
      for (const service of o.services.list()) {
        const selector = selectorOf(service)
        if (!selector || service.metadata.namespace !== pod.metadata.namespace) continue
        if (selects(selector, pod) || (previous && selects(selector, previous))) this.queue.add(objectKey(service))
      }
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  private async reconcile(key: string): Promise<void> {
    const [namespace, name] = key.split('/') as [string, string]
    const service = this.o.services.get(key)
    const current = this.o.endpoints.get(key)
    if (!service) {
      if (current) await this.o.registry.delete(ENDPOINTS, namespace, name, { dryRun: false }).catch(ignoreNotFound)
      return
    }
    if (!selectorOf(service)) return
    const subsets = endpointSubsets(service, this.o.pods.list())
    const labels = service.metadata.labels ?? {}
    if (!current) {
      const { object } = await this.o.registry.create(ENDPOINTS, namespace, { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace, labels }, subsets }, WRITE)
      this.o.endpoints.assume(object)
      this.log.debug({ key, subsets: subsets.length }, 'endpoints created')
      return
    }
    if (JSON.stringify(current.subsets ?? []) === JSON.stringify(subsets) && JSON.stringify(current.metadata.labels ?? {}) === JSON.stringify(labels)) return
    const next = { ...current, metadata: { ...current.metadata, labels }, subsets }
    const { object } = await this.o.registry.update(ENDPOINTS, namespace, name, next, WRITE)
    this.o.endpoints.assume(object)
  }
}

function ignoreNotFound(err: unknown): void {
  if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
}
