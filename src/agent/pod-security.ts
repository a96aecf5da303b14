// A container's effective securityContext, merged from the pod's and its own as Kubernetes merges
// them (the container's runAsUser and runAsGroup win over the pod's; privileged, capabilities,
// readOnlyRootFilesystem and allowPrivilegeEscalation exist only on the container;
// supplementalGroups and fsGroup only on the pod), turned into the engine's terms. Pure.

import type { ContainerSpec } from './container-runtime.js'

export type SecurityFields = Pick<ContainerSpec, 'privileged' | 'capAdd' | 'capDrop' | 'user' | 'groupAdd' | 'readonlyRootfs' | 'noNewPrivileges'>

/** `net_admin`, `CAP_NET_ADMIN` → `NET_ADMIN`; `all` → `ALL` (the engine takes either spelling, one is kept so the spec hash is stable). */
export function capabilityName(name: string): string {
  return String(name).trim().toUpperCase().replace(/^CAP_/, '')
}

const isId = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0

export function securityFields(podSpec: any, container: any): SecurityFields {
  const pod = podSpec?.securityContext ?? {}
  const own = container?.securityContext ?? {}
  const fields: SecurityFields = {}
  if (own.privileged === true) fields.privileged = true
  const add = (own.capabilities?.add ?? []).map(capabilityName)
  const drop = (own.capabilities?.drop ?? []).map(capabilityName)
  if (add.length) fields.capAdd = [...new Set<string>(add)]
  if (drop.length) fields.capDrop = [...new Set<string>(drop)]
  const uid = isId(own.runAsUser) ? own.runAsUser : isId(pod.runAsUser) ? pod.runAsUser : undefined
  const gid = isId(own.runAsGroup) ? own.runAsGroup : isId(pod.runAsGroup) ? pod.runAsGroup : undefined
  // Docker's User is `uid:gid`; a group alone (`:gid`) keeps the image's user, as the kubelet did on Docker.
  if (uid !== undefined || gid !== undefined) fields.user = `${uid ?? ''}${gid !== undefined ? `:${gid}` : ''}`
  // fsGroup is a supplemental group too: the group that owns the pod's volumes (PersistentVolume directories).
  const groups = [...new Set([...((pod.supplementalGroups ?? []) as unknown[]), pod.fsGroup].filter(isId).map(String))]
  if (groups.length) fields.groupAdd = groups
  if (own.readOnlyRootFilesystem === true) fields.readonlyRootfs = true
  if (own.allowPrivilegeEscalation === false) fields.noNewPrivileges = true
  return fields
}
