// `bramble cordon|uncordon|drain NODE`: mark a node (un)schedulable, and empty it by evicting its
// pods through the pods/eviction subresource, with kubectl's rules and messages.

import { setTimeout as sleep } from 'node:timers/promises'
import type { KubeObject } from '../api/types.js'
import type { ClientContext } from './client-context.js'
import { ProgressBar } from './progress-bar.js'
import { CommandError, ServerError, UsageError, WaitTimeoutError } from './errors.js'
import { planDrain, type DrainFlags } from './drain-plan.js'
import { timeoutMsOf } from './timeout-flag.js'

export interface DrainOptions extends DrainFlags {
  gracePeriod?: string
  timeout?: string
}

/** How often a drain looks whether an evicted pod is gone (kubectl's interval). */
const POLL_MS = 1000
/** How long a drain waits before retrying an eviction the server refused for now (429), as kubectl. */
const RETRY_MS = 5000

const nodePath = (name: string) => `/api/v1/nodes/${encodeURIComponent(name)}`
const podPath = (pod: KubeObject) => `/api/v1/namespaces/${encodeURIComponent(pod.metadata.namespace!)}/pods/${encodeURIComponent(pod.metadata.name!)}`

/** `NAME` or `node/NAME` (also `nodes/NAME`, `no/NAME`). */
export function nodeNameOf(arg: string): string {
  const m = /^(?:(?:node|nodes|no)\/)?([^/]+)$/.exec(arg)
  if (!m) throw new UsageError(`"${arg}" is not a node name; give NAME or node/NAME`)
  return m[1]
}

/** `--grace-period`: -1 (the pod's own) or a whole number of seconds. */
export function gracePeriodOf(value: string | undefined): number | undefined {
  if (value === undefined || value.trim() === '-1') return undefined
  if (!/^\d+$/.test(value.trim())) throw new UsageError(`--grace-period must be a whole number of seconds (or -1 for each pod's own), not "${value}"`)
  return Number(value)
}

/** Sets spec.unschedulable; says `already cordoned` when there is nothing to change. */
async function setUnschedulable(ctx: ClientContext, name: string, unschedulable: boolean): Promise<void> {
  const node = (await ctx.client.request('GET', nodePath(name))).json as KubeObject
  const verb = unschedulable ? 'cordoned' : 'uncordoned'
  if (Boolean(node.spec?.unschedulable) === unschedulable) {
    ctx.io.out(`node/${name} already ${verb}\n`)
    return
  }
  // A null removes the field, as kubectl's patch for uncordon does.
  const body = { spec: { unschedulable: unschedulable ? true : null } }
  await ctx.client.request('PATCH', nodePath(name), { body, contentType: 'application/strategic-merge-patch+json' })
  ctx.io.out(`node/${name} ${verb}\n`)
}

export async function runCordon(ctx: ClientContext, nodes: string[], unschedulable: boolean): Promise<void> {
  const names = nodes.map(nodeNameOf)
  if (names.length === 0) throw new UsageError(`name the node to ${unschedulable ? 'cordon' : 'uncordon'}`)
  for (const name of names) await setUnschedulable(ctx, name, unschedulable)
}

export async function runDrain(ctx: ClientContext, node: string, options: DrainOptions): Promise<void> {
  const name = nodeNameOf(node)
  const grace = gracePeriodOf(options.gracePeriod)
  const timeoutMs = timeoutMsOf(options.timeout)
  const deadline = timeoutMs > 0 ? Date.now() + timeoutMs : Infinity
  await setUnschedulable(ctx, name, true)

  const list = await ctx.client.request('GET', '/api/v1/pods', { query: { fieldSelector: `spec.nodeName=${name}` } })
  const plan = planDrain(list.json?.items ?? [], options)
  if (plan.errors.length > 0) {
    const message = plan.errors.length === 1 ? plan.errors[0] : `[${plan.errors.join(', ')}]`
    ctx.io.err(`error: unable to drain node "${name}" due to error: ${message}, continuing command...\n`)
    ctx.io.err(`There are pending nodes to be drained:\n ${name}\n`)
    throw new CommandError(message)
  }
  if (plan.warnings) ctx.io.err(`Warning: ${plan.warnings}\n`)

  const timedOut = () => new WaitTimeoutError(`drain did not complete within ${options.timeout}; node "${name}" stays cordoned (\`bramble uncordon ${name}\` undoes that)`)
  const bar = new ProgressBar(ctx.io)
  const total = plan.evict.length
  try {
    for (const pod of plan.evict) {
      bar.err(`evicting pod ${pod.metadata.namespace}/${pod.metadata.name}\n`)
      await evict(ctx, pod, grace, deadline, timedOut, bar)
    }
    let gone = 0
    for (const pod of plan.evict) {
      bar.update(gone, total, 'pods evicted')
      await waitUntilGone(ctx, pod, deadline, timedOut)
      bar.out(`pod/${pod.metadata.name} evicted\n`)
      gone++
    }
  } finally {
    bar.clear()
  }
  ctx.io.out(`node/${name} drained\n`)
}

async function evict(ctx: ClientContext, pod: KubeObject, grace: number | undefined, deadline: number, timedOut: () => Error, bar: ProgressBar): Promise<void> {
  const body = {
    apiVersion: 'policy/v1',
    kind: 'Eviction',
    metadata: { name: pod.metadata.name, namespace: pod.metadata.namespace },
    ...(grace === undefined ? {} : { deleteOptions: { gracePeriodSeconds: grace } }),
  }
  for (;;) {
    try {
      await ctx.client.request('POST', `${podPath(pod)}/eviction`, { body })
      return
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) return // already gone
      if (!(err instanceof ServerError) || err.status !== 429) throw err
      // Too many requests (a disruption budget, in Kubernetes): try again later, as kubectl does.
      bar.err(`error when evicting pods/"${pod.metadata.name}" -n "${pod.metadata.namespace}" (will retry after 5s): ${err.message}\n`)
      if (Date.now() + RETRY_MS > deadline) throw timedOut()
      await sleep(RETRY_MS)
    }
  }
}

/** Gone: not found, or found under the same name with another uid (its controller made a new one). */
async function waitUntilGone(ctx: ClientContext, pod: KubeObject, deadline: number, timedOut: () => Error): Promise<void> {
  for (;;) {
    try {
      const current = (await ctx.client.request('GET', podPath(pod))).json as KubeObject
      if (current.metadata.uid !== pod.metadata.uid) return
    } catch (err) {
      if (err instanceof ServerError && err.status === 404) return
      throw err
    }
    if (Date.now() + POLL_MS > deadline) throw timedOut()
    await sleep(POLL_MS)
  }
}
