// `bramble scale TYPE/NAME --replicas=N`: a merge patch on the scale subresource, as kubectl sends it.

import type { ClientContext } from './client-context.js'
import { UsageError } from './errors.js'
import { parseResourceArgs, qualifiedName, resourcePath } from './resource-paths.js'

/** `--replicas` as a count: a whole number, zero or more; anything else is a usage error. */
export function replicasOf(value: string | undefined): number {
  if (value === undefined) throw new UsageError('--replicas=N is required, e.g. `bramble scale deploy/web --replicas=3`')
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--replicas must be a whole number of zero or more, not "${value}"`)
  return Number(value)
}

export async function runScale(ctx: ClientContext, args: string[], options: { replicas?: string }): Promise<void> {
  const replicas = replicasOf(options.replicas)
  const targets = parseResourceArgs(args)
  for (const target of targets) {
    if (!target.info.subresources.includes('scale')) throw new UsageError(`${target.info.plural} cannot be scaled; scale deployments, replicasets or statefulsets`)
    if (target.names.length === 0) throw new UsageError(`name the ${target.info.singular} to scale, e.g. ${target.info.singular}/NAME`)
  }
  for (const target of targets) {
    for (const name of target.names) {
      const path = resourcePath(target.info, ctx.namespace, name, 'scale')
      await ctx.client.request('PATCH', path, { body: { spec: { replicas } }, contentType: 'application/merge-patch+json' })
      ctx.io.out(`${qualifiedName(target.info)}/${name} scaled\n`)
    }
  }
}
