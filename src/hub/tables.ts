// Server-side printing: the meta.k8s.io/v1 Table that `kubectl get` (and `bramble get`) asks for,
// with the columns Kubernetes' own printers show for each kind.

import { shortAccessModes } from '../api/access-modes.js'
import type { KubeObject } from '../api/types.js'
import { humanAge, humanDuration } from '../lib/human-duration.js'
import { ANNOTATION_WIREGUARD_ENDPOINT, ANNOTATION_WIREGUARD_PUBLIC_KEY } from '../mesh/wireguard-nodes.js'

export interface ColumnDefinition {
  name: string
  type: 'string' | 'integer' | 'number' | 'boolean' | 'date'
  format: string
  description: string
  /** 0: always shown; 1: only with `-o wide`. */
  priority: number
}

export interface TableRow {
  cells: unknown[]
  object: unknown
}

export interface Table {
  kind: 'Table'
  apiVersion: 'meta.k8s.io/v1'
  metadata: { resourceVersion?: string }
  columnDefinitions: ColumnDefinition[]
  rows: TableRow[]
}

type Cell = (o: KubeObject, now: number) => unknown
interface Column {
  name: string
  type?: ColumnDefinition['type']
  format?: string
  wide?: boolean
  description: string
  cell: Cell
}

const name: Column = { name: 'Name', format: 'name', description: 'Name of the object', cell: (o) => o.metadata.name }
const age: Column = { name: 'Age', description: 'Time since the object was created', cell: (o, now) => humanAge(o.metadata.creationTimestamp, now) }
const containers: Column = { name: 'Containers', wide: true, description: 'Container names', cell: (o) => podSpecOf(o)?.containers?.map((c: any) => c.name).join(',') ?? '' }
const images: Column = { name: 'Images', wide: true, description: 'Container images', cell: (o) => podSpecOf(o)?.containers?.map((c: any) => c.image).join(',') ?? '' }
const selector: Column = { name: 'Selector', wide: true, description: 'Label selector', cell: (o) => formatSelector(o.spec?.selector) }
const num = (v: unknown) => (typeof v === 'number' ? v : 0)

const COLUMNS: Record<string, Column[]> = {
  Namespace: [name, { name: 'Status', description: 'Phase', cell: (o) => o.status?.phase ?? '' }, age],
  Node: [
    name,
    { name: 'Status', description: 'Readiness', cell: nodeStatus },
    { name: 'Roles', description: 'Roles', cell: (o) => nodeRoles(o) },
    age,
    { name: 'Version', description: 'Agent version', cell: (o) => o.status?.nodeInfo?.kubeletVersion ?? '' },
    { name: 'Internal-IP', wide: true, description: 'Internal address', cell: (o) => nodeAddress(o, 'InternalIP') },
    { name: 'External-IP', wide: true, description: 'External address', cell: (o) => nodeAddress(o, 'ExternalIP') },
    { name: 'OS-Image', wide: true, description: 'OS image', cell: (o) => o.status?.nodeInfo?.osImage ?? '<unknown>' },
    { name: 'Kernel-Version', wide: true, description: 'Kernel version', cell: (o) => o.status?.nodeInfo?.kernelVersion ?? '<unknown>' },
    { name: 'Container-Runtime', wide: true, description: 'Container runtime', cell: (o) => o.status?.nodeInfo?.containerRuntimeVersion ?? '<unknown>' },
    { name: 'Pod-CIDR', wide: true, description: "The node's pod subnet, leased from the cluster CIDR", cell: (o) => o.spec?.podCIDR || '<none>' },
    { name: 'Overlay', wide: true, description: 'WireGuard overlay: up or down (why), and the endpoint peers dial', cell: nodeOverlay },
  ],
  Pod: [
    name,
    { name: 'Ready', description: 'Ready containers', cell: (o) => `${(o.status?.containerStatuses ?? []).filter((c: any) => c.ready).length}/${o.spec?.containers?.length ?? 0}` },
    { name: 'Status', description: 'Phase or reason', cell: podStatus },
    { name: 'Restarts', type: 'integer', description: 'Container restarts', cell: (o) => (o.status?.containerStatuses ?? []).reduce((n: number, c: any) => n + num(c.restartCount), 0) },
    age,
    { name: 'IP', wide: true, description: 'Pod IP', cell: (o) => o.status?.podIP ?? '<none>' },
    { name: 'Node', wide: true, description: 'Node the pod is bound to', cell: (o) => o.spec?.nodeName ?? '<none>' },
    { name: 'Nominated Node', wide: true, description: 'Nominated node', cell: (o) => o.status?.nominatedNodeName ?? '<none>' },
    { name: 'Readiness Gates', wide: true, description: 'Readiness gates', cell: (o) => (o.spec?.readinessGates?.length ? String(o.spec.readinessGates.length) : '<none>') },
  ],
  Service: [
    name,
    { name: 'Type', description: 'Service type', cell: (o) => o.spec?.type ?? 'ClusterIP' },
    { name: 'Cluster-IP', description: 'Cluster IP', cell: (o) => o.spec?.clusterIP || '<none>' },
    { name: 'External-IP', description: 'External IPs', cell: (o) => (o.spec?.externalIPs?.length ? o.spec.externalIPs.join(',') : o.spec?.type === 'LoadBalancer' ? '<pending>' : '<none>') },
    { name: 'Port(s)', description: 'Ports', cell: (o) => (o.spec?.ports ?? []).map((p: any) => `${p.port}${p.nodePort ? `:${p.nodePort}` : ''}/${p.protocol ?? 'TCP'}`).join(',') || '<none>' },
    age,
    { name: 'Selector', wide: true, description: 'Selector', cell: (o) => (o.spec?.selector ? Object.entries(o.spec.selector).map(([k, v]) => `${k}=${v}`).join(',') : '<none>') },
  ],
  Endpoints: [
    name,
    { name: 'Endpoints', description: 'Addresses', cell: (o) => formatEndpoints(o) },
    age,
  ],
  ConfigMap: [name, { name: 'Data', type: 'integer', description: 'Keys', cell: (o) => Object.keys(o.data ?? {}).length + Object.keys(o.binaryData ?? {}).length }, age],
  Secret: [
    name,
    { name: 'Type', description: 'Secret type', cell: (o) => o.type ?? 'Opaque' },
    { name: 'Data', type: 'integer', description: 'Keys', cell: (o) => Object.keys(o.data ?? {}).length },
    age,
  ],
  Event: [
    { name: 'Last Seen', description: 'Last time seen, and how often over how long', cell: (o, now) => eventLastSeen(o, now) },
    { name: 'Type', description: 'Normal or Warning', cell: (o) => o.type ?? '' },
    { name: 'Reason', description: 'Reason', cell: (o) => o.reason ?? '' },
    { name: 'Object', description: 'Involved object', cell: (o) => { const io = o.involvedObject as any; return io ? `${String(io.kind ?? '').toLowerCase()}/${io.name ?? ''}` : '' } },
    { name: 'Message', description: 'Message', cell: (o) => o.message ?? '' },
  ],
  Deployment: [
    name,
    { name: 'Ready', description: 'Ready replicas', cell: (o) => `${num(o.status?.readyReplicas)}/${num(o.spec?.replicas)}` },
    { name: 'Up-to-date', type: 'integer', description: 'Updated replicas', cell: (o) => num(o.status?.updatedReplicas) },
    { name: 'Available', type: 'integer', description: 'Available replicas', cell: (o) => num(o.status?.availableReplicas) },
    age, containers, images, selector,
  ],
  ReplicaSet: [
    name,
    { name: 'Desired', type: 'integer', description: 'Desired replicas', cell: (o) => num(o.spec?.replicas) },
    { name: 'Current', type: 'integer', description: 'Current replicas', cell: (o) => num(o.status?.replicas) },
    { name: 'Ready', type: 'integer', description: 'Ready replicas', cell: (o) => num(o.status?.readyReplicas) },
    age, containers, images, selector,
  ],
  DaemonSet: [
    name,
    { name: 'Desired', type: 'integer', description: 'Desired pods', cell: (o) => num(o.status?.desiredNumberScheduled) },
    { name: 'Current', type: 'integer', description: 'Current pods', cell: (o) => num(o.status?.currentNumberScheduled) },
    { name: 'Ready', type: 'integer', description: 'Ready pods', cell: (o) => num(o.status?.numberReady) },
    { name: 'Up-to-date', type: 'integer', description: 'Updated pods', cell: (o) => num(o.status?.updatedNumberScheduled) },
    { name: 'Available', type: 'integer', description: 'Available pods', cell: (o) => num(o.status?.numberAvailable) },
    { name: 'Node Selector', description: 'Node selector', cell: (o) => Object.entries(o.spec?.template?.spec?.nodeSelector ?? {}).map(([k, v]) => `${k}=${v}`).join(',') || '<none>' },
    age, containers, images, selector,
  ],
  StatefulSet: [
    name,
    { name: 'Ready', description: 'Ready replicas', cell: (o) => `${num(o.status?.readyReplicas)}/${num(o.spec?.replicas)}` },
    age, containers, images,
  ],
  PersistentVolumeClaim: [
    name,
    { name: 'Status', description: 'Phase', cell: (o) => (o.metadata.deletionTimestamp ? 'Terminating' : (o.status?.phase ?? 'Pending')) },
    { name: 'Volume', description: 'Bound volume', cell: (o) => o.spec?.volumeName ?? '' },
    { name: 'Capacity', description: 'Capacity of the bound volume', cell: (o) => o.status?.capacity?.storage ?? '' },
    { name: 'Access Modes', description: 'Access modes', cell: (o) => shortAccessModes(o.status?.accessModes ?? []) },
    { name: 'StorageClass', description: 'Storage class', cell: (o) => o.spec?.storageClassName ?? '<unset>' },
    { name: 'VolumeAttributesClass', description: 'Volume attributes class', cell: () => '<unset>' },
    age,
    { name: 'VolumeMode', wide: true, description: 'Volume mode', cell: (o) => o.spec?.volumeMode ?? 'Filesystem' },
  ],
  PersistentVolume: [
    name,
    { name: 'Capacity', description: 'Capacity', cell: (o) => o.spec?.capacity?.storage ?? '' },
    { name: 'Access Modes', description: 'Access modes', cell: (o) => shortAccessModes(o.spec?.accessModes ?? []) },
    { name: 'Reclaim Policy', description: 'Reclaim policy', cell: (o) => o.spec?.persistentVolumeReclaimPolicy ?? '' },
    { name: 'Status', description: 'Phase', cell: (o) => o.status?.phase ?? '' },
    { name: 'Claim', description: 'Bound claim', cell: (o) => (o.spec?.claimRef ? `${o.spec.claimRef.namespace}/${o.spec.claimRef.name}` : '') },
    { name: 'StorageClass', description: 'Storage class', cell: (o) => o.spec?.storageClassName ?? '' },
    { name: 'VolumeAttributesClass', description: 'Volume attributes class', cell: () => '<unset>' },
    { name: 'Reason', description: 'Reason', cell: (o) => o.status?.reason ?? '' },
    age,
    { name: 'VolumeMode', wide: true, description: 'Volume mode', cell: (o) => o.spec?.volumeMode ?? 'Filesystem' },
  ],
  StorageClass: [
    { ...name, cell: (o) => (o.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'] === 'true' ? `${o.metadata.name} (default)` : o.metadata.name) },
    { name: 'Provisioner', description: 'Provisioner', cell: (o) => o.provisioner ?? '' },
    { name: 'ReclaimPolicy', description: 'Reclaim policy', cell: (o) => o.reclaimPolicy ?? 'Delete' },
    { name: 'VolumeBindingMode', description: 'Volume binding mode', cell: (o) => o.volumeBindingMode ?? 'Immediate' },
    { name: 'AllowVolumeExpansion', description: 'Allow volume expansion', cell: (o) => Boolean(o.allowVolumeExpansion) },
    age,
  ],
  Job: [
    name,
    { name: 'Status', description: 'Job status', cell: jobStatus },
    { name: 'Completions', description: 'Succeeded/desired', cell: (o) => `${num(o.status?.succeeded)}/${o.spec?.completions ?? 1}` },
    { name: 'Duration', description: 'Run time', cell: (o, now) => (o.status?.startTime ? humanDuration(Date.parse(o.status.completionTime ?? new Date(now).toISOString()) - Date.parse(o.status.startTime)) : '') },
    age, containers, images, selector,
  ],
  CronJob: [
    name,
    { name: 'Schedule', description: 'Cron schedule', cell: (o) => o.spec?.schedule ?? '' },
    { name: 'Timezone', description: 'Time zone', cell: (o) => o.spec?.timeZone ?? '<none>' },
    { name: 'Suspend', type: 'boolean', description: 'Suspended', cell: (o) => Boolean(o.spec?.suspend) },
    { name: 'Active', type: 'integer', description: 'Active jobs', cell: (o) => (o.status?.active ?? []).length },
    { name: 'Last Schedule', description: 'Last scheduled', cell: (o, now) => (o.status?.lastScheduleTime ? humanAge(o.status.lastScheduleTime, now) : '<none>') },
    age, containers, images, selector,
  ],
}

export function columnDefinitions(kind: string): ColumnDefinition[] {
  return (COLUMNS[kind] ?? [name, age]).map((c) => ({
    name: c.name,
    type: c.type ?? 'string',
    format: c.format ?? '',
    description: c.description,
    priority: c.wide ? 1 : 0,
  }))
}

/** One row per object; `includeObject` follows the API parameter of that name. */
export function toTable(kind: string, objects: KubeObject[], resourceVersion: string | undefined, now: number, includeObject: 'None' | 'Metadata' | 'Object'): Table {
  const columns = COLUMNS[kind] ?? [name, age]
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: resourceVersion === undefined ? {} : { resourceVersion },
    columnDefinitions: columnDefinitions(kind),
    rows: objects.map((o) => ({ cells: columns.map((c) => c.cell(o, now) ?? ''), object: rowObject(o, includeObject) })),
  }
}

function rowObject(o: KubeObject, includeObject: 'None' | 'Metadata' | 'Object'): unknown {
  if (includeObject === 'Object') return o
  if (includeObject === 'None') return undefined
  return { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata }
}

function podSpecOf(o: KubeObject): any {
  return o.kind === 'CronJob' ? o.spec?.jobTemplate?.spec?.template?.spec : o.spec?.template?.spec
}

/** A LabelSelector in its string form, `app=web,tier in (a,b)`. */
export function formatSelector(sel: any): string {
  if (!sel) return '<none>'
  const parts = Object.entries(sel.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`)
  for (const e of sel.matchExpressions ?? []) {
    if (e.operator === 'Exists') parts.push(e.key)
    else if (e.operator === 'DoesNotExist') parts.push(`!${e.key}`)
    else parts.push(`${e.key} ${String(e.operator).toLowerCase()} (${(e.values ?? []).join(',')})`)
  }
  return parts.join(',') || '<none>'
}

function nodeStatus(o: KubeObject): string {
  const ready = (o.status?.conditions ?? []).find((c: any) => c.type === 'Ready')
  let status = ready?.status === 'True' ? 'Ready' : ready ? 'NotReady' : 'Unknown'
  if (o.spec?.unschedulable) status += ',SchedulingDisabled'
  return status
}

/** The pod's STATUS as kubectl prints it: a container's waiting or terminated reason wins over the phase. */
function podStatus(o: KubeObject): string {
  const status = o.status ?? {}
  let reason: string = status.reason ?? status.phase ?? 'Unknown'
  const initStatuses: any[] = status.initContainerStatuses ?? []
  let initializing = false
  for (const [i, c] of initStatuses.entries()) {
    const terminated = c.state?.terminated
    if (terminated?.exitCode === 0) continue
    if (terminated) reason = `Init:${terminated.reason || (terminated.signal ? `Signal:${terminated.signal}` : `ExitCode:${terminated.exitCode}`)}`
    else if (c.state?.waiting?.reason && c.state.waiting.reason !== 'PodInitializing') reason = `Init:${c.state.waiting.reason}`
    else reason = `Init:${i}/${o.spec?.initContainers?.length ?? initStatuses.length}`
    initializing = true
    break
  }
  if (!initializing) {
    let hasRunning = false
    for (const c of [...(status.containerStatuses ?? [])].reverse()) {
      const { waiting, terminated, running } = c.state ?? {}
      if (waiting?.reason) reason = waiting.reason
      else if (terminated?.reason) reason = terminated.reason
      else if (terminated) reason = terminated.signal ? `Signal:${terminated.signal}` : `ExitCode:${terminated.exitCode}`
      else if (running && c.ready) hasRunning = true
    }
    if (reason === 'Completed' && hasRunning) {
      const ready = (status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
      reason = ready ? 'Running' : 'NotReady'
    }
  }
  return o.metadata.deletionTimestamp ? 'Terminating' : reason
}

function nodeRoles(o: KubeObject): string {
  const roles = Object.keys(o.metadata.labels ?? {})
    .filter((k) => k.startsWith('node-role.kubernetes.io/'))
    .map((k) => k.slice('node-role.kubernetes.io/'.length))
  return roles.length ? roles.join(',') : '<none>'
}

/** `up 10.0.0.2:51820`, `down (NoPodCIDR)`, or `<none>` while the node has reported no WireGuard key. */
function nodeOverlay(o: KubeObject): string {
  const annotations = o.metadata.annotations ?? {}
  if (!annotations[ANNOTATION_WIREGUARD_PUBLIC_KEY]) return '<none>'
  const endpoint = annotations[ANNOTATION_WIREGUARD_ENDPOINT] ?? 'no-endpoint'
  const network = (o.status?.conditions ?? []).find((c: any) => c.type === 'NetworkUnavailable')
  if (!network) return `unknown ${endpoint}`
  return network.status === 'False' ? `up ${endpoint}` : `down (${network.reason ?? 'NetworkUnavailable'}) ${endpoint}`
}

function nodeAddress(o: KubeObject, type: string): string {
  return (o.status?.addresses ?? []).find((a: any) => a.type === type)?.address ?? '<none>'
}

function formatEndpoints(o: KubeObject): string {
  const all: string[] = []
  for (const subset of (o.subsets as any[]) ?? []) {
    for (const a of subset.addresses ?? []) for (const p of subset.ports ?? [{}]) all.push(p.port ? `${a.ip}:${p.port}` : a.ip)
  }
  if (all.length === 0) return '<none>'
  return all.length > 3 ? `${all.slice(0, 3).join(',')} + ${all.length - 3} more...` : all.join(',')
}

function jobStatus(o: KubeObject): string {
  const conditions: any[] = o.status?.conditions ?? []
  const has = (type: string) => conditions.some((c) => c.type === type && c.status === 'True')
  if (has('Complete')) return 'Complete'
  if (has('Failed')) return 'Failed'
  if (o.spec?.suspend) return 'Suspended'
  return 'Running'
}

/** Ages the way kubectl prints them: `45s`, `3m12s`, `5h`, `12d`. */
/** `45s`, or `2m (x5 over 10m)` for an event seen several times, as kubectl prints it. */
function eventLastSeen(o: KubeObject, now: number): string {
  const last = humanAge((o.lastTimestamp as string) ?? (o.eventTime as string) ?? o.metadata.creationTimestamp, now)
  const count = Number(o.count ?? 1)
  return count > 1 ? `${last} (x${count} over ${humanAge((o.firstTimestamp as string) ?? o.metadata.creationTimestamp, now)})` : last
}

