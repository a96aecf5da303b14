// `bramble delete`: by TYPE NAME..., TYPE/NAME, -f manifests, or -l / --all over one type.
// --cascade says what becomes of the objects the deleted ones own, as kubectl's does: background
// (deleted after it, the default), foreground (deleted before it) or orphan (kept, unowned). An
// object the hub only marks for deletion (those, or one a finalizer holds) is waited for, up to a
// minute, unless --wait=false.

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
  /** background | foreground | orphan; true (the flag alone) is background, as kubectl has it. */
  cascade?: string | boolean
  /** Whether to wait for objects only marked for deletion to be gone: true (the default, or the flag alone) or false. */
  wait?: string | boolean
}

type PropagationPolicy = 'Background' | 'Foreground' | 'Orphan'

/** How long to wait for an object marked for deletion (orphan, foreground, finalizers) to be gone, as kubectl --wait does. */
const WAIT_FOR_DELETION_MS = 60_000

export function propagationPolicyOf(cascade: string | boolean | undefined): PropagationPolicy {
  switch (cascade) {
    case undefined:
    case true:
    case 'true':
    case 'background':
      return 'Background'
    case false:
    case 'false':
    case 'orphan':
      return 'Orphan'
    case 'foreground':
      return 'Foreground'
    default:
      throw new UsageError(`invalid cascade value (${String(cascade)}). Must be "background", "foreground", or "orphan"`)
  }
}

function waitOf(wait: string | boolean | undefined): boolean {
  if (wait === undefined || wait === true || wait === 'true') return true
  if (wait === false || wait === 'false') return false
  throw new UsageError(`invalid --wait value (${String(wait)}). Must be "true" or "false"`)
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
  const propagationPolicy = propagationPolicyOf(options.cascade)
  const wait = waitOf(options.wait)

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
      const res = await ctx.client.request('DELETE', resourcePath(v.info, v.namespace, v.name), { body: { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy } })
      ctx.io.out(`${qualifiedName(v.info)} "${v.name}" deleted\n`)
      // Marked, not yet gone: the hub's garbage collector orphans or deletes its dependents first,
      // or a finalizer holds it (a claim a pod uses).
      if (res.json?.metadata?.deletionTimestamp && wait) await waitUntilGone(ctx, v, res.json.metadata)
    } catch (err) {
      if (!(err instanceof ServerError)) throw err
      if (err.status === 404 && options.ignoreNotFound) continue
      failures.push(err)
    }
  }
  // Files that did not parse count as failures too.
  finishBatch(ctx.io, failures, victims.length + failed, 'deleted', failed)
}

async function waitUntilGone(ctx: ClientContext, v: Victim, marked: { resourceVersion?: string; finalizers?: string[] }): Promise<void> {
  const deadline = new AbortController()
  const timer = setTimeout(() => deadline.abort(), WAIT_FOR_DELETION_MS)
  try {
    const query = { fieldSelector: `metadata.name=${v.name}`, resourceVersion: marked.resourceVersion || undefined }
    for await (const event of ctx.client.watch(resourcePath(v.info, v.namespace), { query, signal: deadline.signal })) {
      if (event.type === 'DELETED') return
    }
  } catch (err) {
    if (!deadline.signal.aborted) throw err
  } finally {
    clearTimeout(timer)
  }
  ctx.io.err(`warning: ${qualifiedName(v.info)} "${v.name}" is still being deleted (Terminating); it goes once its finalizers are removed: ${(marked.finalizers ?? []).join(', ')}\n`)
}
