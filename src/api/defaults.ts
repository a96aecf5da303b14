// applyDefaults: what the Kubernetes API server fills in and clients expect to read back
// (SetDefaults_* in pkg/apis/core/v1, apps/v1 and batch/v1). Pure: returns a new object.

import type { KubeObject } from './types.js'

type Obj = Record<string, unknown>
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const objectsIn = (v: unknown): Obj[] => (Array.isArray(v) ? v.filter(isObj) : [])

/** Sets `o[k]` to `v` when it is absent (undefined, null or ''). */
function fill(o: Obj, k: string, v: unknown): void {
  if (o[k] === undefined || o[k] === null || o[k] === '') o[k] = v
}

/** The object at `o[k]`, created when absent; undefined when something else is there. */
function objAt(o: Obj, k: string): Obj | undefined {
  if (o[k] === undefined || o[k] === null) o[k] = {}
  return isObj(o[k]) ? (o[k] as Obj) : undefined
}

export const DEFAULT_TERMINATION_GRACE_SECONDS = 30
export const DEFAULT_SCHEDULER_NAME = 'default-scheduler'

/** `Always` for `:latest` or an untagged image, else `IfNotPresent`, as Kubernetes decides. */
export function defaultPullPolicy(image: string): 'Always' | 'IfNotPresent' {
  if (image.includes('@')) return 'IfNotPresent'
  const lastSegment = image.slice(image.lastIndexOf('/') + 1)
  const colon = lastSegment.lastIndexOf(':')
  if (colon < 0) return 'Always'
  return lastSegment.slice(colon + 1) === 'latest' ? 'Always' : 'IfNotPresent'
}

function defaultProbe(probe: unknown): void {
  if (!isObj(probe)) return
  fill(probe, 'timeoutSeconds', 1)
  fill(probe, 'periodSeconds', 10)
  fill(probe, 'successThreshold', 1)
  fill(probe, 'failureThreshold', 3)
  if (isObj(probe.httpGet)) {
    fill(probe.httpGet, 'path', '/')
    fill(probe.httpGet, 'scheme', 'HTTP')
  }
}

function defaultContainer(c: Obj): void {
  if (typeof c.image === 'string') fill(c, 'imagePullPolicy', defaultPullPolicy(c.image))
  fill(c, 'terminationMessagePath', '/dev/termination-log')
  fill(c, 'terminationMessagePolicy', 'File')
  for (const p of objectsIn(c.ports)) fill(p, 'protocol', 'TCP')
  for (const e of objectsIn(c.env)) if (isObj(e.valueFrom) && isObj(e.valueFrom.fieldRef)) fill(e.valueFrom.fieldRef, 'apiVersion', 'v1')
  defaultProbe(c.livenessProbe)
  defaultProbe(c.readinessProbe)
  defaultProbe(c.startupProbe)
}

/** Pod spec defaults, for a Pod and for every pod template. */
export function defaultPodSpec(spec: Obj): void {
  fill(spec, 'restartPolicy', 'Always')
  fill(spec, 'dnsPolicy', 'ClusterFirst')
  fill(spec, 'terminationGracePeriodSeconds', DEFAULT_TERMINATION_GRACE_SECONDS)
  fill(spec, 'schedulerName', DEFAULT_SCHEDULER_NAME)
  for (const c of [...objectsIn(spec.containers), ...objectsIn(spec.initContainers)]) {
    defaultContainer(c)
    // On the node's network a container's port is the node's: the scheduler then keeps two such pods apart.
    if (spec.hostNetwork === true) for (const p of objectsIn(c.ports)) if (!p.hostPort) p.hostPort = p.containerPort
  }
  for (const v of objectsIn(spec.volumes)) {
    if (isObj(v.configMap)) fill(v.configMap, 'defaultMode', 0o644)
    if (isObj(v.secret)) fill(v.secret, 'defaultMode', 0o644)
    if (isObj(v.hostPath)) fill(v.hostPath, 'type', '')
  }
}

function defaultTemplate(spec: Obj): void {
  const template = spec.template
  if (isObj(template) && isObj(template.spec)) defaultPodSpec(template.spec)
}

function defaultJobSpec(spec: Obj): void {
  fill(spec, 'backoffLimit', 6)
  if ((spec.completions === undefined || spec.completions === null) && (spec.parallelism === undefined || spec.parallelism === null)) spec.completions = 1
  fill(spec, 'parallelism', 1)
  fill(spec, 'completionMode', 'NonIndexed')
  if (spec.suspend === undefined || spec.suspend === null) spec.suspend = false
  defaultTemplate(spec)
}

const BY_KIND: Record<string, (o: Obj) => void> = {
  Pod(o) {
    const spec = objAt(o, 'spec')
    if (spec) defaultPodSpec(spec)
  },
  Deployment(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    fill(spec, 'replicas', 1)
    const strategy = objAt(spec, 'strategy')
    if (strategy) {
      fill(strategy, 'type', 'RollingUpdate')
      if (strategy.type === 'RollingUpdate') {
        const ru = objAt(strategy, 'rollingUpdate')
        if (ru) {
          fill(ru, 'maxUnavailable', '25%')
          fill(ru, 'maxSurge', '25%')
        }
      }
    }
    fill(spec, 'revisionHistoryLimit', 10)
    // Kubernetes' default is 600 s; it must exceed minReadySeconds to be valid.
    const minReady = typeof spec.minReadySeconds === 'number' ? spec.minReadySeconds : 0
    fill(spec, 'progressDeadlineSeconds', Math.max(600, minReady + 1))
    defaultTemplate(spec)
  },
  ReplicaSet(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    fill(spec, 'replicas', 1)
    defaultTemplate(spec)
  },
  DaemonSet(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    const strategy = objAt(spec, 'updateStrategy')
    if (strategy) {
      fill(strategy, 'type', 'RollingUpdate')
      if (strategy.type === 'RollingUpdate') {
        const ru = objAt(strategy, 'rollingUpdate')
        if (ru) {
          fill(ru, 'maxUnavailable', 1)
          fill(ru, 'maxSurge', 0)
        }
      }
    }
    fill(spec, 'revisionHistoryLimit', 10)
    defaultTemplate(spec)
  },
  StatefulSet(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    fill(spec, 'replicas', 1)
    fill(spec, 'podManagementPolicy', 'OrderedReady')
    const strategy = objAt(spec, 'updateStrategy')
    if (strategy) {
      fill(strategy, 'type', 'RollingUpdate')
      if (strategy.type === 'RollingUpdate') {
        const ru = objAt(strategy, 'rollingUpdate')
        if (ru) fill(ru, 'partition', 0)
      }
    }
    fill(spec, 'revisionHistoryLimit', 10)
    const retention = objAt(spec, 'persistentVolumeClaimRetentionPolicy')
    if (retention) {
      fill(retention, 'whenDeleted', 'Retain')
      fill(retention, 'whenScaled', 'Retain')
    }
    for (const t of objectsIn(spec.volumeClaimTemplates)) {
      const claimSpec = objAt(t, 'spec')
      if (claimSpec) fill(claimSpec, 'volumeMode', 'Filesystem')
    }
    defaultTemplate(spec)
  },
  PersistentVolumeClaim(o) {
    const spec = objAt(o, 'spec')
    if (spec) fill(spec, 'volumeMode', 'Filesystem')
    const status = objAt(o, 'status')
    if (status) fill(status, 'phase', 'Pending')
  },
  PersistentVolume(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    // Kubernetes' default for a volume made by hand; provisioned ones take their class's policy.
    fill(spec, 'persistentVolumeReclaimPolicy', 'Retain')
    fill(spec, 'volumeMode', 'Filesystem')
    const status = objAt(o, 'status')
    if (status) fill(status, 'phase', 'Pending')
  },
  StorageClass(o) {
    fill(o, 'reclaimPolicy', 'Delete')
    fill(o, 'volumeBindingMode', 'Immediate')
  },
  Job(o) {
    const spec = objAt(o, 'spec')
    if (spec) defaultJobSpec(spec)
  },
  CronJob(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    fill(spec, 'concurrencyPolicy', 'Allow')
    if (spec.suspend === undefined || spec.suspend === null) spec.suspend = false
    fill(spec, 'successfulJobsHistoryLimit', 3)
    fill(spec, 'failedJobsHistoryLimit', 1)
    const jt = spec.jobTemplate
    if (isObj(jt)) {
      const jobSpec = objAt(jt, 'spec')
      if (jobSpec) defaultJobSpec(jobSpec)
    }
  },
  Service(o) {
    const spec = objAt(o, 'spec')
    if (!spec) return
    fill(spec, 'type', 'ClusterIP')
    fill(spec, 'sessionAffinity', 'None')
    for (const p of objectsIn(spec.ports)) {
      fill(p, 'protocol', 'TCP')
      if (p.targetPort === undefined || p.targetPort === null || p.targetPort === 0 || p.targetPort === '') p.targetPort = p.port
    }
  },
  Secret(o) {
    fill(o, 'type', 'Opaque')
    // stringData is write-only: Kubernetes merges it into data (base64) and never returns it.
    const stringData = o.stringData
    if (isObj(stringData) && Object.values(stringData).every((v) => typeof v === 'string')) {
      const data = objAt(o, 'data')
      if (data) {
        for (const [k, v] of Object.entries(stringData)) data[k] = Buffer.from(v as string, 'utf8').toString('base64')
        delete o.stringData
      }
    }
  },
  Namespace(o) {
    const meta = objAt(o, 'metadata')
    if (meta && typeof meta.name === 'string' && meta.name !== '') {
      const labels = objAt(meta, 'labels')
      if (labels) labels['kubernetes.io/metadata.name'] = meta.name
    }
    const status = objAt(o, 'status')
    if (status) fill(status, 'phase', 'Active')
  },
}

/** A copy of the object with Kubernetes' defaults filled in. Never throws on odd input: it leaves what it cannot read. */
export function applyDefaults(obj: KubeObject): KubeObject {
  let copy: KubeObject
  try {
    copy = structuredClone(obj)
  } catch {
    return obj
  }
  if (!isObj(copy) || typeof copy.kind !== 'string') return copy
  BY_KIND[copy.kind]?.(copy as Obj)
  return copy
}
