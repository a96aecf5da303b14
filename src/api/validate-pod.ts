// Pod spec rules (Kubernetes' ValidatePodSpec, the parts Bramble's users meet). JSON types are
// checked by the schema walk; these checks skip values of the wrong type rather than report twice.

import { isDNS1123Label, isDNS1123Subdomain, isEnvVarName, isQualifiedName, isValidLabelValue, isValidPortName, isValidPortNum, validateLabels } from './names.js'
import { Quantity } from './quantity.js'
import { labelSelectorFromObject } from './selector.js'
import { isExtendedResourceName, validateContainerSecurityContext, validateExtendedResources, validateHostNetworkPorts, validateHostPathSource, validatePodSecurityContext } from './validate-host-access.js'
import type { FieldError } from './types.js'
import { child, duplicate, forbidden, index, invalid, invalidEach, isRecord, notSupported, required } from './validate-errors.js'

export const RESTART_POLICIES = ['Always', 'OnFailure', 'Never']
const DNS_POLICIES = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None']
const PROTOCOLS = ['TCP', 'UDP', 'SCTP']
const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never']
const TERMINATION_MESSAGE_POLICIES = ['File', 'FallbackToLogsOnError']
const TOLERATION_OPERATORS = ['Exists', 'Equal']
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute']
const VOLUME_SOURCES_KNOWN_NOT_SOURCES = new Set(['name'])
const QUANTITY_FMT = '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined)
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isInteger(v) ? v : undefined)
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : [])
const rec = (v: unknown): Record<string, unknown> | undefined => (isRecord(v) ? v : undefined)

export function nonNegative(errs: FieldError[], value: unknown, path: string): void {
  const n = int(value)
  if (n !== undefined && n < 0) errs.push(invalid(path, n, 'must be greater than or equal to 0'))
}

function oneOf(errs: FieldError[], value: unknown, path: string, allowed: readonly string[], isRequired = false): void {
  if (value === undefined || value === null || value === '') {
    if (isRequired) errs.push(required(path))
    return
  }
  if (typeof value === 'string' && !allowed.includes(value)) errs.push(notSupported(path, value, allowed))
}

/** Validates a pod spec at `path` (`spec`, `spec.template.spec`). */
export function validatePodSpec(spec: unknown, path: string): FieldError[] {
  const errs: FieldError[] = []
  const s = rec(spec)
  if (!s) {
    if (spec === undefined || spec === null) errs.push(required(child(path, 'containers')))
    return errs
  }
  const volumeNames = validateVolumes(errs, s.volumes, child(path, 'volumes'))
  const cp = child(path, 'containers')
  if (!Array.isArray(s.containers) || s.containers.length === 0) {
    if (s.containers === undefined || s.containers === null || Array.isArray(s.containers)) errs.push(required(cp))
  } else validateContainers(errs, s.containers, cp, volumeNames)
  if (Array.isArray(s.initContainers)) validateContainers(errs, s.initContainers, child(path, 'initContainers'), volumeNames)
  oneOf(errs, s.restartPolicy, child(path, 'restartPolicy'), RESTART_POLICIES)
  oneOf(errs, s.dnsPolicy, child(path, 'dnsPolicy'), DNS_POLICIES)
  const nodeName = str(s.nodeName)
  if (nodeName) errs.push(...invalidEach(child(path, 'nodeName'), nodeName, isDNS1123Subdomain(nodeName)))
  if (isRecord(s.nodeSelector)) errs.push(...validateLabels(s.nodeSelector, child(path, 'nodeSelector')))
  nonNegative(errs, s.terminationGracePeriodSeconds, child(path, 'terminationGracePeriodSeconds'))
  const deadline = int(s.activeDeadlineSeconds)
  if (deadline !== undefined && (deadline < 1 || deadline > 2147483647))
    errs.push(invalid(child(path, 'activeDeadlineSeconds'), deadline, 'must be between 1 and 2147483647, inclusive'))
  list(s.tolerations).forEach((t, i) => validateToleration(errs, t, index(child(path, 'tolerations'), i)))
  validateAffinity(errs, s.affinity, child(path, 'affinity'))
  validatePodSecurityContext(errs, s.securityContext, child(path, 'securityContext'))
  validateHostNetworkPorts(errs, s, path)
  return errs
}

function validateVolumes(errs: FieldError[], volumes: unknown, path: string): Set<string> {
  const names = new Set<string>()
  list(volumes).forEach((v, i) => {
    const vol = rec(v)
    const vp = index(path, i)
    if (!vol) return
    const name = str(vol.name)
    if (!name) errs.push(required(child(vp, 'name')))
    else {
      errs.push(...invalidEach(child(vp, 'name'), name, isDNS1123Label(name)))
      if (names.has(name)) errs.push(duplicate(child(vp, 'name'), name))
      names.add(name)
    }
    const sources = Object.keys(vol).filter((k) => !VOLUME_SOURCES_KNOWN_NOT_SOURCES.has(k) && vol[k] !== null && vol[k] !== undefined)
    if (sources.length === 0) errs.push(required(vp, 'must specify a volume type'))
    else if (sources.length > 1) errs.push(forbidden(child(vp, sources[1]), 'may not specify more than 1 volume type'))
    const cm = rec(vol.configMap)
    if (cm && !str(cm.name)) errs.push(required(child(child(vp, 'configMap'), 'name')))
    const secret = rec(vol.secret)
    if (secret && !str(secret.secretName)) errs.push(required(child(child(vp, 'secret'), 'secretName')))
    const hostPath = rec(vol.hostPath)
    if (hostPath && !str(hostPath.path)) errs.push(required(child(child(vp, 'hostPath'), 'path')))
    validateHostPathSource(errs, hostPath, child(vp, 'hostPath'))
    const claim = rec(vol.persistentVolumeClaim)
    if (claim && !str(claim.claimName)) errs.push(required(child(child(vp, 'persistentVolumeClaim'), 'claimName')))
    const emptyDir = rec(vol.emptyDir)
    if (emptyDir && emptyDir.sizeLimit !== undefined && emptyDir.sizeLimit !== null) validateQuantity(errs, emptyDir.sizeLimit, child(child(vp, 'emptyDir'), 'sizeLimit'))
  })
  return names
}

function validateContainers(errs: FieldError[], containers: unknown[], path: string, volumes: Set<string>): void {
  const names = new Set<string>()
  const portNames = new Set<string>()
  containers.forEach((c, i) => {
    const ctr = rec(c)
    const p = index(path, i)
    if (!ctr) return
    const name = str(ctr.name)
    if (!name) errs.push(required(child(p, 'name')))
    else {
      errs.push(...invalidEach(child(p, 'name'), name, isDNS1123Label(name)))
      if (names.has(name)) errs.push(duplicate(child(p, 'name'), name))
      names.add(name)
    }
    if (!str(ctr.image) || str(ctr.image)!.trim() === '') {
      if (ctr.image === undefined || ctr.image === null || ctr.image === '') errs.push(required(child(p, 'image')))
      else if (typeof ctr.image === 'string') errs.push(invalid(child(p, 'image'), ctr.image, 'must not have leading or trailing whitespace'))
    } else if (str(ctr.image)!.trim() !== ctr.image) errs.push(invalid(child(p, 'image'), ctr.image, 'must not have leading or trailing whitespace'))
    oneOf(errs, ctr.imagePullPolicy, child(p, 'imagePullPolicy'), PULL_POLICIES)
    oneOf(errs, ctr.terminationMessagePolicy, child(p, 'terminationMessagePolicy'), TERMINATION_MESSAGE_POLICIES)
    list(ctr.ports).forEach((port, j) => validateContainerPort(errs, port, index(child(p, 'ports'), j), portNames))
    list(ctr.env).forEach((e, j) => validateEnvVar(errs, e, index(child(p, 'env'), j)))
    list(ctr.envFrom).forEach((e, j) => validateEnvFrom(errs, e, index(child(p, 'envFrom'), j)))
    validateResources(errs, ctr.resources, child(p, 'resources'))
    validateContainerSecurityContext(errs, ctr.securityContext, child(p, 'securityContext'))
    validateVolumeMounts(errs, ctr.volumeMounts, child(p, 'volumeMounts'), volumes)
    for (const probe of ['livenessProbe', 'readinessProbe', 'startupProbe'] as const)
      if (ctr[probe] !== undefined && ctr[probe] !== null) validateProbe(errs, ctr[probe], child(p, probe), probe !== 'readinessProbe')
  })
}

function validateContainerPort(errs: FieldError[], port: unknown, p: string, names: Set<string>): void {
  const cp = rec(port)
  if (!cp) return
  const containerPort = int(cp.containerPort)
  if (cp.containerPort === undefined || cp.containerPort === null) errs.push(required(child(p, 'containerPort')))
  else if (containerPort !== undefined) errs.push(...invalidEach(child(p, 'containerPort'), containerPort, isValidPortNum(containerPort)))
  const hostPort = int(cp.hostPort)
  if (hostPort !== undefined && hostPort !== 0) errs.push(...invalidEach(child(p, 'hostPort'), hostPort, isValidPortNum(hostPort)))
  oneOf(errs, cp.protocol, child(p, 'protocol'), PROTOCOLS)
  const name = str(cp.name)
  if (name) {
    errs.push(...invalidEach(child(p, 'name'), name, isValidPortName(name)))
    if (names.has(name)) errs.push(duplicate(child(p, 'name'), name))
    names.add(name)
  }
}

function validateEnvVar(errs: FieldError[], env: unknown, p: string): void {
  const e = rec(env)
  if (!e) return
  const name = str(e.name)
  if (!name) errs.push(required(child(p, 'name')))
  else errs.push(...invalidEach(child(p, 'name'), name, isEnvVarName(name)))
  const from = rec(e.valueFrom)
  if (from) {
    const sources = Object.keys(from).filter((k) => from[k] !== null && from[k] !== undefined)
    if (sources.length === 0) errs.push(invalid(child(p, 'valueFrom'), '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`'))
    else if (sources.length > 1) errs.push(invalid(child(p, 'valueFrom'), '', 'may not have more than one field specified at a time'))
    if (typeof e.value === 'string' && e.value !== '') errs.push(invalid(child(p, 'valueFrom'), '', 'may not be specified when `value` is not empty'))
    for (const ref of ['configMapKeyRef', 'secretKeyRef'] as const) {
      const r = rec(from[ref])
      if (r && !str(r.key)) errs.push(required(child(child(child(p, 'valueFrom'), ref), 'key')))
    }
    const fieldRef = rec(from.fieldRef)
    if (fieldRef && !str(fieldRef.fieldPath)) errs.push(required(child(child(child(p, 'valueFrom'), 'fieldRef'), 'fieldPath')))
  }
}

function validateEnvFrom(errs: FieldError[], envFrom: unknown, p: string): void {
  const e = rec(envFrom)
  if (!e) return
  const prefix = str(e.prefix)
  if (prefix) errs.push(...invalidEach(child(p, 'prefix'), prefix, isEnvVarName(prefix)))
  const refs = ['configMapRef', 'secretRef'].filter((k) => e[k] !== undefined && e[k] !== null)
  if (refs.length === 0) errs.push(invalid(p, '', 'must specify one of: `configMapRef` or `secretRef`'))
  else if (refs.length > 1) errs.push(invalid(p, '', 'may not have more than one field specified at a time'))
  for (const r of refs) {
    const ref = rec(e[r])
    if (ref && !str(ref.name)) errs.push(required(child(child(p, r), 'name')))
  }
}

export function validateQuantity(errs: FieldError[], value: unknown, p: string): Quantity | undefined {
  const q = Quantity.tryParse(value)
  if (!q) {
    if (typeof value === 'string' || typeof value === 'number') errs.push(invalid(p, value, `quantities must match the regular expression '${QUANTITY_FMT}'`))
    return undefined
  }
  if (q.cmp(Quantity.zero()) < 0) {
    errs.push(invalid(p, value, 'must be greater than or equal to 0'))
    return undefined
  }
  return q
}

const STANDARD_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage', 'storage'])

function validateResourceName(errs: FieldError[], name: string, p: string): void {
  if (STANDARD_RESOURCES.has(name) || name.startsWith('hugepages-')) return
  const msgs = isQualifiedName(name)
  if (msgs.length) errs.push(...invalidEach(p, name, msgs))
  else if (!name.includes('/')) errs.push(invalid(p, name, 'must be a standard resource type or fully qualified'))
}

function validateResources(errs: FieldError[], resources: unknown, p: string): void {
  const r = rec(resources)
  if (!r) return
  const parsed: Record<'requests' | 'limits', Map<string, Quantity>> = { requests: new Map(), limits: new Map() }
  for (const kind of ['requests', 'limits'] as const) {
    const m = rec(r[kind])
    if (!m) continue
    for (const [name, value] of Object.entries(m)) {
      const fp = child(child(p, kind), name)
      validateResourceName(errs, name, fp)
      const q = validateQuantity(errs, value, fp)
      if (q) parsed[kind].set(name, q)
    }
  }
  validateExtendedResources(errs, parsed, p)
  for (const [name, req] of parsed.requests) {
    const limit = parsed.limits.get(name)
    if (limit && req.cmp(limit) > 0 && !isExtendedResourceName(name))
      errs.push(invalid(child(child(p, 'requests'), name), req.toString(), `must be less than or equal to ${name} limit of ${limit.toString()}`))
  }
}

function validateVolumeMounts(errs: FieldError[], mounts: unknown, p: string, volumes: Set<string>): void {
  const paths = new Set<string>()
  list(mounts).forEach((m, i) => {
    const mount = rec(m)
    const mp = index(p, i)
    if (!mount) return
    const name = str(mount.name)
    if (!name) errs.push(required(child(mp, 'name')))
    else if (!volumes.has(name)) errs.push(invalid(child(mp, 'name'), name, 'Not found: no volume of this name in the pod spec'))
    const mountPath = str(mount.mountPath)
    if (!mountPath) errs.push(required(child(mp, 'mountPath')))
    else {
      if (paths.has(mountPath)) errs.push(invalid(child(mp, 'mountPath'), mountPath, 'must be unique'))
      paths.add(mountPath)
    }
    const sub = str(mount.subPath)
    if (sub && (sub.startsWith('/') || sub.split('/').includes('..'))) errs.push(invalid(child(mp, 'subPath'), sub, "must be a relative path without '..'"))
  })
}

const PROBE_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'grpc']

function validateProbe(errs: FieldError[], probe: unknown, p: string, successMustBeOne: boolean): void {
  const pr = rec(probe)
  if (!pr) return
  const handlers = PROBE_HANDLERS.filter((h) => pr[h] !== undefined && pr[h] !== null)
  if (handlers.length === 0) errs.push(required(p, 'must specify a handler type'))
  else if (handlers.length > 1) errs.push(forbidden(child(p, handlers[1]), 'may not specify more than 1 handler type'))
  for (const f of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold', 'terminationGracePeriodSeconds'])
    nonNegative(errs, pr[f], child(p, f))
  const success = int(pr.successThreshold)
  if (successMustBeOne && success !== undefined && success !== 1) errs.push(invalid(child(p, 'successThreshold'), success, 'must be 1'))
  const exec = rec(pr.exec)
  if (exec && list(exec.command).length === 0) errs.push(required(child(child(p, 'exec'), 'command')))
  for (const h of ['httpGet', 'tcpSocket'] as const) {
    const handler = rec(pr[h])
    if (handler) validatePortNumOrName(errs, handler.port, child(child(p, h), 'port'))
  }
  const http = rec(pr.httpGet)
  if (http) oneOf(errs, http.scheme, child(child(p, 'httpGet'), 'scheme'), ['HTTP', 'HTTPS'])
  const grpc = rec(pr.grpc)
  if (grpc && int(grpc.port) !== undefined) errs.push(...invalidEach(child(child(p, 'grpc'), 'port'), grpc.port, isValidPortNum(int(grpc.port)!)))
}

/** A port given as a number (1–65535) or a port name (IANA_SVC_NAME). */
export function validatePortNumOrName(errs: FieldError[], port: unknown, p: string): void {
  if (port === undefined || port === null || port === '') errs.push(required(p))
  else if (typeof port === 'number') {
    if (Number.isInteger(port)) errs.push(...invalidEach(p, port, isValidPortNum(port)))
  }
  else if (typeof port === 'string') {
    if (/^[0-9]+$/.test(port)) errs.push(...invalidEach(p, port, isValidPortNum(Number(port))))
    else errs.push(...invalidEach(p, port, isValidPortName(port)))
  }
}

function validateToleration(errs: FieldError[], toleration: unknown, p: string): void {
  const t = rec(toleration)
  if (!t) return
  const k = str(t.key)
  if (k) errs.push(...invalidEach(child(p, 'key'), k, isQualifiedName(k)))
  const op = str(t.operator)
  oneOf(errs, t.operator, child(p, 'operator'), TOLERATION_OPERATORS)
  if (!k && op !== 'Exists') errs.push(invalid(child(p, 'operator'), t.operator ?? '', 'operator must be Exists when `key` is empty, which means "match all values and all keys"'))
  if (op === 'Exists' && typeof t.value === 'string' && t.value !== '') errs.push(invalid(child(p, 'operator'), t.value, 'value must be empty when `operator` is \'Exists\''))
  if ((op === undefined || op === 'Equal') && typeof t.value === 'string') errs.push(...invalidEach(child(p, 'value'), t.value, isValidLabelValue(t.value)))
  oneOf(errs, t.effect, child(p, 'effect'), TAINT_EFFECTS)
  if (t.tolerationSeconds !== undefined && t.tolerationSeconds !== null && t.effect !== 'NoExecute')
    errs.push(invalid(child(p, 'effect'), t.effect ?? '', "effect must be 'NoExecute' when `tolerationSeconds` is set"))
}

function validateAffinity(errs: FieldError[], affinity: unknown, p: string): void {
  const a = rec(affinity)
  if (!a) return
  const na = rec(a.nodeAffinity)
  if (na) {
    const np = child(p, 'nodeAffinity')
    const req = rec(na.requiredDuringSchedulingIgnoredDuringExecution)
    if (req) {
      const tp = child(child(np, 'requiredDuringSchedulingIgnoredDuringExecution'), 'nodeSelectorTerms')
      if (!Array.isArray(req.nodeSelectorTerms) || req.nodeSelectorTerms.length === 0) errs.push(required(tp, 'must have at least one node selector term'))
      list(req.nodeSelectorTerms).forEach((term, i) => validateNodeSelectorTerm(errs, term, index(tp, i)))
    }
    list(na.preferredDuringSchedulingIgnoredDuringExecution).forEach((pref, i) => {
      const pp = index(child(np, 'preferredDuringSchedulingIgnoredDuringExecution'), i)
      const pr = rec(pref)
      if (!pr) return
      validateWeight(errs, pr.weight, child(pp, 'weight'))
      validateNodeSelectorTerm(errs, pr.preference, child(pp, 'preference'))
    })
  }
  for (const kind of ['podAffinity', 'podAntiAffinity'] as const) {
    const pa = rec(a[kind])
    if (!pa) continue
    const pp = child(p, kind)
    list(pa.requiredDuringSchedulingIgnoredDuringExecution).forEach((term, i) => validatePodAffinityTerm(errs, term, index(child(pp, 'requiredDuringSchedulingIgnoredDuringExecution'), i)))
    list(pa.preferredDuringSchedulingIgnoredDuringExecution).forEach((w, i) => {
      const wp = index(child(pp, 'preferredDuringSchedulingIgnoredDuringExecution'), i)
      const wt = rec(w)
      if (!wt) return
      validateWeight(errs, wt.weight, child(wp, 'weight'))
      validatePodAffinityTerm(errs, wt.podAffinityTerm, child(wp, 'podAffinityTerm'))
    })
  }
}

function validateWeight(errs: FieldError[], weight: unknown, p: string): void {
  const w = int(weight)
  if (weight === undefined || weight === null) errs.push(required(p))
  else if (w !== undefined && (w < 1 || w > 100)) errs.push(invalid(p, w, 'must be in the range 1-100'))
}

function validateNodeSelectorTerm(errs: FieldError[], term: unknown, p: string): void {
  const t = rec(term)
  if (!t) return
  // matchExpressions take Gt and Lt; matchFields only metadata.name with In/NotIn, as in Kubernetes.
  errs.push(...labelSelectorFromObject({ matchExpressions: t.matchExpressions }, p, { allowGtLt: true }).errors)
  list(t.matchFields).forEach((f, i) => {
    const fp = index(child(p, 'matchFields'), i)
    const mf = rec(f)
    if (mf && mf.key !== 'metadata.name') errs.push(notSupported(child(fp, 'key'), mf.key, ['metadata.name']))
    if (mf && mf.operator !== 'In' && mf.operator !== 'NotIn') errs.push(notSupported(child(fp, 'operator'), mf.operator, ['In', 'NotIn']))
    if (mf && Array.isArray(mf.values) && mf.values.length !== 1) errs.push(required(child(fp, 'values'), 'must be only one value when `operator` is \'In\' or \'NotIn\' for node field selector'))
  })
}

function validatePodAffinityTerm(errs: FieldError[], term: unknown, p: string): void {
  const t = rec(term)
  if (!t) return
  errs.push(...labelSelectorFromObject(t.labelSelector, child(p, 'labelSelector')).errors)
  const topologyKey = str(t.topologyKey)
  if (!topologyKey) errs.push(required(child(p, 'topologyKey'), 'can not be empty'))
  else errs.push(...invalidEach(child(p, 'topologyKey'), topologyKey, isQualifiedName(topologyKey)))
  list(t.namespaces).forEach((ns, i) => {
    if (typeof ns === 'string') errs.push(...invalidEach(index(child(p, 'namespaces'), i), ns, isDNS1123Label(ns)))
  })
}

