// Pod spec rules for what reaches into the node: securityContext (pod and container), hostPath
// volume types, host-network ports and extended resources such as devices.bramble.dev/serial, as
// Kubernetes' validation has them. Wrong JSON types are the schema walk's to report.

import type { Quantity } from './quantity.js'
import type { FieldError } from './types.js'
import { child, forbidden, index, invalid, isRecord, notSupported } from './validate-errors.js'

export const HOST_PATH_TYPES = ['', 'DirectoryOrCreate', 'Directory', 'FileOrCreate', 'File', 'Socket', 'CharDevice', 'BlockDevice']

/** Linux capability names, without `CAP_`. */
const CAPABILITIES = new Set([
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP', 'LINUX_IMMUTABLE',
  'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER', 'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT',
  'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE',
  'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ',
  'PERFMON', 'BPF', 'CHECKPOINT_RESTORE',
])

const MAX_ID = 2147483647
const rec = (v: unknown): Record<string, unknown> | undefined => (isRecord(v) ? v : undefined)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])

function validateId(errs: FieldError[], value: unknown, p: string): void {
  if (typeof value === 'number' && Number.isInteger(value) && (value < 0 || value > MAX_ID)) errs.push(invalid(p, value, `must be between 0 and ${MAX_ID}, inclusive`))
}

const capabilityName = (name: string) => name.trim().toUpperCase().replace(/^CAP_/, '')

/** `spec.securityContext`: the user, group and supplementary groups every container runs with unless it says otherwise. */
export function validatePodSecurityContext(errs: FieldError[], value: unknown, p: string): void {
  const sc = rec(value)
  if (!sc) return
  validateId(errs, sc.runAsUser, child(p, 'runAsUser'))
  validateId(errs, sc.runAsGroup, child(p, 'runAsGroup'))
  validateId(errs, sc.fsGroup, child(p, 'fsGroup'))
  list(sc.supplementalGroups).forEach((g, i) => validateId(errs, g, index(child(p, 'supplementalGroups'), i)))
}

/** `spec.containers[i].securityContext`. */
export function validateContainerSecurityContext(errs: FieldError[], value: unknown, p: string): void {
  const sc = rec(value)
  if (!sc) return
  validateId(errs, sc.runAsUser, child(p, 'runAsUser'))
  validateId(errs, sc.runAsGroup, child(p, 'runAsGroup'))
  const caps = rec(sc.capabilities)
  const added = new Set<string>()
  for (const which of ['add', 'drop'] as const) {
    list(caps?.[which]).forEach((name, i) => {
      if (typeof name !== 'string') return
      const cap = capabilityName(name)
      if (which === 'add') added.add(cap)
      if (cap !== 'ALL' && !CAPABILITIES.has(cap))
        errs.push(invalid(index(child(child(p, 'capabilities'), which), i), name, 'must be a Linux capability name, with or without CAP_ (NET_ADMIN, CAP_SYS_TIME), or ALL'))
    })
  }
  // As Kubernetes: no_new_privs cannot hold a process that is privileged or may mount filesystems.
  if (sc.allowPrivilegeEscalation === false) {
    if (sc.privileged === true) errs.push(invalid(p, '', 'cannot set `allowPrivilegeEscalation` to false and `privileged` to true'))
    if (added.has('SYS_ADMIN') || added.has('ALL')) errs.push(invalid(p, '', 'cannot set `allowPrivilegeEscalation` to false and `capabilities.Add` CAP_SYS_ADMIN'))
  }
}

/** `spec.volumes[i].hostPath`: an absolute path without `..`, and a type Kubernetes knows. */
export function validateHostPathSource(errs: FieldError[], value: unknown, p: string): void {
  const hp = rec(value)
  if (!hp) return
  const path = hp.path
  if (typeof path === 'string' && path !== '') {
    if (!path.startsWith('/')) errs.push(invalid(child(p, 'path'), path, 'must be an absolute path'))
    else if (path.split('/').includes('..')) errs.push(invalid(child(p, 'path'), path, "must not contain '..'"))
  }
  if (typeof hp.type === 'string' && !HOST_PATH_TYPES.includes(hp.type)) errs.push(notSupported(child(p, 'type'), hp.type, HOST_PATH_TYPES.filter(Boolean)))
}

/** With hostNetwork the container's port is the node's: a hostPort, if given, must be the same number. */
export function validateHostNetworkPorts(errs: FieldError[], spec: Record<string, unknown>, p: string): void {
  if (spec.hostNetwork !== true) return
  for (const kind of ['containers', 'initContainers'] as const) {
    list(spec[kind]).forEach((c, i) => {
      list(rec(c)?.ports).forEach((port, j) => {
        const pt = rec(port)
        if (pt && typeof pt.hostPort === 'number' && pt.hostPort !== 0 && pt.hostPort !== pt.containerPort)
          errs.push(invalid(child(index(child(index(child(p, kind), i), 'ports'), j), 'hostPort'), pt.hostPort, 'must match `containerPort` when `hostNetwork` is true'))
      })
    })
  }
}

/** Names outside kubernetes.io with a domain: extended resources, which cannot be overcommitted. */
export function isExtendedResourceName(name: string): boolean {
  return name.includes('/') && !name.includes('kubernetes.io/')
}

/**
 * Extended resources are counted in whole units and cannot be overcommitted: a request needs a
 * limit and equals it (a limit alone is also the request). `parsed` holds the quantities that parsed.
 */
export function validateExtendedResources(errs: FieldError[], parsed: Record<'requests' | 'limits', Map<string, Quantity>>, p: string): void {
  for (const kind of ['requests', 'limits'] as const) {
    for (const [name, q] of parsed[kind]) if (isExtendedResourceName(name) && q.milliValue() % 1000n !== 0n) errs.push(invalid(child(child(p, kind), name), q.toString(), 'must be an integer'))
  }
  for (const [name, req] of parsed.requests) {
    if (!isExtendedResourceName(name)) continue
    const limit = parsed.limits.get(name)
    if (!limit) errs.push(forbidden(child(child(p, 'limits'), name), 'Limit must be set for non overcommitable resources'))
    else if (limit.cmp(req) !== 0) errs.push(invalid(child(child(p, 'requests'), name), req.toString(), `must be equal to ${name} limit of ${limit.toString()}`))
  }
}
