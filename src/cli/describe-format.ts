// `describe` as a person reads it: kubectl-like sections, labels aligned per indentation level.
// Secrets show each key's size in bytes, never its value.

import { shortAccessModes } from '../api/access-modes.js'
import type { KubeObject } from '../api/types.js'
import { humanAge } from '../lib/human-duration.js'
import { eventLastTime, sortEvents } from './event-order.js'

interface Line {
  depth: number
  label: string
  value?: string
}

/** Collects `Label: value` lines at indentation levels and lays them out aligned. */
export class DescribeWriter {
  private readonly lines: Line[] = []

  /** `Label:  value`; a missing value prints `<none>`. */
  field(depth: number, label: string, value: unknown): this {
    this.lines.push({ depth, label, value: text(value) })
    return this
  }

  /** A label alone, heading the deeper lines that follow. */
  heading(depth: number, label: string): this {
    this.lines.push({ depth, label })
    return this
  }

  /** A label with a `key=value` (or `key: value`) map below it, `<none>` when empty. */
  map(depth: number, label: string, map: Record<string, unknown> | undefined, separator = '='): this {
    const entries = Object.entries(map ?? {})
    if (entries.length === 0) return this.field(depth, label, '<none>')
    entries.forEach(([k, v], i) => this.lines.push({ depth, label: i === 0 ? label : '', value: `${k}${separator}${text(v)}` }))
    return this
  }

  toString(): string {
    const widths = new Map<number, number>()
    for (const l of this.lines) if (l.value !== undefined) widths.set(l.depth, Math.max(widths.get(l.depth) ?? 0, l.label.length + 1))
    return this.lines
      .map((l) => {
        const indent = '  '.repeat(l.depth)
        const label = l.label ? `${l.label}:` : ''
        if (l.value === undefined) return `${indent}${label}`.trimEnd()
        return `${indent}${label.padEnd((widths.get(l.depth) ?? 0) + 2)}${l.value}`.trimEnd()
      })
      .map((s) => s + '\n')
      .join('')
  }
}

function text(value: unknown): string {
  if (value === null || value === undefined || value === '') return '<none>'
  if (Array.isArray(value)) return value.length ? value.map(text).join(', ') : '<none>'
  if (typeof value === 'object') return JSON.stringify(value)
  return String(value)
}

/** What describe shows beside an object that the object does not hold: the pods that use a claim. */
export interface DescribeRelated {
  usedBy?: string[]
}

/** The text of `describe` for one object; `events` are those whose involvedObject is it; `now` dates their ages. */
export function describeObject(o: KubeObject, events: KubeObject[], now = Date.now(), related: DescribeRelated = {}): string {
  const w = new DescribeWriter()
  const md = o.metadata ?? {}
  w.field(0, 'Name', md.name)
  if (md.namespace !== undefined) w.field(0, 'Namespace', md.namespace)
  w.map(0, 'Labels', md.labels)
  w.map(0, 'Annotations', hideLastApplied(md.annotations), ': ')
  w.field(0, 'CreationTimestamp', md.creationTimestamp)
  const byKind = KIND_SECTIONS[o.kind]
  if (byKind) byKind(w, o, related)
  if (events.length === 0) w.field(0, 'Events', '<none>')
  else w.heading(0, 'Events')
  let out = w.toString()
  if (events.length > 0) out += eventsTable(events, now)
  return out
}

function hideLastApplied(annotations: Record<string, string> | undefined): Record<string, string> | undefined {
  if (!annotations) return annotations
  // Like kubectl, show that the annotation is there but not its (long) JSON.
  return Object.fromEntries(Object.entries(annotations).map(([k, v]) => [k, k === 'kubectl.kubernetes.io/last-applied-configuration' ? '<applied configuration>' : v]))
}

const KIND_SECTIONS: Record<string, (w: DescribeWriter, o: KubeObject, related: DescribeRelated) => void> = {
  Deployment: (w, o) => {
    const spec = o.spec ?? {}
    const st = o.status ?? {}
    w.field(0, 'Selector', selectorText(spec.selector))
    w.field(0, 'Replicas', `${spec.replicas ?? 1} desired | ${st.updatedReplicas ?? 0} updated | ${st.replicas ?? 0} total | ${st.availableReplicas ?? 0} available | ${st.unavailableReplicas ?? 0} unavailable`)
    w.field(0, 'StrategyType', spec.strategy?.type ?? 'RollingUpdate')
    const ru = spec.strategy?.rollingUpdate
    if ((spec.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate') w.field(0, 'RollingUpdateStrategy', `${ru?.maxUnavailable ?? '25%'} max unavailable, ${ru?.maxSurge ?? '25%'} max surge`)
    podTemplate(w, spec.template)
    conditions(w, st.conditions)
  },
  PersistentVolumeClaim: (w, o, related) => {
    w.field(0, 'StorageClass', o.spec?.storageClassName ?? '')
    w.field(0, 'Status', o.metadata.deletionTimestamp ? 'Terminating' : (o.status?.phase ?? 'Pending'))
    w.field(0, 'Volume', o.spec?.volumeName ?? '')
    w.field(0, 'Finalizers', `[${(o.metadata.finalizers ?? []).join(' ')}]`)
    w.field(0, 'Capacity', o.status?.capacity?.storage ?? '')
    w.field(0, 'Access Modes', shortAccessModes(o.status?.accessModes ?? []))
    w.field(0, 'VolumeMode', o.spec?.volumeMode ?? 'Filesystem')
    w.field(0, 'Used By', related.usedBy ?? [])
  },
  ReplicaSet: (w, o) => {
    w.field(0, 'Selector', selectorText(o.spec?.selector))
    w.field(0, 'Replicas', `${o.status?.replicas ?? 0} current / ${o.spec?.replicas ?? 1} desired`)
    podTemplate(w, o.spec?.template)
  },
  DaemonSet: (w, o) => {
    w.field(0, 'Selector', selectorText(o.spec?.selector))
    w.field(0, 'Desired Number of Nodes Scheduled', o.status?.desiredNumberScheduled ?? 0)
    w.field(0, 'Current Number of Nodes Scheduled', o.status?.currentNumberScheduled ?? 0)
    podTemplate(w, o.spec?.template)
  },
  Job: (w, o) => {
    w.field(0, 'Completions', o.spec?.completions ?? 1)
    w.field(0, 'Parallelism', o.spec?.parallelism ?? 1)
    w.field(0, 'Pods Statuses', `${o.status?.active ?? 0} Active / ${o.status?.succeeded ?? 0} Succeeded / ${o.status?.failed ?? 0} Failed`)
    podTemplate(w, o.spec?.template)
  },
  CronJob: (w, o) => {
    w.field(0, 'Schedule', o.spec?.schedule)
    w.field(0, 'Suspend', o.spec?.suspend ?? false)
    w.field(0, 'Last Schedule Time', o.status?.lastScheduleTime)
    podTemplate(w, o.spec?.jobTemplate?.spec?.template)
  },
  Pod: (w, o) => {
    w.field(0, 'Node', o.spec?.nodeName ?? '<none>')
    w.field(0, 'Start Time', o.status?.startTime)
    w.field(0, 'Status', o.metadata.deletionTimestamp ? 'Terminating' : o.status?.phase ?? 'Pending')
    w.field(0, 'IP', o.status?.podIP)
    w.heading(0, 'Containers')
    for (const c of o.spec?.containers ?? []) {
      container(w, 1, c)
      const cs = (o.status?.containerStatuses ?? []).find((s: any) => s.name === c.name)
      if (cs) {
        const [state, detail] = Object.entries(cs.state ?? {})[0] ?? ['Waiting', {}]
        w.field(2, 'State', state.charAt(0).toUpperCase() + state.slice(1) + ((detail as any)?.reason ? ` (${(detail as any).reason})` : ''))
        if ((detail as any)?.message) w.field(3, 'Message', (detail as any).message)
        w.field(2, 'Ready', cs.ready ?? false)
        w.field(2, 'Restart Count', cs.restartCount ?? 0)
      }
    }
    conditions(w, o.status?.conditions)
  },
  Service: (w, o) => {
    const spec = o.spec ?? {}
    w.field(0, 'Selector', Object.entries((spec.selector ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`).join(','))
    w.field(0, 'Type', spec.type ?? 'ClusterIP')
    w.field(0, 'IP', spec.clusterIP)
    for (const p of spec.ports ?? []) {
      w.field(0, 'Port', `${p.name ?? '<unset>'}  ${p.port}/${p.protocol ?? 'TCP'}`)
      w.field(0, 'TargetPort', `${p.targetPort ?? p.port}/${p.protocol ?? 'TCP'}`)
      if (p.nodePort !== undefined) w.field(0, 'NodePort', `${p.name ?? '<unset>'}  ${p.nodePort}/${p.protocol ?? 'TCP'}`)
    }
  },
  ConfigMap: (w, o) => {
    if (Object.keys(o.data ?? {}).length === 0) w.field(0, 'Data', '<none>')
    else w.heading(0, 'Data')
    for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, string>)) w.field(1, k, `${Buffer.byteLength(v)} bytes`)
    const binary = Object.keys((o.binaryData ?? {}) as object)
    if (binary.length > 0) w.field(0, 'BinaryData', binary)
  },
  Secret: (w, o) => {
    w.field(0, 'Type', o.type ?? 'Opaque')
    const sizes: Record<string, number> = {}
    for (const [k, v] of Object.entries((o.data ?? {}) as Record<string, string>)) sizes[k] = Buffer.from(v, 'base64').length
    for (const [k, v] of Object.entries((o.stringData ?? {}) as Record<string, string>)) sizes[k] = Buffer.byteLength(v)
    if (Object.keys(sizes).length === 0) w.field(0, 'Data', '<none>')
    else w.heading(0, 'Data')
    for (const [k, n] of Object.entries(sizes)) w.field(1, k, `${n} bytes`)
  },
  Node: (w, o) => {
    w.field(0, 'Unschedulable', o.spec?.unschedulable ?? false)
    w.field(0, 'PodCIDR', o.spec?.podCIDR)
    sectionOrNone(w, 'Addresses', (o.status?.addresses ?? []).length > 0)
    for (const a of o.status?.addresses ?? []) w.field(1, a.type, a.address)
    sectionOrNone(w, 'Capacity', Boolean(o.status?.capacity))
    for (const [k, v] of Object.entries((o.status?.capacity ?? {}) as Record<string, unknown>)) w.field(1, k, v)
    sectionOrNone(w, 'Allocatable', Boolean(o.status?.allocatable))
    for (const [k, v] of Object.entries((o.status?.allocatable ?? {}) as Record<string, unknown>)) w.field(1, k, v)
    conditions(w, o.status?.conditions)
  },
  Namespace: (w, o) => {
    w.field(0, 'Status', o.status?.phase ?? 'Active')
  },
}

function sectionOrNone(w: DescribeWriter, label: string, present: boolean): void {
  if (present) w.heading(0, label)
  else w.field(0, label, '<none>')
}

function selectorText(selector: any): string {
  const parts = Object.entries((selector?.matchLabels ?? {}) as Record<string, string>).map(([k, v]) => `${k}=${v}`)
  for (const e of selector?.matchExpressions ?? []) parts.push(`${e.key} ${String(e.operator).toLowerCase()} (${(e.values ?? []).join(',')})`)
  return parts.length ? parts.join(',') : '<none>'
}

/** The `Pod Template:` section alone, as `rollout history --revision=N` prints it. */
export function describePodTemplate(template: any): string {
  const w = new DescribeWriter()
  podTemplate(w, template)
  return w.toString()
}

function podTemplate(w: DescribeWriter, template: any): void {
  w.heading(0, 'Pod Template')
  w.map(1, 'Labels', template?.metadata?.labels)
  if (Object.keys(template?.metadata?.annotations ?? {}).length > 0) w.map(1, 'Annotations', template.metadata.annotations, ': ')
  w.heading(1, 'Containers')
  for (const c of template?.spec?.containers ?? []) container(w, 2, c)
  const volumes = template?.spec?.volumes ?? []
  w.field(1, 'Volumes', volumes.length ? volumes.map((v: any) => v.name) : '<none>')
}

function container(w: DescribeWriter, depth: number, c: any): void {
  w.heading(depth, c.name)
  w.field(depth + 1, 'Image', c.image)
  const ports = (c.ports ?? []).map((p: any) => `${p.containerPort}/${p.protocol ?? 'TCP'}`)
  w.field(depth + 1, 'Port', ports.length ? ports : '<none>')
  if (c.command) w.field(depth + 1, 'Command', c.command.join(' '))
  if (c.args) w.field(depth + 1, 'Args', c.args.join(' '))
  const requests = c.resources?.requests
  const limits = c.resources?.limits
  if (limits) w.map(depth + 1, 'Limits', limits, ': ')
  if (requests) w.map(depth + 1, 'Requests', requests, ': ')
  const env = (c.env ?? []).map((e: any) => [e.name, e.value ?? envSource(e.valueFrom)] as const)
  if (env.length === 0) w.field(depth + 1, 'Environment', '<none>')
  else w.map(depth + 1, 'Environment', Object.fromEntries(env), ': ')
}

function envSource(from: any): string {
  if (from?.secretKeyRef) return `<set to the key '${from.secretKeyRef.key}' in secret '${from.secretKeyRef.name}'>`
  if (from?.configMapKeyRef) return `<set to the key '${from.configMapKeyRef.key}' of config map '${from.configMapKeyRef.name}'>`
  if (from?.fieldRef) return `(${from.fieldRef.apiVersion ?? 'v1'}:${from.fieldRef.fieldPath})`
  return '<unset>'
}

function conditions(w: DescribeWriter, list: any[] | undefined): void {
  if (!list || list.length === 0) return
  w.heading(0, 'Conditions')
  for (const c of list) w.field(1, c.type, `${c.status}${c.reason ? ` (${c.reason})` : ''}`)
}

/** `2m`, or `2m (x5 over 10m)` for an event seen several times. */
function eventAge(e: any, now: number): string {
  const last = humanAge(eventLastTime(e), now)
  const count = Number(e.count ?? 1)
  return count > 1 ? `${last} (x${count} over ${humanAge(e.firstTimestamp ?? e.metadata?.creationTimestamp, now)})` : last
}

function eventsTable(events: KubeObject[], now: number): string {
  const rows = sortEvents(events).map((e: any) => [e.type ?? '', e.reason ?? '', eventAge(e, now), e.source?.component ?? e.reportingComponent ?? '', e.message ?? ''])
  const all = [['Type', 'Reason', 'Age', 'From', 'Message'], ['----', '------', '----', '----', '-------'], ...rows]
  const widths = all[0].map((_, i) => Math.max(...all.map((r) => String(r[i]).length)))
  return all.map((r) => '  ' + r.map((c, i) => (i === r.length - 1 ? String(c) : String(c).padEnd(widths[i]))).join('   ') + '\n').join('')
}
