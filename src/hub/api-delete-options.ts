// DeleteOptions as the API reads them: from the query (`?propagationPolicy=Orphan`, `dryRun=All`)
// and from a JSON body (kubectl sends `{"kind":"DeleteOptions","propagationPolicy":"Background"}`).
// A bad value is a 400 naming the field, as the Kubernetes API server answers.

import { badRequest } from './api-errors.js'
import { parseJson } from './api-body.js'
import { PROPAGATION_POLICIES, type DeleteOptions, type PropagationPolicy } from './registry.js'

interface DeleteOptionsBody {
  dryRun?: unknown
  propagationPolicy?: unknown
  orphanDependents?: unknown
  gracePeriodSeconds?: unknown
  preconditions?: { uid?: string; resourceVersion?: string }
}

export function parseDeleteOptions(body: Buffer, q: URLSearchParams, dryRun: boolean): DeleteOptions {
  const opts = body.length === 0 ? {} : (parseJson(body) as DeleteOptionsBody | null)
  if (typeof opts !== 'object' || opts === null || Array.isArray(opts)) throw badRequest('DeleteOptions must be a JSON object')
  const fromQuery = q.get('propagationPolicy')
  const orphanQuery = q.get('orphanDependents')
  const policy = propagationPolicyOf(fromQuery ?? opts.propagationPolicy, orphanQuery === null ? opts.orphanDependents : orphanQuery === 'true')
  const graceQuery = q.get('gracePeriodSeconds')
  const grace = gracePeriodOf(graceQuery === null ? opts.gracePeriodSeconds : /^\d+$/.test(graceQuery) ? Number(graceQuery) : graceQuery)
  return {
    dryRun: dryRun || (Array.isArray(opts.dryRun) && opts.dryRun.includes('All')),
    resourceVersion: opts.preconditions?.resourceVersion,
    uid: opts.preconditions?.uid,
    ...(policy ? { propagationPolicy: policy } : {}),
    ...(grace === undefined ? {} : { gracePeriodSeconds: grace }),
  }
}

/** Seconds a deleted pod's containers get to stop (kubectl delete --grace-period); absent: the pod's own. */
function gracePeriodOf(value: unknown): number | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) throw badRequest(`gracePeriodSeconds: Invalid value: ${JSON.stringify(value)}: must be a whole number of seconds, zero or more`)
  return value
}

/** propagationPolicy, or the deprecated orphanDependents (true: Orphan); both at once is refused. */
function propagationPolicyOf(policy: unknown, orphanDependents: unknown): PropagationPolicy | undefined {
  if (policy !== undefined && policy !== null && policy !== '') {
    if (!PROPAGATION_POLICIES.includes(policy as PropagationPolicy)) {
      throw badRequest(`propagationPolicy: Unsupported value: ${JSON.stringify(policy)}: supported values: "Foreground", "Background", "Orphan"`)
    }
    if (orphanDependents !== undefined && orphanDependents !== null) throw badRequest('propagationPolicy: Invalid value: orphanDependents and propagationPolicy may not both be set')
    return policy as PropagationPolicy
  }
  if (orphanDependents === undefined || orphanDependents === null) return undefined
  if (typeof orphanDependents !== 'boolean') throw badRequest(`orphanDependents: Invalid value: ${JSON.stringify(orphanDependents)}: must be true or false`)
  return orphanDependents ? 'Orphan' : 'Background'
}
