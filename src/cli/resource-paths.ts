// API paths for a kind, built from src/api/kinds.ts the way kubectl builds them from discovery.

import { kindByApiVersion, kindByName, type KindInfo } from '../api/kinds.js'
import { UsageError } from './errors.js'

/**
 * The collection or object path of a kind: `/api/v1/namespaces/NS/pods[/NAME][/SUB]`,
 * `/apis/apps/v1/...`, `/api/v1/nodes[/NAME]` for cluster-scoped kinds. A namespaced kind without
 * a namespace (`-A`) gives the all-namespaces collection.
 */
export function resourcePath(info: KindInfo, namespace?: string, name?: string, subresource?: string): string {
  const prefix = info.group === '' ? `/api/${info.version}` : `/apis/${info.group}/${info.version}`
  const ns = info.namespaced && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : ''
  const obj = name === undefined ? '' : `/${encodeURIComponent(name)}`
  const sub = subresource === undefined ? '' : `/${subresource}`
  return `${prefix}${ns}/${info.plural}${obj}${sub}`
}

/** What a person typed (`deploy`, `pods`, `deployments.apps`) as a kind, or UsageError. */
export function kindOf(typed: string): KindInfo {
  const info = kindByName(typed)
  if (!info) throw new UsageError(`unknown resource type "${typed}"; try one of: ${knownTypes()}`)
  return info
}

/** The kind of a manifest, or an error naming it. */
export function kindOfManifest(apiVersion: unknown, kind: unknown): KindInfo {
  if (typeof apiVersion !== 'string' || typeof kind !== 'string') throw new UsageError('the manifest has no apiVersion or kind')
  const info = kindByApiVersion(apiVersion, kind)
  if (!info) throw new UsageError(`unknown kind "${kind}" in apiVersion "${apiVersion}"`)
  return info
}

/** `deployment.apps`, `pod`: the resource name kubectl prints before `/NAME`. */
export function qualifiedName(info: KindInfo): string {
  return info.group === '' ? info.singular : `${info.singular}.${info.group}`
}

function knownTypes(): string {
  return 'pods, deployments, replicasets, daemonsets, jobs, cronjobs, services, endpoints, configmaps, secrets, events, namespaces, nodes'
}

/** What `get all` lists, as kubectl's `all` category: the workloads and their Services. */
const ALL = ['pods', 'services', 'daemonsets', 'deployments', 'replicasets', 'jobs', 'cronjobs']

export interface ResourceTarget {
  info: KindInfo
  /** Named objects, or none for "all of this type". */
  names: string[]
}

/**
 * The targets of `get`, `delete` and `describe` arguments, as kubectl reads them: either
 * `TYPE[,TYPE...] [NAME...]`, or one or more `TYPE/NAME`.
 */
export function parseResourceArgs(args: readonly string[]): ResourceTarget[] {
  if (args.length === 0) throw new UsageError('name a resource type, e.g. `pods`, `deployments` or `deploy/web`')
  if (args[0].includes('/')) {
    const targets: ResourceTarget[] = []
    for (const arg of args) {
      const slash = arg.indexOf('/')
      if (slash <= 0 || slash === arg.length - 1) throw new UsageError(`"${arg}" is not of the form TYPE/NAME; do not mix TYPE/NAME with TYPE NAME`)
      const info = kindOf(arg.slice(0, slash))
      const name = arg.slice(slash + 1)
      const same = targets.find((t) => t.info === info)
      if (same) same.names.push(name)
      else targets.push({ info, names: [name] })
    }
    return targets
  }
  const types = args[0].split(',').filter(Boolean).flatMap((t) => (t.toLowerCase() === 'all' ? ALL : [t]))
  const names = args.slice(1)
  const bad = names.find((n) => n.includes('/'))
  if (bad) throw new UsageError(`"${bad}" looks like TYPE/NAME; do not mix TYPE/NAME with TYPE NAME`)
  if (names.length > 0 && types.length > 1) throw new UsageError('names can be given with one resource type only')
  const seen = new Set<KindInfo>()
  return types.map(kindOf).filter((info) => !seen.has(info) && seen.add(info)).map((info) => ({ info, names: [...names] }))
}
