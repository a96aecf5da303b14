// `bramble delete`: by TYPE NAME..., TYPE/NAME, -f manifests, or -l / --all over one type.

import type { KindInfo } from '../api/kinds.js'
import { finishBatch, type ClientContext } from './client-context.js'
import { ServerError, UsageError } from './errors.js'
import { objectsOf, readManifestSources } from './manifest-files.js'
import { kindOfManifest, parseResourceArgs, qualifiedName, resourcePath } from './resource-paths.js'

export interface DeleteOptions {
  filename?: string[]
  selector?: string
  all?: boolean
  ignoreNotFound?: boolean
}

interface Victim {
  info: KindInfo
  namespace?: string
  name: string
}

export async function runDelete(ctx: ClientContext, args: string[], options: DeleteOptions, stdin?: () => Promise<string>): Promise<void> {
  const victims: Victim[] = []
  const failures: ServerError[] = []
  let failed = 0
  const nsOf = (info: KindInfo, own?: string) => (info.namespaced ? own || ctx.namespace : undefined)

  if (options.filename && options.filename.length > 0) {
    if (args.length > 0) throw new UsageError('name what to delete either with -f or with TYPE NAME, not both')
    const items = objectsOf(await readManifestSources(options.filename, stdin), (source, err) => {
      failed++
      ctx.io.err(`error: ${source}: ${err.message}\n`)
    })
    for (const { object } of items) {
      const info = kindOfManifest(object.apiVersion, object.kind)
      victims.push({ info, namespace: nsOf(info, object.metadata?.namespace), name: String(object.metadata?.name ?? '') })
    }
  } else {
    const targets = parseResourceArgs(args)
    for (const target of targets) {
      if (target.names.length > 0) {
        if (options.selector || options.all) throw new UsageError('name objects or use -l / --all, not both')
        for (const name of target.names) victims.push({ info: target.info, namespace: nsOf(target.info), name })
        continue
      }
      if (!options.selector && !options.all) throw new UsageError(`name the ${target.info.plural} to delete, or pass -l SELECTOR or --all`)
      const res = await ctx.client.request('GET', resourcePath(target.info, nsOf(target.info)), { query: { labelSelector: options.selector || undefined } })
      const items: any[] = res.json?.items ?? []
      for (const o of items) victims.push({ info: target.info, namespace: nsOf(target.info, o.metadata?.namespace), name: o.metadata.name })
      if (items.length === 0) ctx.io.err(target.info.namespaced ? `No resources found in ${ctx.namespace} namespace.\n` : 'No resources found\n')
    }
  }

  for (const v of victims) {
    try {
      await ctx.client.request('DELETE', resourcePath(v.info, v.namespace, v.name))
      ctx.io.out(`${qualifiedName(v.info)} "${v.name}" deleted\n`)
    } catch (err) {
      if (!(err instanceof ServerError)) throw err
      if (err.status === 404 && options.ignoreNotFound) continue
      failures.push(err)
    }
  }
  // Files that did not parse count as failures too.
  finishBatch(ctx.io, failures, victims.length + failed, 'deleted', failed)
}
