// Deployment, ReplicaSet, DaemonSet, Job and CronJob specs (Kubernetes' apps and batch validation).

import { validateObjectMeta, isDNS1123Subdomain } from './names.js'
import { labelSelectorFromObject, matchesLabels } from './selector.js'
import type { FieldError } from './types.js'
import { cronScheduleError, cronTimeZoneError } from './validate-cron.js'
import { child, forbidden, invalid, isRecord, notSupported, required } from './validate-errors.js'
import { nonNegative, validatePodSpec } from './validate-pod.js'
import { validateClaimTemplates } from './validate-storage.js'

const rec = (v: unknown): Record<string, unknown> | undefined => (isRecord(v) ? v : undefined)
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined)

const PERCENT_FMT = '[0-9]+%'

/** Validates a pod template (labels, pod spec, restart policy) at `path`; answers its labels. */
function validateTemplate(errs: FieldError[], template: unknown, path: string, restartPolicies: readonly string[]): Record<string, string> | undefined {
  const t = rec(template)
  if (!t) {
    if (template === undefined || template === null) errs.push(required(path))
    return undefined
  }
  const meta = rec(t.metadata) ?? {}
  // A template's metadata needs no name: check labels and annotations only.
  errs.push(...validateObjectMeta({ ...meta, name: 'template', generateName: undefined, namespace: undefined }, child(path, 'metadata'), false, isDNS1123Subdomain))
  const sp = child(path, 'spec')
  errs.push(...validatePodSpec(t.spec, sp))
  const spec = rec(t.spec)
  const policy = spec?.restartPolicy
  if (typeof policy === 'string' && !restartPolicies.includes(policy) && ['Always', 'OnFailure', 'Never'].includes(policy))
    errs.push(notSupported(child(sp, 'restartPolicy'), policy, restartPolicies))
  return isRecord(meta.labels) ? (meta.labels as Record<string, string>) : undefined
}

/** Selector required, non-empty, and matching the template's labels. */
function validateSelector(errs: FieldError[], spec: Record<string, unknown>, path: string, labels: Record<string, string> | undefined, kind: string, isRequired = true): void {
  const sp = child(path, 'selector')
  if (spec.selector === undefined || spec.selector === null) {
    if (isRequired) errs.push(required(sp))
    return
  }
  const { requirements, errors } = labelSelectorFromObject(spec.selector, sp)
  errs.push(...errors)
  if (errors.length > 0) return
  if (requirements.length === 0) {
    errs.push(invalid(sp, spec.selector, `empty selector is invalid for ${kind}`))
    return
  }
  if (isRecord(spec.template) && !matchesLabels(requirements, labels ?? {}))
    errs.push(invalid(child(child(child(path, 'template'), 'metadata'), 'labels'), labels ?? {}, '`selector` does not match template `labels`'))
}

/** An int or a percent string, as maxSurge and maxUnavailable take. Answers the value as a percent-or-count pair. */
function intOrPercent(errs: FieldError[], value: unknown, path: string): { n: number; percent: boolean } | undefined {
  if (value === undefined || value === null) return undefined
  if (typeof value === 'number') {
    if (Number.isInteger(value) && value < 0) errs.push(invalid(path, value, 'must be greater than or equal to 0'))
    return { n: value, percent: false }
  }
  if (typeof value === 'string') {
    if (!/^[0-9]+%$/.test(value)) {
      errs.push(invalid(path, value, `a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%',  or '93%', regex used for validation is '${PERCENT_FMT}')`))
      return undefined
    }
    return { n: Number(value.slice(0, -1)), percent: true }
  }
  return undefined
}

/** The defaults applyDefaults fills in, so that an object valid as sent stays valid once defaulted. */
interface RollingDefaults {
  maxSurge: number | string
  maxUnavailable: number | string
}

function validateRollingUpdate(errs: FieldError[], ru: Record<string, unknown>, path: string, defaults: RollingDefaults): void {
  const surge = intOrPercent(errs, ru.maxSurge ?? defaults.maxSurge, child(path, 'maxSurge'))
  const unavailable = intOrPercent(errs, ru.maxUnavailable ?? defaults.maxUnavailable, child(path, 'maxUnavailable'))
  if (unavailable?.percent && unavailable.n > 100) errs.push(invalid(child(path, 'maxUnavailable'), ru.maxUnavailable, 'must not be greater than 100%'))
  if (surge && unavailable && surge.n === 0 && unavailable.n === 0)
    errs.push(invalid(child(path, 'maxUnavailable'), ru.maxUnavailable, 'may not be 0 when `maxSurge` is 0'))
}

function validateStrategy(errs: FieldError[], strategy: unknown, path: string, types: readonly string[], rollingType: string, defaults: RollingDefaults): void {
  const s = rec(strategy)
  if (!s) return
  if (typeof s.type === 'string' && !types.includes(s.type)) errs.push(notSupported(child(path, 'type'), s.type, types))
  const ru = rec(s.rollingUpdate)
  if (ru && s.type !== undefined && s.type !== rollingType)
    errs.push(forbidden(child(path, 'rollingUpdate'), `may not be specified when strategy \`type\` is '${String(s.type)}'`))
  else if (ru) validateRollingUpdate(errs, ru, child(path, 'rollingUpdate'), defaults)
}

export function validateDeploymentSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'selector')), required(child(path, 'template'))] : []
  nonNegative(errs, s.replicas, child(path, 'replicas'))
  const labels = validateTemplate(errs, s.template, child(path, 'template'), ['Always'])
  validateSelector(errs, s, path, labels, 'deployment')
  validateStrategy(errs, s.strategy, child(path, 'strategy'), ['Recreate', 'RollingUpdate'], 'RollingUpdate', { maxSurge: '25%', maxUnavailable: '25%' })
  nonNegative(errs, s.revisionHistoryLimit, child(path, 'revisionHistoryLimit'))
  nonNegative(errs, s.minReadySeconds, child(path, 'minReadySeconds'))
  const deadline = int(s.progressDeadlineSeconds)
  if (deadline !== undefined) {
    if (deadline <= 0) errs.push(invalid(child(path, 'progressDeadlineSeconds'), deadline, 'must be greater than 0'))
    else if (deadline <= (int(s.minReadySeconds) ?? 0)) errs.push(invalid(child(path, 'progressDeadlineSeconds'), deadline, 'must be greater than minReadySeconds'))
  }
  return errs
}

export function validateReplicaSetSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'selector'))] : []
  nonNegative(errs, s.replicas, child(path, 'replicas'))
  nonNegative(errs, s.minReadySeconds, child(path, 'minReadySeconds'))
  const labels = validateTemplate(errs, s.template, child(path, 'template'), ['Always'])
  validateSelector(errs, s, path, labels, 'replicaset')
  return errs
}

export function validateDaemonSetSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'selector')), required(child(path, 'template'))] : []
  const labels = validateTemplate(errs, s.template, child(path, 'template'), ['Always'])
  validateSelector(errs, s, path, labels, 'daemonset')
  validateStrategy(errs, s.updateStrategy, child(path, 'updateStrategy'), ['RollingUpdate', 'OnDelete'], 'RollingUpdate', { maxSurge: 0, maxUnavailable: 1 })
  nonNegative(errs, s.revisionHistoryLimit, child(path, 'revisionHistoryLimit'))
  nonNegative(errs, s.minReadySeconds, child(path, 'minReadySeconds'))
  return errs
}

export function validateStatefulSetSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'selector')), required(child(path, 'template'))] : []
  nonNegative(errs, s.replicas, child(path, 'replicas'))
  nonNegative(errs, s.revisionHistoryLimit, child(path, 'revisionHistoryLimit'))
  nonNegative(errs, s.minReadySeconds, child(path, 'minReadySeconds'))
  // The claim templates are volumes of every pod: its mounts may name them.
  const claimVolumes = (Array.isArray(s.volumeClaimTemplates) ? s.volumeClaimTemplates : [])
    .map((t) => rec(rec(t)?.metadata)?.name)
    .filter((n): n is string => typeof n === 'string')
    .map((name) => ({ name, persistentVolumeClaim: { claimName: name } }))
  const template = rec(s.template)
  const podSpec = rec(template?.spec)
  const withClaims = template && podSpec && claimVolumes.length > 0 ? { ...template, spec: { ...podSpec, volumes: [...(Array.isArray(podSpec.volumes) ? podSpec.volumes : []), ...claimVolumes] } } : s.template
  const labels = validateTemplate(errs, withClaims, child(path, 'template'), ['Always'])
  validateSelector(errs, s, path, labels, 'statefulset')
  if (typeof s.podManagementPolicy === 'string' && !['OrderedReady', 'Parallel'].includes(s.podManagementPolicy))
    errs.push(notSupported(child(path, 'podManagementPolicy'), s.podManagementPolicy, ['OrderedReady', 'Parallel']))
  const strategy = rec(s.updateStrategy)
  const up = child(path, 'updateStrategy')
  if (strategy) {
    if (typeof strategy.type === 'string' && !['RollingUpdate', 'OnDelete'].includes(strategy.type)) errs.push(notSupported(child(up, 'type'), strategy.type, ['RollingUpdate', 'OnDelete']))
    const ru = rec(strategy.rollingUpdate)
    if (ru && strategy.type === 'OnDelete') errs.push(forbidden(child(up, 'rollingUpdate'), "only allowed for updateStrategy 'RollingUpdate'"))
    else if (ru) nonNegative(errs, ru.partition, child(child(up, 'rollingUpdate'), 'partition'))
  }
  const retention = rec(s.persistentVolumeClaimRetentionPolicy)
  for (const f of ['whenDeleted', 'whenScaled']) {
    const v = retention?.[f]
    if (typeof v === 'string' && !['Retain', 'Delete'].includes(v)) errs.push(notSupported(child(child(path, 'persistentVolumeClaimRetentionPolicy'), f), v, ['Retain', 'Delete']))
  }
  validateClaimTemplates(errs, s.volumeClaimTemplates, child(path, 'volumeClaimTemplates'))
  return errs
}

export function validateJobSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'template'))] : []
  for (const f of ['parallelism', 'completions', 'backoffLimit', 'ttlSecondsAfterFinished']) nonNegative(errs, s[f], child(path, f))
  const deadline = int(s.activeDeadlineSeconds)
  if (deadline !== undefined && deadline <= 0) errs.push(invalid(child(path, 'activeDeadlineSeconds'), deadline, 'must be greater than 0'))
  if (typeof s.completionMode === 'string' && !['NonIndexed', 'Indexed'].includes(s.completionMode))
    errs.push(notSupported(child(path, 'completionMode'), s.completionMode, ['NonIndexed', 'Indexed']))
  if (s.completionMode === 'Indexed' && (s.completions === undefined || s.completions === null))
    errs.push(required(child(path, 'completions'), 'when completion mode is Indexed'))
  const labels = validateTemplate(errs, s.template, child(path, 'template'), ['OnFailure', 'Never'])
  const policy = rec(rec(s.template)?.spec)?.restartPolicy
  if (policy === undefined || policy === null || policy === '')
    if (rec(s.template)) errs.push(required(child(child(child(path, 'template'), 'spec'), 'restartPolicy'), 'supported values: "OnFailure", "Never"'))
  validateSelector(errs, s, path, labels, 'job', s.manualSelector === true)
  return errs
}

export function validateCronJobSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) return spec === undefined || spec === null ? [required(child(path, 'schedule')), required(child(path, 'jobTemplate'))] : []
  const sp = child(path, 'schedule')
  if (s.schedule === undefined || s.schedule === null || s.schedule === '') errs.push(required(sp))
  else if (typeof s.schedule === 'string') {
    const why = cronScheduleError(s.schedule)
    if (why) errs.push(invalid(sp, s.schedule, why))
  }
  if (typeof s.concurrencyPolicy === 'string' && !['Allow', 'Forbid', 'Replace'].includes(s.concurrencyPolicy))
    errs.push(notSupported(child(path, 'concurrencyPolicy'), s.concurrencyPolicy, ['Allow', 'Forbid', 'Replace']))
  for (const f of ['startingDeadlineSeconds', 'successfulJobsHistoryLimit', 'failedJobsHistoryLimit']) nonNegative(errs, s[f], child(path, f))
  const tzError = typeof s.timeZone === 'string' ? cronTimeZoneError(s.timeZone) : undefined
  if (tzError) errs.push(invalid(child(path, 'timeZone'), s.timeZone, tzError))
  const jt = rec(s.jobTemplate)
  const jp = child(path, 'jobTemplate')
  if (!jt) {
    if (s.jobTemplate === undefined || s.jobTemplate === null) errs.push(required(jp))
  } else {
    errs.push(...validateObjectMeta({ ...(rec(jt.metadata) ?? {}), name: 'template', generateName: undefined, namespace: undefined }, child(jp, 'metadata'), false, isDNS1123Subdomain))
    errs.push(...validateJobSpec(jt.spec, child(jp, 'spec')))
  }
  return errs
}
