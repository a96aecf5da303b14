// `bramble describe TYPE NAME`: the object, then the Events about it (for a claim, also the pods
// that use it).

import { claimsOfPod } from '../api/claims.js'
import type { KubeObject } from '../api/types.js'
import { finishBatch, type ClientContext } from './client-context.js'
import { describeObject } from './describe-format.js'
import { ServerError, UsageError } from './errors.js'
import { parseResourceArgs, resourcePath } from './resource-paths.js'
import { kindByName } from '../api/kinds.js'

export async function runDescribe(ctx: ClientContext, args: string[], options: { selector?: string }): Promise<void> {
  const targets = parseResourceArgs(args)
  const events = kindByName('events')!
  const failures: ServerError[] = []
  let total = 0
  let first = true
  for (const target of targets) {
    const namespace = target.info.namespaced ? ctx.namespace : undefined
    let objects: KubeObject[] = []
    if (target.names.length === 0) {
      const res = await ctx.client.request('GET', resourcePath(target.info, namespace), { query: { labelSelector: options.selector || undefined } })
      objects = res.json?.items ?? []
      total += objects.length
    }
    for (const name of target.names) {
      total++
      try {
        objects.push((await ctx.client.request('GET', resourcePath(target.info, namespace, name))).json)
      } catch (err) {
        if (!(err instanceof ServerError)) throw err
        failures.push(err)
      }
    }
    for (const o of objects) {
      const obj = { ...o, kind: o.kind ?? target.info.kind }
      const fieldSelector = [`involvedObject.name=${obj.metadata.name}`, `involvedObject.kind=${obj.kind}`]
      if (obj.metadata.namespace) fieldSelector.push(`involvedObject.namespace=${obj.metadata.namespace}`)
      // Events of a cluster-scoped object (a Node) live in the default namespace, as in Kubernetes.
      const eventsPath = resourcePath(events, obj.metadata.namespace ?? 'default')
      const found = (await ctx.client.request('GET', eventsPath, { query: { fieldSelector: fieldSelector.join(',') } })).json?.items ?? []
      const related = obj.kind === 'PersistentVolumeClaim' ? { usedBy: await podsUsingClaim(ctx, obj) } : {}
      ctx.io.out((first ? '' : '\n\n') + describeObject(obj, found, Date.now(), related))
      first = false
    }
  }
  if (total === 0 && failures.length === 0) {
    if (targets.every((t) => t.names.length === 0)) ctx.io.err(`No resources found in ${ctx.namespace} namespace.\n`)
    else throw new UsageError('nothing to describe')
  }
  finishBatch(ctx.io, failures, total, 'found')
}

/** The names of the pods in the claim's namespace whose volumes name it, as kubectl's "Used By". */
async function podsUsingClaim(ctx: ClientContext, claim: KubeObject): Promise<string[]> {
  const pods: KubeObject[] = (await ctx.client.request('GET', resourcePath(kindByName('pods')!, claim.metadata.namespace))).json?.items ?? []
  return pods.filter((p) => claimsOfPod(p).includes(claim.metadata.name!)).map((p) => p.metadata.name!)
}
