// The metrics.k8s.io/v1beta1 API (NodeMetrics, PodMetrics), as metrics-server serves it, so
// `kubectl top nodes|pods` and `bramble top` work. Read from the nodes' last heartbeats, which the
// hub keeps in memory only (heartbeats.ts): nothing here is ever written to the store.
//
// A node's claims about pods are trusted only for pods bound to that node; a report older than
// `staleAfterMs` (the node grace period) is not served, as metrics-server drops stale scrapes.

import { Quantity } from '../api/quantity.js'
import { matchesLabels, parseLabelSelector } from '../api/selector.js'
import type { KubeObject } from '../api/types.js'
import type { PodUsage } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import { ApiError, badRequest, notFoundPath } from './api-errors.js'
import type { Heartbeats, NodeLiveness } from './heartbeats.js'
import type { Informer } from './informer.js'

export const METRICS_GROUP = 'metrics.k8s.io'
export const METRICS_VERSION = 'v1beta1'
const GROUP_VERSION = `${METRICS_GROUP}/${METRICS_VERSION}`
const PREFIX = `/apis/${GROUP_VERSION}`
/** Bramble's addition to NodeMetrics: the board's temperature in °C (`bramble top nodes` shows it; kubectl ignores it). */
export const ANNOTATION_TEMPERATURE = 'bramble.io/temperature-celsius'

export interface MetricsApiOptions {
  heartbeats: Heartbeats
  nodes: Informer
  pods: Informer
  clock: Clock
  /** The agents' heartbeat interval: the window a usage figure covers. */
  heartbeatIntervalMs: number
  /** Reports older than this are not served. */
  staleAfterMs: number
}

/** The group as `/apis` lists it. */
export function metricsApiGroup() {
  const gv = { groupVersion: GROUP_VERSION, version: METRICS_VERSION }
  return { name: METRICS_GROUP, versions: [gv], preferredVersion: gv }
}

function resourceList() {
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: GROUP_VERSION,
    resources: [
      { name: 'nodes', singularName: '', namespaced: false, kind: 'NodeMetrics', verbs: ['get', 'list'] },
      { name: 'pods', singularName: '', namespaced: true, kind: 'PodMetrics', verbs: ['get', 'list'] },
    ],
  }
}

/** Kubernetes' quantity for cores: nanocores, as metrics-server writes them (`12345678n`). */
export function cpuQuantity(cores: number): string {
  return `${Math.max(0, Math.round(cores * 1e9))}n`
}

/** Bytes as Ki, as metrics-server writes them. */
export function memoryQuantity(bytes: number): string {
  return `${Math.max(0, Math.round(bytes / 1024))}Ki`
}

export class MetricsApi {
  constructor(private readonly o: MetricsApiOptions) {}

  /** Whether the path is this API's (discovery included). */
  owns(path: string): boolean {
    return path === `/apis/${METRICS_GROUP}` || path === PREFIX || path.startsWith(`${PREFIX}/`)
  }

  /** Answers a GET of one of this API's paths; throws ApiError (404, 400) otherwise. */
  get(path: string, query: URLSearchParams): unknown {
    if (path === `/apis/${METRICS_GROUP}`) return { kind: 'APIGroup', apiVersion: 'v1', ...metricsApiGroup() }
    if (path === PREFIX) return resourceList()
    const segs = path.slice(PREFIX.length + 1).split('/').map(decodeURIComponent)
    const matches = labelMatcher(query.get('labelSelector') ?? '')
    if (segs[0] === 'nodes' && segs.length <= 2) {
      const all = this.nodeMetrics().filter((m) => matches(m.metadata.labels))
      if (segs.length === 1) return list('NodeMetricsList', all)
      return all.find((m) => m.metadata.name === segs[1]) ?? notFound('nodes', segs[1]!)
    }
    if (segs[0] === 'pods' && segs.length === 1) return list('PodMetricsList', this.podMetrics(undefined).filter((m) => matches(m.metadata.labels)))
    if (segs[0] === 'namespaces' && segs[2] === 'pods' && segs.length <= 4) {
      const inNamespace = this.podMetrics(segs[1]).filter((m) => matches(m.metadata.labels))
      if (segs.length === 3) return list('PodMetricsList', inNamespace)
      return inNamespace.find((m) => m.metadata.name === segs[3]) ?? notFound('pods', segs[3]!)
    }
    throw notFoundPath(path)
  }

  nodeMetrics(): Array<KubeObject & { metadata: { name: string; labels?: Record<string, string> } }> {
    const out = []
    for (const name of this.o.heartbeats.nodeNames()) {
      const hb = this.fresh(this.o.heartbeats.get(name))
      const node = this.o.nodes.get(name)
      if (!hb || !node) continue
      const cores = Number(Quantity.tryParse(node.status?.capacity?.cpu)?.milliValue() ?? 0n) / 1000
      out.push({
        kind: 'NodeMetrics',
        apiVersion: GROUP_VERSION,
        metadata: {
          name,
          labels: node.metadata.labels ?? {},
          creationTimestamp: this.timestamp(this.o.clock.monotonic()),
          ...(hb.temperature === undefined ? {} : { annotations: { [ANNOTATION_TEMPERATURE]: hb.temperature.toFixed(1) } }),
        },
        timestamp: this.timestamp(hb.receivedMs),
        window: this.window(),
        usage: { cpu: cpuQuantity(hb.cpu * cores), memory: memoryQuantity(hb.memory) },
      } as KubeObject & { metadata: { name: string } })
    }
    return out.sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))
  }

  /** PodMetrics of the pods in `namespace` (every namespace when undefined). */
  podMetrics(namespace: string | undefined): Array<KubeObject & { metadata: { name: string; namespace: string; labels?: Record<string, string> } }> {
    const out = []
    for (const node of this.o.heartbeats.nodeNames()) {
      const hb = this.fresh(this.o.heartbeats.get(node))
      for (const usage of hb?.pods ?? []) {
        if (namespace !== undefined && usage.namespace !== namespace) continue
        const pod = this.o.pods.get(`${usage.namespace}/${usage.name}`)
        if (!pod || pod.spec?.nodeName !== node) continue
        out.push(this.podMetricsOf(pod, usage, hb!.receivedMs))
      }
    }
    return out.sort((a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name))
  }

  private podMetricsOf(pod: KubeObject, usage: PodUsage, receivedMs: number) {
    return {
      kind: 'PodMetrics',
      apiVersion: GROUP_VERSION,
      metadata: { name: usage.name, namespace: usage.namespace, labels: pod.metadata.labels ?? {}, creationTimestamp: this.timestamp(this.o.clock.monotonic()) },
      timestamp: this.timestamp(receivedMs),
      window: this.window(),
      containers: usage.containers.map((c) => ({ name: c.name, usage: { cpu: cpuQuantity(c.cpuCores), memory: memoryQuantity(c.memoryBytes) } })),
    } as KubeObject & { metadata: { name: string; namespace: string } }
  }

  private fresh(entry: NodeLiveness | undefined): NodeLiveness['heartbeat'] {
    const hb = entry?.heartbeat
    return hb && this.o.clock.monotonic() - hb.receivedMs <= this.o.staleAfterMs ? hb : undefined
  }

  /** A monotonic time of the hub's as wall-clock RFC 3339. */
  private timestamp(monotonicMs: number): string {
    const wall = this.o.clock.now() - (this.o.clock.monotonic() - monotonicMs)
    return new Date(Math.floor(wall / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')
  }

  private window(): string {
    return `${Math.max(1, Math.round(this.o.heartbeatIntervalMs / 1000))}s`
  }
}

function list(kind: string, items: unknown[]) {
  return { kind, apiVersion: GROUP_VERSION, metadata: {}, items }
}

function notFound(plural: 'nodes' | 'pods', name: string): never {
  throw new ApiError(404, 'NotFound', `${plural}.${METRICS_GROUP} "${name}" not found`, { name, group: METRICS_GROUP, kind: plural })
}

function labelMatcher(selector: string): (labels: Record<string, string> | undefined) => boolean {
  try {
    const requirements = parseLabelSelector(selector)
    return (labels) => matchesLabels(requirements, labels)
  } catch (err) {
    throw badRequest(`unable to parse requirement: ${(err as Error).message}`, { cause: err })
  }
}
