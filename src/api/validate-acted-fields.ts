// The fields Bramble acts on, per kind: an explicit allow-list. A field Kubernetes defines but that
// is not listed here (nor an ancestor of a listed field) is kept as it is and named in a Warning,
// so people know Bramble will not honour it. `[*]` stands for any list index; a listed field covers
// everything under it. `metadata` and `status` are never ignored, nor anything in the kinds whose
// whole content is data (ConfigMap, Secret, Namespace, Endpoints, Event).

/** Pod spec fields Bramble acts on (also those it fills in as defaults, so read-backs warn of nothing). */
const POD_SPEC = [
  'containers[*].name',
  'containers[*].image',
  'containers[*].command',
  'containers[*].args',
  'containers[*].env',
  'containers[*].envFrom',
  'containers[*].ports',
  'containers[*].resources',
  'containers[*].volumeMounts',
  'containers[*].workingDir',
  'containers[*].livenessProbe',
  'containers[*].readinessProbe',
  'containers[*].startupProbe',
  'containers[*].imagePullPolicy',
  'containers[*].terminationMessagePath',
  'containers[*].terminationMessagePolicy',
  'containers[*].securityContext.privileged',
  'containers[*].securityContext.capabilities',
  'containers[*].securityContext.runAsUser',
  'containers[*].securityContext.runAsGroup',
  'containers[*].securityContext.readOnlyRootFilesystem',
  'containers[*].securityContext.allowPrivilegeEscalation',
  'volumes[*].name',
  'volumes[*].configMap',
  'volumes[*].secret',
  'volumes[*].emptyDir',
  'volumes[*].hostPath',
  'volumes[*].persistentVolumeClaim',
  'nodeName',
  'nodeSelector',
  'affinity.nodeAffinity',
  'affinity.podAntiAffinity',
  'tolerations',
  'restartPolicy',
  'hostNetwork',
  'hostPID',
  'hostIPC',
  'securityContext.runAsUser',
  'securityContext.runAsGroup',
  'securityContext.supplementalGroups',
  'securityContext.fsGroup',
  'terminationGracePeriodSeconds',
  'dnsPolicy',
  'schedulerName',
]

const prefixed = (prefix: string, fields: readonly string[]): string[] => fields.map((f) => `${prefix}.${f}`)

const template = (prefix: string): string[] => [`${prefix}.metadata`, ...prefixed(`${prefix}.spec`, POD_SPEC)]

const JOB_SPEC = ['parallelism', 'completions', 'activeDeadlineSeconds', 'backoffLimit', 'selector', 'manualSelector', 'ttlSecondsAfterFinished', 'completionMode', 'suspend']

/** Per kind: the acted-on paths; `'*'` means the whole object is acted on (nothing is ever ignored). */
export const ACTED_FIELDS: Record<string, readonly string[] | '*'> = {
  Pod: prefixed('spec', POD_SPEC),
  Deployment: [
    ...prefixed('spec', ['replicas', 'selector', 'strategy', 'revisionHistoryLimit', 'minReadySeconds', 'progressDeadlineSeconds', 'paused']),
    ...template('spec.template'),
  ],
  ReplicaSet: [...prefixed('spec', ['replicas', 'selector', 'minReadySeconds']), ...template('spec.template')],
  DaemonSet: [...prefixed('spec', ['selector', 'updateStrategy', 'revisionHistoryLimit', 'minReadySeconds']), ...template('spec.template')],
  Job: [...prefixed('spec', JOB_SPEC), ...template('spec.template')],
  CronJob: [
    ...prefixed('spec', ['schedule', 'timeZone', 'startingDeadlineSeconds', 'concurrencyPolicy', 'suspend', 'successfulJobsHistoryLimit', 'failedJobsHistoryLimit']),
    'spec.jobTemplate.metadata',
    ...prefixed('spec.jobTemplate.spec', JOB_SPEC),
    ...template('spec.jobTemplate.spec.template'),
  ],
  StatefulSet: [
    ...prefixed('spec', ['replicas', 'selector', 'serviceName', 'podManagementPolicy', 'updateStrategy', 'revisionHistoryLimit', 'volumeClaimTemplates', 'persistentVolumeClaimRetentionPolicy']),
    ...template('spec.template'),
  ],
  PersistentVolumeClaim: prefixed('spec', ['accessModes', 'resources', 'storageClassName', 'volumeName', 'volumeMode']),
  PersistentVolume: prefixed('spec', ['accessModes', 'capacity', 'claimRef', 'hostPath', 'nodeAffinity', 'persistentVolumeReclaimPolicy', 'storageClassName', 'volumeMode']),
  StorageClass: ['provisioner', 'reclaimPolicy', 'volumeBindingMode', 'parameters'],
  Service: prefixed('spec', ['ports', 'selector', 'type', 'clusterIP', 'clusterIPs', 'externalName', 'sessionAffinity']),
  Node: prefixed('spec', ['unschedulable', 'taints', 'podCIDR', 'podCIDRs']),
  Namespace: '*',
  ConfigMap: '*',
  Secret: '*',
  Endpoints: '*',
  Event: '*',
}

/** Always acted on, in every kind. */
const ALWAYS = ['apiVersion', 'kind', 'metadata', 'status']

export interface ActedIndex {
  /** True when the path (indices written `[*]`) is acted on, itself or through an ancestor. */
  covers(pattern: string): boolean
  /** True when some acted path lies below this one, so its children must be looked at one by one. */
  leadsTo(pattern: string): boolean
}

export function actedIndex(kind: string): ActedIndex {
  const listed = ACTED_FIELDS[kind]
  if (listed === undefined || listed === '*') return { covers: () => true, leadsTo: () => true }
  const exact = new Set([...ALWAYS, ...listed])
  const ancestors = new Set<string>()
  for (const p of exact) {
    for (let i = 0; i < p.length; i++) if (p[i] === '.' || p[i] === '[') ancestors.add(p.slice(0, i))
  }
  return {
    covers(pattern) {
      if (exact.has(pattern)) return true
      for (let i = 0; i < pattern.length; i++) if ((pattern[i] === '.' || pattern[i] === '[') && exact.has(pattern.slice(0, i))) return true
      return false
    },
    leadsTo: (pattern) => ancestors.has(pattern),
  }
}
