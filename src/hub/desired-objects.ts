// What goes down to a node, as data: the keys of desired objects, the ConfigMaps and Secrets a pod
// uses, the node's own Node cut to what its agent acts on, and the snapshots (object key →
// version) whose differences make a desired message. desired-state.ts decides when and to whom.

import type { DesiredObject, ObjectRef } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import { ANNOTATION_SECRETS_PUBLIC_KEY, isSealingKey } from '../api/sealed-secret.js'
import { ANNOTATION_CLUSTER_CIDR } from '../mesh/pod-network.js'

export type DesiredKind = DesiredObject['kind']
/** `Kind/namespace/name` */
export type DesiredKey = string
/** Object key → resourceVersion: what a node holds at one revision. */
export type Snapshot = Map<DesiredKey, string>

export function desiredKey(kind: DesiredKind, namespace: string, name: string): DesiredKey {
  return `${kind}/${namespace}/${name}`
}

export function parseKey(key: DesiredKey): ObjectRef {
  const [kind, namespace, name] = key.split('/') as [DesiredKind, string, string]
  return { kind, namespace, name }
}

/** ConfigMaps and Secrets a pod uses: volumes (also projected), env valueFrom and envFrom, imagePullSecrets. */
export function referencedObjects(pod: KubeObject): DesiredKey[] {
  const ns = pod.metadata.namespace ?? 'default'
  const out = new Set<DesiredKey>()
  const add = (kind: 'ConfigMap' | 'Secret', name: unknown) => {
    if (typeof name === 'string' && name !== '') out.add(desiredKey(kind, ns, name))
  }
  const spec = (pod.spec ?? {}) as Record<string, any>
  for (const v of asArray(spec.volumes)) {
    add('ConfigMap', v?.configMap?.name)
    add('Secret', v?.secret?.secretName)
    for (const s of asArray(v?.projected?.sources)) {
      add('ConfigMap', s?.configMap?.name)
      add('Secret', s?.secret?.name)
    }
  }
  for (const r of asArray(spec.imagePullSecrets)) add('Secret', r?.name)
  for (const c of [...asArray(spec.initContainers), ...asArray(spec.containers)]) {
    for (const e of asArray(c?.env)) {
      add('ConfigMap', e?.valueFrom?.configMapKeyRef?.name)
      add('Secret', e?.valueFrom?.secretKeyRef?.name)
    }
    for (const f of asArray(c?.envFrom)) {
      add('ConfigMap', f?.configMapRef?.name)
      add('Secret', f?.secretRef?.name)
    }
  }
  return [...out]
}

function asArray(v: unknown): any[] {
  return Array.isArray(v) ? v : []
}

/** Annotations of its Node an agent acts on: the cluster CIDR its pod subnet came from. */
const NODE_ANNOTATIONS_SENT = [ANNOTATION_CLUSTER_CIDR]

/** The node's own Node as it goes down: what the agent acts on (its pod subnet), not its status. */
export function ownNode(node: KubeObject): DesiredObject {
  const annotations = Object.fromEntries(Object.entries(node.metadata.annotations ?? {}).filter(([k]) => NODE_ANNOTATIONS_SENT.includes(k)))
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: node.metadata.name, namespace: '', uid: node.metadata.uid, annotations }, spec: node.spec ?? {} } as DesiredObject
}

/** The node's public key for Secrets in transit, when it has a well-formed one. */
export function secretsKeyOf(node: KubeObject): string | undefined {
  const key = node.metadata.annotations?.[ANNOTATION_SECRETS_PUBLIC_KEY]
  return isSealingKey(key) ? key : undefined
}

/** What tells two sent versions apart: the resourceVersion, or for the cut Node what it carries (status writes bump the version). */
export function versionOf(o: DesiredObject): string {
  return o.kind === 'Node' ? `node:${JSON.stringify([o.metadata.annotations, o.spec])}` : (o.metadata.resourceVersion ?? '')
}

export function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  if (a.size !== b.size) return false
  for (const [k, v] of a) if (b.get(k) !== v) return false
  return true
}

export function diff(base: Snapshot, now: Snapshot, objects: Map<DesiredKey, DesiredObject>): { upserts: DesiredObject[]; deletes: ObjectRef[] } {
  const upserts: DesiredObject[] = []
  for (const [key, rv] of now) if (base.get(key) !== rv) upserts.push(objects.get(key)!)
  const deletes: ObjectRef[] = []
  for (const key of base.keys()) if (!now.has(key)) deletes.push(parseKey(key))
  return { upserts, deletes }
}
