// validateObject: everything wrong with an object, at once, each with its field path and
// Kubernetes' cause type; plus the fields Kubernetes does not define (unknownFields) and those it
// defines but Bramble does not act on (ignoredFields). Never throws, whatever the input.

import { KINDS, apiVersionOf, kindByApiVersion } from './kinds.js'
import { typeOfKind } from './k8s-schema.js'
import { isDNS1035Label, isDNS1123Label, isDNS1123Subdomain, validateObjectMeta, type NameRule } from './names.js'
import type { FieldError } from './types.js'
import { actedIndex } from './validate-acted-fields.js'
import { validateConfigMap, validateEvent, validateNamespace, validateNode, validateSecret } from './validate-config.js'
import { invalid, isRecord, notSupported, required, typeInvalid } from './validate-errors.js'
import { validatePodSpec } from './validate-pod.js'
import { walkSchema } from './validate-schema.js'
import { validateEndpoints, validateServiceSpec } from './validate-service.js'
import { validatePersistentVolume, validatePersistentVolumeClaim, validateStorageClass } from './validate-storage.js'
import { validateCronJobSpec, validateDaemonSetSpec, validateDeploymentSpec, validateJobSpec, validateReplicaSetSpec, validateStatefulSetSpec } from './validate-workloads.js'

export { validateUpdate } from './validate-update.js'

export interface ValidationResult {
  errors: FieldError[]
  /** Paths Kubernetes does not define (`spec.containers[0].imagePullPolicyy`): refused under fieldValidation=Strict. */
  unknownFields: string[]
  /** Paths Kubernetes defines but Bramble keeps without acting on them, once per path: shown as warnings. */
  ignoredFields: string[]
}

/** CronJob names leave room for the 11-character suffix of the Jobs it makes. */
const CRONJOB_NAME_MAX = 52

const NAME_RULES: Record<string, NameRule> = {
  Namespace: isDNS1123Label,
  Service: isDNS1035Label,
  CronJob: (name) => {
    const errs = isDNS1123Subdomain(name)
    return name.length > CRONJOB_NAME_MAX ? [`must be no more than ${CRONJOB_NAME_MAX} characters`, ...errs] : errs
  },
}

type KindRule = (obj: Record<string, unknown>, namespace: string | undefined) => FieldError[]

const KIND_RULES: Record<string, KindRule> = {
  Pod: (o) => validatePodSpec(o.spec, 'spec'),
  Deployment: (o) => validateDeploymentSpec(o.spec, 'spec'),
  ReplicaSet: (o) => validateReplicaSetSpec(o.spec, 'spec'),
  DaemonSet: (o) => validateDaemonSetSpec(o.spec, 'spec'),
  StatefulSet: (o) => validateStatefulSetSpec(o.spec, 'spec'),
  PersistentVolumeClaim: validatePersistentVolumeClaim,
  PersistentVolume: validatePersistentVolume,
  StorageClass: validateStorageClass,
  Job: (o) => validateJobSpec(o.spec, 'spec'),
  CronJob: (o) => validateCronJobSpec(o.spec, 'spec'),
  Service: (o) => validateServiceSpec(o.spec, 'spec'),
  Endpoints: validateEndpoints,
  ConfigMap: validateConfigMap,
  Secret: validateSecret,
  Namespace: validateNamespace,
  Node: validateNode,
  Event: validateEvent,
}

export function validateObject(obj: unknown): ValidationResult {
  try {
    return validateUnguarded(obj)
  } catch (err) {
    // A bug here must not become a 500 or a crash: say the object could not be checked.
    return { errors: [invalid('', '<object>', `could not be validated: ${err instanceof Error ? err.message : String(err)}`)], unknownFields: [], ignoredFields: [] }
  }
}

function validateUnguarded(obj: unknown): ValidationResult {
  const result: ValidationResult = { errors: [], unknownFields: [], ignoredFields: [] }
  if (!isRecord(obj)) {
    result.errors.push(typeInvalid('', Array.isArray(obj) ? '<array>' : obj, 'object'))
    return result
  }
  const { apiVersion, kind } = obj
  if (typeof apiVersion !== 'string' || apiVersion === '') result.errors.push(apiVersion === undefined || apiVersion === '' ? required('apiVersion') : typeInvalid('apiVersion', apiVersion, 'string'))
  if (typeof kind !== 'string' || kind === '') result.errors.push(kind === undefined || kind === '' ? required('kind') : typeInvalid('kind', kind, 'string'))
  if (result.errors.length > 0) return result
  const info = kindByApiVersion(apiVersion as string, kind as string)
  const typeName = typeOfKind(apiVersion as string, kind as string)
  if (!info || !typeName) {
    const sameKind = KINDS.find((k) => k.kind === kind)
    if (sameKind) result.errors.push(notSupported('apiVersion', apiVersion, [apiVersionOf(sameKind)]))
    else result.errors.push(notSupported('kind', kind, KINDS.map((k) => k.kind)))
    return result
  }
  result.errors.push(...validateObjectMeta(obj.metadata, 'metadata', info.namespaced, NAME_RULES[info.kind] ?? isDNS1123Subdomain))
  const schema = walkSchema(obj, typeName, actedIndex(info.kind))
  result.errors.push(...schema.errors)
  result.unknownFields.push(...schema.unknownFields)
  result.ignoredFields.push(...schema.ignoredFields)
  const meta = isRecord(obj.metadata) ? obj.metadata : {}
  const namespace = typeof meta.namespace === 'string' ? meta.namespace : undefined
  result.errors.push(...(KIND_RULES[info.kind]?.(obj, namespace) ?? []))
  result.errors = dedupe(result.errors)
  return result
}

/** The schema walk and a kind's rules may both see a wrong value; say it once. */
function dedupe(errors: FieldError[]): FieldError[] {
  const seen = new Set<string>()
  return errors.filter((e) => {
    const id = `${e.field}\u0000${e.type}\u0000${e.message}`
    if (seen.has(id)) return false
    seen.add(id)
    return true
  })
}

