// `bramble top nodes|pods`: CPU and memory now, from the hub's metrics.k8s.io API (the figures the
// agents send with their heartbeats), printed as kubectl top prints them.

import type { KubeObject } from '../api/types.js'
import type { ClientContext } from './client-context.js'
import { CommandError, ServerError, UsageError } from './errors.js'
import { formatTopNodes, formatTopPods, type TopSort } from './top-format.js'

const METRICS = '/apis/metrics.k8s.io/v1beta1'

export interface TopOptions {
  selector?: string
  sortBy?: string
  allNamespaces?: boolean
  containers?: boolean
}

export function sortOf(value: string | undefined): TopSort | undefined {
  if (value === undefined) return undefined
  if (value === 'cpu' || value === 'memory') return value
  throw new UsageError(`--sort-by must be cpu or memory, got "${value}"`)
}

export async function runTopNodes(ctx: ClientContext, name: string | undefined, options: TopOptions): Promise<void> {
  const sort = sortOf(options.sortBy)
  const query = { labelSelector: options.selector || undefined }
  const nodes: KubeObject[] = name ? [(await ctx.client.request('GET', `/api/v1/nodes/${encodeURIComponent(name)}`)).json] : ((await ctx.client.request('GET', '/api/v1/nodes', { query })).json?.items ?? [])
  const metrics: KubeObject[] = (await metricsRequest(ctx, `${METRICS}/nodes`, query)).json?.items ?? []
  if (nodes.length === 0) return void ctx.io.err('No resources found\n')
  if (name && !metrics.some((m) => m.metadata.name === name)) throw new CommandError(`metrics not available yet for node ${name}: its agent has sent no usage recently`)
  ctx.io.out(formatTopNodes(nodes, metrics, sort))
}

export async function runTopPods(ctx: ClientContext, name: string | undefined, options: TopOptions): Promise<void> {
  const sort = sortOf(options.sortBy)
  if (name && options.allNamespaces) throw new UsageError('a pod cannot be named across all namespaces; drop -A or the name')
  const base = options.allNamespaces ? `${METRICS}/pods` : `${METRICS}/namespaces/${encodeURIComponent(ctx.namespace)}/pods`
  let metrics: KubeObject[]
  try {
    const res = await metricsRequest(ctx, name ? `${base}/${encodeURIComponent(name)}` : base, { labelSelector: options.selector || undefined })
    metrics = name ? [res.json] : (res.json?.items ?? [])
  } catch (err) {
    if (name && err instanceof ServerError && err.status === 404) throw new CommandError(`metrics not available for pod ${ctx.namespace}/${name}: it is not running, or its node has sent no usage recently`)
    throw err
  }
  if (metrics.length === 0) return void ctx.io.err(options.allNamespaces ? 'No resources found\n' : `No resources found in ${ctx.namespace} namespace.\n`)
  ctx.io.out(formatTopPods(metrics, { allNamespaces: options.allNamespaces, containers: options.containers, sort }))
}

/** A metrics.k8s.io request; a hub without the API is said so. */
async function metricsRequest(ctx: ClientContext, path: string, query: Record<string, string | undefined>) {
  try {
    return await ctx.client.request('GET', path, { query })
  } catch (err) {
    if (err instanceof ServerError && err.status === 404 && /could not find the requested resource/.test(err.message)) {
      throw new CommandError('the hub serves no metrics API (metrics.k8s.io); upgrade the hub')
    }
    throw err
  }
}
