// The scheduler's filters: each says why a pod cannot go to a node, or nothing when it can.
// Reason texts are Kubernetes' own, so `0/3 nodes are available: ...` reads the same.

import { matchesLabels, type Requirement } from '../api/selector.js'
import type { KubeObject } from '../api/types.js'
import { allocatable, podRequests, requestedOn, type NodeSnapshot } from './snapshot.js'

export type Filter = (pod: KubeObject, node: NodeSnapshot) => string[]

export const ARCH_LABEL = 'kubernetes.io/arch'
export const OS_LABEL = 'kubernetes.io/os'
export const HOSTNAME_LABEL = 'kubernetes.io/hostname'
/** Architectures a pod's images exist for, when they are not all of them: `arm64,amd64`. */
export const ARCH_ANNOTATION = 'bramble.io/architectures'

const nodeReady: Filter = (_pod, { node }) => {
  const ready = (node.status?.conditions ?? []).find((c: any) => c.type === 'Ready')
  return ready?.status === 'True' ? [] : ['node(s) were not ready']
}

const nodeSchedulable: Filter = (pod, { node }) =>
  node.spec?.unschedulable && !tolerates(pod, { key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }) ? ['node(s) were unschedulable'] : []

export const taints: Filter = (pod, { node }) => {
  for (const taint of (node.spec?.taints ?? []) as Taint[]) {
    if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue
    if (!tolerates(pod, taint)) return [`node(s) had untolerated taint {${taint.key}: ${taint.value ?? ''}}`]
  }
  return []
}

const resourcesFit: Filter = (pod, n) => {
  const { node, pods } = n
  const want = podRequests(pod)
  const used = requestedOn(n)
  const cap = allocatable(node)
  const reasons: string[] = []
  if (pods.length + 1 > cap.pods) reasons.push('Too many pods')
  if (want.cpuMilli > 0n && used.cpuMilli + want.cpuMilli > cap.cpuMilli) reasons.push('Insufficient cpu')
  if (want.memoryBytes > 0n && used.memoryBytes + want.memoryBytes > cap.memoryBytes) reasons.push('Insufficient memory')
  return reasons
}

export const nodeSelector: Filter = (pod, { node }) => {
  const labels = node.metadata.labels ?? {}
  const selector: Record<string, string> = pod.spec?.nodeSelector ?? {}
  const selectorOk = Object.entries(selector).every(([k, v]) => labels[k] === v)
  const terms = pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms as any[] | undefined
  const affinityOk = !terms || terms.length === 0 || terms.some((term) => nodeMatchesTerm(node, term))
  return selectorOk && affinityOk ? [] : ["node(s) didn't match node selector"]
}

export const architecture: Filter = (pod, { node }) => {
  const wanted = pod.metadata.annotations?.[ARCH_ANNOTATION]
  if (!wanted) return []
  const arch = node.metadata.labels?.[ARCH_LABEL]
  return arch && wanted.split(',').map((a) => a.trim()).includes(arch) ? [] : ["node(s) didn't match Pod's architecture"]
}

const hostPorts: Filter = (pod, { pods }) => {
  if (hostPortKeys(pod).length === 0) return []
  const used = new Set(pods.flatMap(hostPortKeys))
  return hostPortKeys(pod).some((k) => used.has(k)) ? ["node(s) didn't have free ports for the requested pod ports"] : []
}

/** Anti-affinity on the hostname topology: pods on this node are the ones that share its topology. */
const podAntiAffinity: Filter = (pod, { pods }) => {
  // The incoming pod's own rules against pods already on the node, and theirs against it.
  const violates = (owner: KubeObject, other: KubeObject) =>
    antiAffinityTerms(owner).some(
      (term) =>
        (term.topologyKey === HOSTNAME_LABEL || term.topologyKey === undefined) &&
        namespacesOf(term, owner).includes(other.metadata.namespace ?? 'default') &&
        matchesLabels(term.requirements, other.metadata.labels),
    )
  const own = pod.spec?.affinity?.podAntiAffinity !== undefined
  for (const other of pods) {
    // Most pods have no anti-affinity: skip them without building their terms.
    if (!own && other.spec?.affinity?.podAntiAffinity === undefined) continue
    if (violates(pod, other) || violates(other, pod)) return ["node(s) didn't match pod anti-affinity rules"]
  }
  return []
}

/** In the order Kubernetes runs them; the first filter that fails names the node's reasons. */
export const FILTERS: readonly Filter[] = [nodeReady, nodeSchedulable, nodeSelector, architecture, taints, resourcesFit, hostPorts, podAntiAffinity]

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
  const exprs: any[] = term?.matchExpressions ?? []
  const fields: any[] = term?.matchFields ?? []
  if (exprs.length === 0 && fields.length === 0) return false
  const labelOk = matchesLabels(exprs.map(toRequirement), node.metadata.labels)
  const fieldOk = matchesLabels(fields.map(toRequirement), { 'metadata.name': node.metadata.name ?? '' })
  return labelOk && fieldOk
}

function toRequirement(e: any): Requirement {
  return { key: String(e?.key ?? ''), operator: e?.operator, values: Array.isArray(e?.values) ? e.values.map(String) : [] }
}

function hostPortKeys(pod: KubeObject): string[] {
  return ((pod.spec?.containers ?? []) as any[]).flatMap((c) =>
    ((c.ports ?? []) as any[]).filter((p) => p.hostPort).map((p) => `${p.protocol ?? 'TCP'}/${p.hostPort}`),
  )
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
