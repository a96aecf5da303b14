// `bramble apply -f`: client-side apply as kubectl does it (GET; create with the last-applied
// annotation, or patch with the difference; nothing when nothing changed).

import type { KubeObject } from '../api/types.js'
import { applyPatch, lastAppliedOf, withLastApplied } from './apply-patch.js'
import type { ClientContext } from './client-context.js'
import { PartialFailureError, ServerError } from './errors.js'
import { objectsOf, readManifestSources, type SourcedObject } from './manifest-files.js'
import { kindOfManifest, qualifiedName, resourcePath } from './resource-paths.js'

const MERGE_PATCH = 'application/merge-patch+json'

export type ApplyOutcome = 'created' | 'configured' | 'unchanged'

export async function runApply(ctx: ClientContext, files: string[], stdin?: () => Promise<string>): Promise<void> {
  const sources = await readManifestSources(files, stdin)
  let unreadable = 0
  let failed = 0
  const items = objectsOf(sources, (source, err) => {
    unreadable++
    ctx.io.err(`error: ${source}: ${err.message}\n`)
  })
  for (const item of items) {
    try {
      const { outcome, display } = await applyOne(ctx, item)
      ctx.io.out(`${display} ${outcome}\n`)
    } catch (err) {
      failed++
      ctx.io.err(describeFailure(item, err))
    }
  }
  // A file that does not parse counts as one failed object: its documents are unknown.
  if (failed + unreadable > 0) throw new PartialFailureError(failed + unreadable, items.length + unreadable, 'applied')
}

/** Applies one manifest; returns what happened and the `deployment.apps/web` it happened to. */
export async function applyOne(ctx: ClientContext, item: SourcedObject): Promise<{ outcome: ApplyOutcome; display: string }> {
  const info = kindOfManifest(item.object.apiVersion, item.object.kind)
  const name = item.object.metadata?.name
  if (typeof name !== 'string' || name === '') {
    throw new ServerError(`the ${item.object.kind} in ${item.source} has no metadata.name${item.object.metadata?.generateName ? ' (apply cannot use generateName)' : ''}`, 400, 'BadRequest')
  }
  const display = `${qualifiedName(info)}/${name}`
  const manifest: KubeObject = { ...item.object, metadata: { ...item.object.metadata } }
  let namespace: string | undefined
  if (info.namespaced) {
    namespace = manifest.metadata.namespace || ctx.namespace
    manifest.metadata.namespace = namespace
  }
  const query = { fieldValidation: 'Strict' }

  let live: KubeObject | undefined
  try {
    live = (await ctx.client.request('GET', resourcePath(info, namespace, name))).json
  } catch (err) {
    if (!(err instanceof ServerError && err.status === 404)) throw err
  }
  if (!live) {
    await ctx.client.request('POST', resourcePath(info, namespace), { body: withLastApplied(manifest), query })
    return { outcome: 'created', display }
  }
  const patch = applyPatch(lastAppliedOf(live), manifest, live)
  if (Object.keys(patch).length === 0) return { outcome: 'unchanged', display }
  await ctx.client.request('PATCH', resourcePath(info, namespace, name), { body: patch, contentType: MERGE_PATCH, query })
  return { outcome: 'configured', display }
}

function describeFailure(item: SourcedObject, err: unknown): string {
  const what = `${item.object.kind ?? 'object'} "${item.object.metadata?.name ?? '?'}" from ${item.source}`
  if (err instanceof ServerError && err.reason) return `Error from server (${err.reason}): error applying ${what}: ${err.message}\n`
  return `error: applying ${what}: ${err instanceof Error ? err.message : String(err)}\n`
}
