// The scheduler's filters: each says why a pod cannot go to a node, or nothing when it can.
// Reason texts are Kubernetes' own, so `0/3 nodes are available: ...` reads the same.

import { matchesLabels, type Requirement } from '../api/selector.js'
import type { KubeObject } from '../api/types.js'
import { allocatable, allocatableExtended, podExtendedRequests, podRequests, requestedOn, type NodeSnapshot } from './snapshot.js'

export type Filter = (pod: KubeObject, node: NodeSnapshot) => readonly string[]

/** What a filter answers when the node passes (one shared empty list: a decision asks hundreds of times). */
const PASS: readonly string[] = Object.freeze([])

export const ARCH_LABEL = 'kubernetes.io/arch'
export const OS_LABEL = 'kubernetes.io/os'
export const HOSTNAME_LABEL = 'kubernetes.io/hostname'
/** Architectures a pod's images exist for, when they are not all of them: `arm64,amd64`. */
export const ARCH_ANNOTATION = 'bramble.io/architectures'

const nodeReady: Filter = (_pod, { node }) => {
  const ready = (node.status?.conditions ?? []).find((c: any) => c.type === 'Ready')
  return ready?.status === 'True' ? PASS : ['node(s) were not ready']
}

const nodeSchedulable: Filter = (pod, { node }) =>
  node.spec?.unschedulable && !tolerates(pod, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }) ? ['node(s) were unschedulable'] : PASS

export const taints: Filter = (pod, { node }) => {
  for (const taint of (node.spec?.taints ?? []) as Taint[]) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue
    if (!tolerates(pod, taint)) return [`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`]
  }
  return PASS
}

const resourcesFit: Filter = (pod, n) => {
  const { node, pods } = n
  const want = podRequests(pod)
  const used = requestedOn(n)
  const cap = allocatable(node)
  const tooMany = pods.length + 1 > cap.pods
  const cpu = want.cpuMilli > 0 && used.cpuMilli + want.cpuMilli > cap.cpuMilli
  const memory = want.memoryBytes > 0 && used.memoryBytes + want.memoryBytes > cap.memoryBytes
  const extended = insufficientExtended(pod, n)
  if (!tooMany && !cpu && !memory && extended.length === 0) return PASS
  const reasons: string[] = []
  if (tooMany) reasons.push('Too many pods')
  if (cpu) reasons.push('Insufficient cpu')
  if (memory) reasons.push('Insufficient memory')
  for (const name of extended) reasons.push(`Insufficient ${name}`)
  return reasons
}

/** Extended resources (devices.bramble.dev/serial) the pod wants more of than the node has left; a node without one has none. */
function insufficientExtended(pod: KubeObject, { node, pods }: NodeSnapshot): string[] {
  const want = podExtendedRequests(pod)
  if (want.size === 0) return []
  const short: string[] = []
  for (const [name, n] of [...want].sort(([a], [b]) => a.localeCompare(b))) {
    let used = 0
    for (const p of pods) used += podExtendedRequests(p).get(name) ?? 0
    if (used + n > allocatableExtended(node, name)) short.push(name)
  }
  return short
}

export const nodeSelector: Filter = (pod, { node }) => {
  const labels = node.metadata.labels ?? {}
  const selector: Record<string, string> = pod.spec?.nodeSelector ?? {}
  const selectorOk = Object.entries(selector).every(([k, v]) => labels[k] === v)
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms as any[] | undefined
  const affinityOk = !terms || terms.length === 0 || terms.some((term) => nodeMatchesTerm(node, term))
  return selectorOk && affinityOk ? PASS : ["node(s) didn't match node selector"]
}

export const architecture: Filter = (pod, { node }) => {
  const wanted = pod.metadata.annotations?.[ARCH_ANNOTATION]
  if (!wanted) return PASS
  const arch = node.metadata.labels?.[ARCH_LABEL]
  return arch && wanted.split(',').map((a) => a.trim()).includes(arch) ? PASS : ["node(s) didn't match Pod's architecture"]
}

const hostPorts: Filter = (pod, { pods }) => {
  const wanted = hostPortKeys(pod)
  if (wanted.length === 0) return PASS
  const used = new Set(pods.flatMap(hostPortKeys))
  return wanted.some((k) => used.has(k)) ? ["node(s) didn't have free ports for the requested pod ports"] : PASS
}

/** Anti-affinity on the hostname topology: pods on this node are the ones that share its topology. */
const podAntiAffinity: Filter = (pod, n) => {
  const pods = n.pods
  // The incoming pod's own rules against pods already on the node, and theirs against it.
  const violates = (owner: KubeObject, other: KubeObject) =>
    antiAffinityTerms(owner).some(
      (term) =>
        (term.topologyKey === HOSTNAME_LABEL || term.topologyKey === undefined) &&
        namespacesOf(term, owner).includes(other.metadata.namespace ?? 'default') &&
        matchesLabels(term.requirements, other.metadata.labels),
    )
  const own = pod.spec?.affinity?.podAntiAffinity !== undefined
  if (!own && antiAffinityPodsOn(n) === 0) return PASS
  for (const other of pods) {
    // Most pods have no anti-affinity: skip them without building their terms.
    if (!own && other.spec?.affinity?.podAntiAffinity === undefined) continue
    if (violates(pod, other) || violates(other, pod)) return ["node(s) didn't match pod anti-affinity rules"]
  }
  return PASS
}

/** How many of the node's pods carry pod anti-affinity: the kept count, or counted. */
export function antiAffinityPodsOn(n: NodeSnapshot): number {
  return n.antiAffinityPods ?? n.pods.filter(hasPodAntiAffinity).length
}

export function hasPodAntiAffinity(pod: KubeObject): boolean {
  return pod.spec?.affinity?.podAntiAffinity !== undefined
}

/**
 * True when hostPorts and podAntiAffinity cannot fail for this pod on a node where no pod has
 * anti-affinity (no host port wanted, no anti-affinity of its own), and the pod asks for no
 * extended resource: then only cpu, memory and the pod count decide.
 */
export function onlyResourcesMatter(pod: KubeObject): boolean {
  return hostPortKeys(pod).length === 0 && !hasPodAntiAffinity(pod) && podExtendedRequests(pod).size === 0
}

/**
 * Filters that read only the Node object and the pod's own constraints (selectors, affinity,
 * architecture, tolerations): for one pod shape and one Node object the answer never changes, so
 * the scheduler remembers it (see podConstraintKey).
 */
export const NODE_FILTERS: readonly Filter[] = [nodeReady, nodeSchedulable, nodeSelector, architecture, taints]
/** Filters that also read the pods bound to the node. */
export const POD_FILTERS: readonly Filter[] = [resourcesFit, hostPorts, podAntiAffinity]
/** In the order Kubernetes runs them; the first filter that fails names the node's reasons. */
export const FILTERS: readonly Filter[] = [...NODE_FILTERS, ...POD_FILTERS]

const constraintKeys = new WeakMap<KubeObject, string>()

/**
 * Everything NODE_FILTERS read from a pod, as one string: two pods with the same key pass and
 * fail the same nodes.
 */
export function podConstraintKey(pod: KubeObject): string {
  let key = constraintKeys.get(pod)
  if (key === undefined) {
    const spec = pod.spec ?? {}
    key = JSON.stringify([spec.nodeSelector, spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, spec.tolerations, pod.metadata.annotations?.[ARCH_ANNOTATION]])
    constraintKeys.set(pod, key)
  }
  return key
}

export interface Taint {
  key: string
  value?: string
  effect: string
}

export function tolerates(pod: KubeObject, taint: Taint): boolean {
  return ((pod.spec?.tolerations ?? []) as any[]).some((t) => {
    if (t.effect && t.effect !== taint.effect) return false
    if (t.operator === 'Exists') return !t.key || t.key === taint.key
    return t.key === taint.key && (t.value ?? '') === (taint.value ?? '')
  })
}

export function nodeMatchesTerm(node: KubeObject, term: any): boolean {
  const { labels, fields } = requirementsOf(term)
  if (labels.length === 0 && fields.length === 0) return false
  return matchesLabels(labels, node.metadata.labels) && (fields.length === 0 || matchesLabels(fields, { 'metadata.name': node.metadata.name ?? '' }))
}

// A term belongs to a pod, which is never changed in place: its requirements are read once, not per node.
const termRequirements = new WeakMap<object, { labels: Requirement[]; fields: Requirement[] }>()

function requirementsOf(term: any): { labels: Requirement[]; fields: Requirement[] } {
  const read = () => ({ labels: ((term?.matchExpressions ?? []) as any[]).map(toRequirement), fields: ((term?.matchFields ?? []) as any[]).map(toRequirement) })
  if (typeof term !== 'object' || term === null) return read()
  let r = termRequirements.get(term)
  if (!r) termRequirements.set(term, (r = read()))
  return r
}

function toRequirement(e: any): Requirement {
  return { key: String(e?.key ?? ''), operator: e?.operator, values: Array.isArray(e?.values) ? e.values.map(String) : [] }
}

const hostPortsOf = new WeakMap<KubeObject, string[]>()

function hostPortKeys(pod: KubeObject): string[] {
  let keys = hostPortsOf.get(pod)
  if (!keys) {
    keys = ((pod.spec?.containers ?? []) as any[]).flatMap((c) => ((c.ports ?? []) as any[]).filter((p) => p.hostPort).map((p) => `${p.protocol ?? 'TCP'}/${p.hostPort}`))
    hostPortsOf.set(pod, keys)
  }
  return keys
}

interface AntiAffinityTerm {
  requirements: Requirement[]
  topologyKey?: string
  namespaces?: string[]
}

function antiAffinityTerms(pod: KubeObject): AntiAffinityTerm[] {
  const terms: any[] = pod.spec?.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []
  return terms.map((t) => ({
    requirements: [
      ...Object.entries(t.labelSelector?.matchLabels ?? {}).map(([key, value]) => ({ key, operator: 'In' as const, values: [String(value)] })),
      ...((t.labelSelector?.matchExpressions ?? []) as any[]).map(toRequirement),
    ],
    topologyKey: t.topologyKey,
    namespaces: t.namespaces,
  }))
}

function namespacesOf(term: AntiAffinityTerm, owner: KubeObject): string[] {
  return term.namespaces?.length ? term.namespaces : [owner.metadata.namespace ?? 'default']
}
