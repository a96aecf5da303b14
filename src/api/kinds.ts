// The kinds Bramble serves and where they live in the Kubernetes API.

export type Subresource = 'status' | 'scale' | 'log' | 'eviction' | 'binding' | 'exec' | 'portforward'

export interface KindInfo {
  kind: string
  /** API group: '' for the core group. */
  group: '' | 'apps' | 'batch' | 'storage.k8s.io'
  version: 'v1'
  /** Resource name in URLs, e.g. `deployments`. */
  plural: string
  singular: string
  namespaced: boolean
  shortNames: string[]
  subresources: Subresource[]
  /** Kinds whose spec changes bump metadata.generation. */
  hasGeneration: boolean
}

export const KINDS: readonly KindInfo[] = [
  { kind: 'Namespace', group: '', version: 'v1', plural: 'namespaces', singular: 'namespace', namespaced: false, shortNames: ['ns'], subresources: ['status'], hasGeneration: false },
  { kind: 'Node', group: '', version: 'v1', plural: 'nodes', singular: 'node', namespaced: false, shortNames: ['no'], subresources: ['status'], hasGeneration: false },
  { kind: 'Pod', group: '', version: 'v1', plural: 'pods', singular: 'pod', namespaced: true, shortNames: ['po'], subresources: ['status', 'log', 'eviction', 'binding', 'exec', 'portforward'], hasGeneration: false },
  { kind: 'Service', group: '', version: 'v1', plural: 'services', singular: 'service', namespaced: true, shortNames: ['svc'], subresources: ['status'], hasGeneration: false },
  { kind: 'Endpoints', group: '', version: 'v1', plural: 'endpoints', singular: 'endpoints', namespaced: true, shortNames: ['ep'], subresources: [], hasGeneration: false },
  { kind: 'ConfigMap', group: '', version: 'v1', plural: 'configmaps', singular: 'configmap', namespaced: true, shortNames: ['cm'], subresources: [], hasGeneration: false },
  { kind: 'Secret', group: '', version: 'v1', plural: 'secrets', singular: 'secret', namespaced: true, shortNames: [], subresources: [], hasGeneration: false },
  { kind: 'Event', group: '', version: 'v1', plural: 'events', singular: 'event', namespaced: true, shortNames: ['ev'], subresources: [], hasGeneration: false },
  { kind: 'Deployment', group: 'apps', version: 'v1', plural: 'deployments', singular: 'deployment', namespaced: true, shortNames: ['deploy'], subresources: ['status', 'scale'], hasGeneration: true },
  { kind: 'ReplicaSet', group: 'apps', version: 'v1', plural: 'replicasets', singular: 'replicaset', namespaced: true, shortNames: ['rs'], subresources: ['status', 'scale'], hasGeneration: true },
  { kind: 'DaemonSet', group: 'apps', version: 'v1', plural: 'daemonsets', singular: 'daemonset', namespaced: true, shortNames: ['ds'], subresources: ['status'], hasGeneration: true },
  { kind: 'Job', group: 'batch', version: 'v1', plural: 'jobs', singular: 'job', namespaced: true, shortNames: [], subresources: ['status'], hasGeneration: true },
  { kind: 'StatefulSet', group: 'apps', version: 'v1', plural: 'statefulsets', singular: 'statefulset', namespaced: true, shortNames: ['sts'], subresources: ['status', 'scale'], hasGeneration: true },
  { kind: 'PersistentVolumeClaim', group: '', version: 'v1', plural: 'persistentvolumeclaims', singular: 'persistentvolumeclaim', namespaced: true, shortNames: ['pvc'], subresources: ['status'], hasGeneration: false },
  { kind: 'PersistentVolume', group: '', version: 'v1', plural: 'persistentvolumes', singular: 'persistentvolume', namespaced: false, shortNames: ['pv'], subresources: ['status'], hasGeneration: false },
  { kind: 'StorageClass', group: 'storage.k8s.io', version: 'v1', plural: 'storageclasses', singular: 'storageclass', namespaced: false, shortNames: ['sc'], subresources: [], hasGeneration: false },
  { kind: 'CronJob', group: 'batch', version: 'v1', plural: 'cronjobs', singular: 'cronjob', namespaced: true, shortNames: ['cj'], subresources: ['status'], hasGeneration: true },
]

export function apiVersionOf(info: KindInfo): string {
  return info.group === '' ? info.version : `${info.group}/${info.version}`
}

/** Finds a kind by its manifest `apiVersion` and `kind`. */
export function kindByApiVersion(apiVersion: string, kind: string): KindInfo | undefined {
  return KINDS.find((k) => apiVersionOf(k) === apiVersion && k.kind === kind)
}

/** Finds a kind by its URL group, version and plural resource name. */
export function kindByResource(group: string, version: string, plural: string): KindInfo | undefined {
  return KINDS.find((k) => k.group === group && k.version === version && k.plural === plural)
}

/** Resolves what a person types (`deploy`, `pods`, `Service`, `deployments.apps`) to a kind. */
export function kindByName(name: string): KindInfo | undefined {
  const lower = name.toLowerCase()
  const [base, group] = lower.includes('.') ? [lower.slice(0, lower.indexOf('.')), lower.slice(lower.indexOf('.') + 1)] : [lower, undefined]
  return KINDS.find(
    (k) =>
      (group === undefined || k.group === group) &&
      (k.plural === base || k.singular === base || k.kind.toLowerCase() === base || k.shortNames.includes(base)),
  )
}
