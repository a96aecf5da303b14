// Discovery documents: how clients (kubectl, client-go, @kubernetes/client-node) find the kinds.

import { KINDS, type KindInfo } from '../api/kinds.js'

/** The Kubernetes version Bramble's API matches; kubectl dispatchers pick a client by it. */
export const KUBERNETES_VERSION = { major: '1', minor: '32', gitVersion: 'v1.32.0' }

const GROUPS = ['apps', 'batch', 'storage.k8s.io'] as const
/** Kinds `kubectl get all` shows. */
const CATEGORY_ALL = new Set(['Pod', 'Service', 'Deployment', 'ReplicaSet', 'DaemonSet', 'StatefulSet', 'Job', 'CronJob'])
const VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch']

export function versionInfo(bramble: string) {
  return {
    major: KUBERNETES_VERSION.major,
    minor: KUBERNETES_VERSION.minor,
    gitVersion: `${KUBERNETES_VERSION.gitVersion}+bramble.${bramble}`,
    gitCommit: '',
    gitTreeState: 'clean',
    buildDate: '',
    goVersion: '',
    compiler: 'bramble',
    platform: `${process.platform}/${process.arch}`,
  }
}

export function coreVersions(serverAddress: string) {
  return { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress }] }
}

function group(name: string) {
  const gv = { groupVersion: `${name}/v1`, version: 'v1' }
  return { name, versions: [gv], preferredVersion: gv }
}

/** The groups `/apis` lists: apps, batch and storage.k8s.io, then any served beside them (metrics.k8s.io). */
export function groupList(extra: Array<ReturnType<typeof group>> = []) {
  return { kind: 'APIGroupList', apiVersion: 'v1', groups: [...GROUPS.map(group), ...extra] }
}

export function apiGroup(name: string) {
  return (GROUPS as readonly string[]).includes(name) ? { kind: 'APIGroup', apiVersion: 'v1', ...group(name) } : undefined
}

/** The resources of one group-version, with their subresources, as `/api/v1` or `/apis/apps/v1` lists them. */
export function resourceList(groupName: string, version: string) {
  const kinds = KINDS.filter((k) => k.group === groupName && k.version === version)
  if (kinds.length === 0) return undefined
  return {
    kind: 'APIResourceList',
    apiVersion: 'v1',
    groupVersion: groupName === '' ? version : `${groupName}/${version}`,
    resources: kinds.flatMap(resourceEntries),
  }
}

function resourceEntries(k: KindInfo) {
  const main: Record<string, unknown> = {
    name: k.plural,
    singularName: k.singular,
    namespaced: k.namespaced,
    kind: k.kind,
    verbs: VERBS,
  }
  if (k.shortNames.length > 0) main.shortNames = k.shortNames
  if (CATEGORY_ALL.has(k.kind)) main.categories = ['all']
  const subs = k.subresources.flatMap((sub) => {
    switch (sub) {
      case 'status':
        return [{ name: `${k.plural}/status`, singularName: '', namespaced: k.namespaced, kind: k.kind, verbs: ['get', 'patch', 'update'] }]
      case 'scale':
        return [{ name: `${k.plural}/scale`, singularName: '', namespaced: k.namespaced, group: 'autoscaling', version: 'v1', kind: 'Scale', verbs: ['get', 'patch', 'update'] }]
      case 'eviction':
        // kubectl drain looks for exactly this entry (name, kind, group and version) to evict rather than delete.
        return [{ name: `${k.plural}/eviction`, singularName: '', namespaced: k.namespaced, group: 'policy', version: 'v1', kind: 'Eviction', verbs: ['create'] }]
      case 'binding':
        return [{ name: `${k.plural}/binding`, singularName: '', namespaced: k.namespaced, kind: 'Binding', verbs: ['create'] }]
      case 'exec':
        return [{ name: `${k.plural}/exec`, singularName: '', namespaced: k.namespaced, kind: 'PodExecOptions', verbs: ['create', 'get'] }]
      case 'portforward':
        return [{ name: `${k.plural}/portforward`, singularName: '', namespaced: k.namespaced, kind: 'PodPortForwardOptions', verbs: ['create', 'get'] }]
      default:
        return [] // pod logs arrive with the agent
    }
  })
  return [main, ...subs]
}
