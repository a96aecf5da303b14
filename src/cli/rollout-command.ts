// `bramble rollout status|history|undo`: kubectl's rollout commands for Deployments (and status
// for DaemonSets), over the hub's API: status follows a watch of the one object, history and undo
// read the ReplicaSets the Deployment controls.

import { setTimeout as sleep } from 'node:timers/promises'
import type { KindInfo } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { ClientContext } from './client-context.js'
import { ProgressBar } from './progress-bar.js'
import { ServerError, UsageError, WaitTimeoutError } from './errors.js'
import { kindOf, parseResourceArgs, qualifiedName, resourcePath } from './resource-paths.js'
import { timeoutMsOf } from './timeout-flag.js'
import { historyTable, revisionTemplate, revisionsOf, rollbackOf, rollbackRevision, type Revision } from './rollout-history.js'
import { daemonSetRolloutState, statefulSetRolloutState, deploymentRolloutState, type RolloutState } from './rollout-status.js'

export interface RolloutStatusOptions {
  /** `0`, `0s` or absent: wait as long as it takes. */
  timeout?: string
  /** `false`: print the state once and stop. */
  watch?: string | boolean
  revision?: string
}

interface Target {
  info: KindInfo
  name: string
}

/** One `TYPE/NAME` (or `TYPE NAME`) of a kind the subcommand supports. */
export function rolloutTarget(args: readonly string[], verb: 'status' | 'history' | 'undo'): Target {
  const targets = parseResourceArgs(args)
  const names = targets.flatMap((t) => t.names.map((name) => ({ info: t.info, name })))
  if (names.length !== 1) throw new UsageError(`rollout ${verb} takes exactly one resource, e.g. deployment/web`)
  const { info } = names[0]
  const supported = verb === 'status' ? ['Deployment', 'DaemonSet', 'StatefulSet'] : ['Deployment']
  if (!supported.includes(info.kind)) {
    const extra = info.kind === 'DaemonSet' || info.kind === 'StatefulSet' ? ` (Bramble keeps no revision history for ${info.plural})` : ''
    throw new UsageError(`rollout ${verb} works on ${verb === 'status' ? 'deployments, daemonsets and statefulsets' : 'deployments'}, not ${info.plural}${extra}`)
  }
  return names[0]
}

/** A whole number flag of zero or more (`--revision`, `--to-revision`). */
export function revisionOf(value: string | undefined, flag: string): number {
  if (value === undefined) return 0
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`${flag} must be a revision number (a whole number of zero or more), not "${value}"`)
  return Number(value)
}

function watchFlag(value: string | boolean | undefined): boolean {
  if (value === undefined || value === true || value === 'true') return true
  if (value === false || value === 'false') return false
  throw new UsageError(`--watch must be true or false, not "${String(value)}"`)
}

export async function runRolloutStatus(ctx: ClientContext, args: string[], options: RolloutStatusOptions): Promise<void> {
  const { info, name } = rolloutTarget(args, 'status')
  const timeoutMs = timeoutMsOf(options.timeout)
  const watch = watchFlag(options.watch)
  const revision = revisionOf(options.revision, '--revision')
  const stateOf = (o: KubeObject): RolloutState =>
    info.kind === 'DaemonSet' ? daemonSetRolloutState(o) : info.kind === 'StatefulSet' ? statefulSetRolloutState(o) : deploymentRolloutState(o, revision)
  const path = resourcePath(info, ctx.namespace)
  const query = { fieldSelector: `metadata.name=${name}` }

  const deadline = new AbortController()
  const timer = timeoutMs > 0 ? setTimeout(() => deadline.abort(), timeoutMs) : undefined
  let last = ''
  const bar = new ProgressBar(ctx.io)
  const show = (state: RolloutState) => {
    if (state.message !== last) bar.out(state.message)
    last = state.message
    if (state.progress && !state.done) bar.update(state.progress.done, state.progress.total, state.progress.label)
    else bar.clear()
    return state.done
  }
  try {
    // List, then watch from the list's revision; when the server ends a watch, list again (kubectl's UntilWithSync).
    while (!deadline.signal.aborted) {
      const list = await ctx.client.request('GET', path, { query })
      const object = (list.json?.items ?? [])[0] as KubeObject | undefined
      if (!object) throw new ServerError(`${info.group ? `${info.plural}.${info.group}` : info.plural} "${name}" not found`, 404, 'NotFound')
      if (show(stateOf(object)) || !watch) return
      let events = 0
      for await (const event of ctx.client.watch(path, { query: { ...query, resourceVersion: list.json?.metadata?.resourceVersion }, signal: deadline.signal })) {
        events++
        if (event.type === 'ERROR') {
          if (event.object?.code === 410) break // compacted: list again
          throw new ServerError(event.object?.message ?? 'the watch ended with an error', event.object?.code ?? 500, event.object?.reason ?? '')
        }
        if (event.type === 'DELETED') throw new ServerError(`${info.singular} "${name}" was deleted while its rollout was being watched`, 404, 'NotFound')
        if (event.type === 'ADDED' || event.type === 'MODIFIED') if (show(stateOf(event.object as KubeObject))) return
      }
      // A watch the server ended at once is not retried in a busy loop.
      if (events === 0) await sleep(1000, undefined, { signal: deadline.signal }).catch(() => undefined)
    }
    const lastSeen = last.trim() ? `; last seen: ${last.trim()}` : ''
    throw new WaitTimeoutError(`timed out after ${options.timeout} waiting for the rollout of ${info.singular} "${name}" to finish${lastSeen}`)
  } finally {
    bar.clear()
    if (timer) clearTimeout(timer)
  }
}

async function deploymentAndRevisions(ctx: ClientContext, name: string): Promise<{ deployment: KubeObject; revisions: Revision[] }> {
  const deployment = (await ctx.client.request('GET', resourcePath(kindOf('deployments'), ctx.namespace, name))).json as KubeObject
  const list = await ctx.client.request('GET', resourcePath(kindOf('replicasets'), ctx.namespace))
  return { deployment, revisions: revisionsOf(deployment, list.json?.items ?? []) }
}

export async function runRolloutHistory(ctx: ClientContext, args: string[], options: { revision?: string }): Promise<void> {
  const { info, name } = rolloutTarget(args, 'history')
  const revision = revisionOf(options.revision, '--revision')
  const { revisions } = await deploymentAndRevisions(ctx, name)
  if (revision > 0) {
    const template = revisionTemplate(revisions, revision)
    ctx.io.out(`${qualifiedName(info)}/${name} with revision #${revision}\n${template}\n`)
    return
  }
  ctx.io.out(`${qualifiedName(info)}/${name} \n${historyTable(revisions)}\n`)
}

export async function runRolloutUndo(ctx: ClientContext, args: string[], options: { toRevision?: string }): Promise<void> {
  const { info, name } = rolloutTarget(args, 'undo')
  const toRevision = revisionOf(options.toRevision, '--to-revision')
  const { deployment, revisions } = await deploymentAndRevisions(ctx, name)
  const rollback = rollbackOf(deployment, rollbackRevision(deployment, revisions, toRevision))
  if (rollback.kind === 'skip') {
    ctx.io.out(`${qualifiedName(info)}/${name} ${rollback.message}\n`)
    return
  }
  await ctx.client.request('PATCH', resourcePath(info, ctx.namespace, name), { body: rollback.patch, contentType: 'application/json-patch+json' })
  ctx.io.out(`${qualifiedName(info)}/${name} rolled back\n`)
}
