// Decodes the Kubernetes protobuf bodies `kubectl create namespace|configmap|secret|deployment|
// service|job|cronjob` sends (content type application/vnd.kubernetes.protobuf) into the JSON
// object the JSON API would have received.
//
// Wire format: the magic `k8s\0`, then a runtime.Unknown whose `raw` is the kind's message. Go
// writes every non-pointer field, even empty, so a zero value present on the wire is dropped as
// `omitempty` would, except for the pointer fields listed in KEEP_ZERO (an explicit `replicas: 0`).

import protobuf from 'protobufjs'
import { K8S_PROTO } from './k8s-proto/k8s-proto-text.js'
import { ProtobufDecodeError } from './patch-errors.js'
import type { KubeObject } from './types.js'

export const PROTOBUF_CONTENT_TYPE = 'application/vnd.kubernetes.protobuf'

const MAGIC = Buffer.from([0x6b, 0x38, 0x73, 0x00])

/** `apiVersion/kind` → the message type of the object. */
const MESSAGE_OF_KIND: Record<string, string> = {
  'v1/Namespace': 'Namespace',
  'v1/ConfigMap': 'ConfigMap',
  'v1/Secret': 'Secret',
  'v1/Service': 'Service',
  'v1/Pod': 'Pod',
  'apps/v1/Deployment': 'Deployment',
  'batch/v1/Job': 'Job',
  'batch/v1/CronJob': 'CronJob',
  // kubectl drain evicts through the typed client, in protobuf.
  'policy/v1/Eviction': 'Eviction',
  'policy/v1beta1/Eviction': 'Eviction',
}

/** Pointer fields in Go: present on the wire only when set, so a zero value there is meant. */
const KEEP_ZERO = new Set([
  'DeploymentSpec.replicas', 'DeploymentSpec.revisionHistoryLimit', 'DeploymentSpec.progressDeadlineSeconds',
  'JobSpec.parallelism', 'JobSpec.completions', 'JobSpec.activeDeadlineSeconds', 'JobSpec.backoffLimit', 'JobSpec.backoffLimitPerIndex',
  'JobSpec.maxFailedIndexes', 'JobSpec.ttlSecondsAfterFinished', 'JobSpec.suspend', 'JobSpec.manualSelector', 'JobSpec.completionMode',
  'JobSpec.podReplacementPolicy', 'JobSpec.managedBy',
  'CronJobSpec.startingDeadlineSeconds', 'CronJobSpec.suspend', 'CronJobSpec.successfulJobsHistoryLimit', 'CronJobSpec.failedJobsHistoryLimit', 'CronJobSpec.timeZone',
  'ConfigMap.immutable', 'Secret.immutable',
  'PodSpec.terminationGracePeriodSeconds', 'PodSpec.activeDeadlineSeconds', 'PodSpec.automountServiceAccountToken', 'PodSpec.shareProcessNamespace',
  'PodSpec.priority', 'PodSpec.enableServiceLinks', 'PodSpec.setHostnameAsFQDN', 'PodSpec.hostUsers', 'PodSpec.preemptionPolicy',
  'ServiceSpec.allocateLoadBalancerNodePorts', 'ServiceSpec.ipFamilyPolicy', 'ServiceSpec.internalTrafficPolicy', 'ServiceSpec.loadBalancerClass', 'ServiceSpec.trafficDistribution',
  'ServicePort.appProtocol', 'Container.restartPolicy', 'VolumeMount.recursiveReadOnly',
  'ConfigMapKeySelector.optional', 'SecretKeySelector.optional', 'ConfigMapEnvSource.optional', 'SecretEnvSource.optional',
  'SecretVolumeSource.defaultMode', 'SecretVolumeSource.optional', 'ConfigMapVolumeSource.defaultMode', 'ConfigMapVolumeSource.optional', 'KeyToPath.mode',
  'HostPathVolumeSource.type', 'OwnerReference.controller', 'OwnerReference.blockOwnerDeletion', 'ObjectMeta.deletionGracePeriodSeconds',
  'DeleteOptions.gracePeriodSeconds', 'DeleteOptions.orphanDependents', 'DeleteOptions.propagationPolicy',
])

/** Embedded Go structs: a nested message on the wire, flattened into the parent in JSON. */
const INLINE = new Set(['localObjectReference', 'volumeSource'])

/** Unmodeled `bytes` fields that are dropped rather than refused: the server ignores them on create. */
const IGNORED = new Set(['status', 'managedFields'])

/** Message types whose empty value still means something (`emptyDir: {}` picks the volume type). */
const KEEP_EMPTY_IN = new Set(['VolumeSource'])

let root: protobuf.Root | undefined
const types = (): protobuf.Root => (root ??= protobuf.parse(K8S_PROTO, { keepCase: true }).root)

/** Decodes a Kubernetes protobuf request body into a JSON-shaped object. Throws ProtobufDecodeError. */
export function decodeK8sProtobuf(body: Buffer): KubeObject {
  if (body.length < MAGIC.length || !body.subarray(0, MAGIC.length).equals(MAGIC)) {
    throw new ProtobufDecodeError('BRAMBLE_PROTOBUF_BAD_MAGIC', 'the body is not Kubernetes protobuf: it does not start with the bytes "k8s\\0"')
  }
  const unknown = decode('Unknown', body.subarray(MAGIC.length)) as { typeMeta?: { apiVersion?: string; kind?: string }; raw?: Uint8Array; contentEncoding?: string }
  const apiVersion = unknown.typeMeta?.apiVersion ?? ''
  const kind = unknown.typeMeta?.kind ?? ''
  if (unknown.contentEncoding) {
    throw new ProtobufDecodeError('BRAMBLE_PROTOBUF_MALFORMED', `content encoding "${unknown.contentEncoding}" is not supported; send the object unencoded or as JSON`)
  }
  const messageName = MESSAGE_OF_KIND[`${apiVersion}/${kind}`]
  if (!Object.prototype.hasOwnProperty.call(MESSAGE_OF_KIND, `${apiVersion}/${kind}`) || messageName === undefined) {
    throw new ProtobufDecodeError('BRAMBLE_PROTOBUF_UNKNOWN_KIND', `Bramble does not decode ${kind || '(no kind)'} ${apiVersion || '(no apiVersion)'} from protobuf; send it as JSON`)
  }
  const message = decode(messageName, unknown.raw ?? new Uint8Array())
  const fields = toJson(types().lookupType(messageName), message, kind)
  return { apiVersion, kind, metadata: {}, ...fields } as KubeObject
}

function decode(typeName: string, bytes: Uint8Array): protobuf.Message {
  try {
    return types().lookupType(typeName).decode(bytes)
  } catch (err) {
    throw new ProtobufDecodeError('BRAMBLE_PROTOBUF_MALFORMED', `the body is not a valid ${typeName} message: ${(err as Error).message}`, { cause: err })
  }
}

type Json = Record<string, unknown>

function toJson(type: protobuf.Type, message: protobuf.Message, path: string): Json {
  const out: Json = {}
  const msg = message as unknown as Record<string, unknown>
  for (const field of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(msg, field.name)) continue
    const fieldPath = `${path}.${field.name}`
    const value = msg[field.name]
    if (field.map) {
      const entries = Object.entries(value as Record<string, unknown>)
      if (entries.length === 0) continue
      out[field.name] = Object.fromEntries(entries.map(([k, v]) => [k, convert(field, v, `${fieldPath}[${k}]`)]))
    } else if (field.repeated) {
      const items = value as unknown[]
      if (items.length === 0) continue
      out[field.name] = items.map((v, i) => convert(field, v, `${fieldPath}[${i}]`))
    } else {
      const converted = convert(field, value, fieldPath)
      if (converted === undefined) continue
      if (INLINE.has(field.name) && isObject(converted)) Object.assign(out, converted)
      else if (isEmpty(converted) && !KEEP_ZERO.has(`${type.name}.${field.name}`) && !(isObject(converted) && KEEP_EMPTY_IN.has(type.name))) continue
      else out[field.name] = converted
    }
  }
  return out
}

/** One value of a field; undefined means "leave the field out". */
function convert(field: protobuf.Field, value: unknown, path: string): unknown {
  if (field.type === 'bytes') {
    const bytes = value as Uint8Array
    if (field.resolvedType === null && isModeled(field)) return Buffer.from(bytes).toString('base64')
    if (bytes.length === 0 || IGNORED.has(field.name)) return undefined
    throw new ProtobufDecodeError('BRAMBLE_PROTOBUF_UNSUPPORTED_FIELD', `${path} is set, and Bramble does not decode it from protobuf; send this object as JSON (for kubectl: kubectl apply -f)`)
  }
  if (field.resolvedType instanceof protobuf.Type) {
    const t = field.resolvedType
    const m = value as Record<string, unknown>
    if (t.name === 'Time') {
      const seconds = toNumber(m.seconds)
      return seconds === 0 ? undefined : new Date(seconds * 1000).toISOString().replace('.000Z', 'Z')
    }
    if (t.name === 'Quantity') return m.string ?? ''
    if (t.name === 'IntOrString') return toNumber(m.type) === 1 ? (m.strVal ?? '') : toNumber(m.intVal)
    return toJson(t, value as protobuf.Message, path)
  }
  if (field.long || typeof value === 'object') return toNumber(value)
  return value
}

/** Byte fields that carry data (Secret.data, ConfigMap.binaryData), as opposed to unmodeled messages. */
function isModeled(field: protobuf.Field): boolean {
  return field.map && (field.name === 'data' || field.name === 'binaryData')
}

function toNumber(v: unknown): number {
  if (v === undefined || v === null) return 0
  if (typeof v === 'number') return v
  return Number(String(v))
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v)

function isEmpty(v: unknown): boolean {
  return v === '' || v === 0 || v === false || (isObject(v) && Object.keys(v).length === 0)
}
