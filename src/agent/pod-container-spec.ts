// From a desired Pod (and the ConfigMaps and Secrets it uses) to engine container specs, env and
// volume files. Pure: paths come from settings, nothing touches the disk or the engine.

import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import type { KubeObject } from '../api/types.js'
import { Quantity } from '../api/quantity.js'
import { LABELS, type ContainerSpec, type DeviceSpec, type MountSpec, type PortSpec } from './container-runtime.js'
import { containerGrant, grantLabel, type DeviceGrant } from './device-allocator.js'
import { checkHostPath, type HostPathKind } from './host-paths.js'
import { PAUSE_COMMAND } from './pod-pause-image.js'
import { securityFields } from './pod-security.js'

/** A pod bound to this node with the ConfigMaps and Secrets of its namespace it refers to. */
export interface DesiredPod {
  pod: KubeObject
  configMaps: Record<string, KubeObject>
  secrets: Record<string, KubeObject>
  /** The PersistentVolumes on this node bound to claims of the pod's namespace, by claim name. */
  claims?: Record<string, KubeObject>
  /** What the node has for the pod, read by the agent before planning; absent, hostPaths are not checked and no devices are given. */
  host?: PodHostView
}

/** The node as a pod's hostPath volumes and device limits see it. */
export interface PodHostView {
  /** What is at each hostPath volume's path (host-paths.ts), and at the parent of a missing one. */
  paths: Record<string, HostPathKind>
  /** The node's devices the pod holds for its devices.bramble.dev limits, or why it cannot have them. */
  devices?: { grant: DeviceGrant } | { problem: string }
}

export interface PodSettings {
  clusterId: string
  /** Host directory holding one directory per pod uid (emptyDir and configMap volumes). */
  podsDir: string
  /** Memory-backed (tmpfs) host directory holding one directory per pod uid for secret volumes, kept off the SD card. */
  secretsDir: string
  pauseImage: string
  /** Docker network for pod sandboxes (default: the engine's default bridge). */
  network?: string
  log: { maxSize: string; maxFile: number }
  defaultGraceSeconds: number
  /** The node's cluster DNS server and domain; absent, pods use the node's resolvers. */
  clusterDns?: { nameserver: string; domain: string }
  /** The agent's data dir: a PersistentVolume's relative hostPath (`volumes/<pv>`) lies under it. */
  dataDir?: string
}

export type ContainerRole = 'sandbox' | 'init' | 'app'

/** Which of the pod's two host directories a volume lives in: its pod directory, or its secrets directory (tmpfs). */
export type VolumeRoot = 'pod' | 'secrets'

export interface VolumeDir {
  root: VolumeRoot
  /** Relative to that root's directory for the pod. */
  path: string
}

export interface VolumeFile {
  root: VolumeRoot
  /** Relative to that root's directory for the pod; the first segments are its volume's directory. */
  path: string
  /** The volume's directory this file belongs to (relative to the root's directory). */
  volumeDir: string
  contentBase64: string
  mode: number
}

export interface PodVolumes {
  /** Directories to create. */
  dirs: VolumeDir[]
  files: VolumeFile[]
  /** Host paths of DirectoryOrCreate and FileOrCreate volumes that are missing, and PersistentVolume directories: made before the pod starts (with `mode` when given). */
  hostPaths: Array<{ path: string; kind: 'directory' | 'file'; mode?: number; group?: number }>
  hash: string
}

/** A reference that does not resolve: the container cannot be configured (CreateContainerConfigError). */
export class PodConfigProblem {
  constructor(readonly message: string) {}
}

export function podKey(pod: KubeObject): string {
  return `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`
}

export function podUid(pod: KubeObject): string {
  return String(pod.metadata.uid)
}

export function graceSeconds(pod: KubeObject, settings: PodSettings): number {
  const g = pod.spec?.terminationGracePeriodSeconds
  return typeof g === 'number' && g >= 0 ? g : settings.defaultGraceSeconds
}

export function containerName(pod: KubeObject, container: string, attempt: number): string {
  const uid8 = podUid(pod).replace(/[^a-zA-Z0-9]/g, '').slice(0, 8)
  return `bramble_${pod.metadata.namespace ?? 'default'}_${pod.metadata.name}_${container}_${uid8}_${attempt}`
}

export function podDir(settings: PodSettings, uid: string): string {
  return posix.join(settings.podsDir, uid)
}

/** The pod's directory for its secret volumes, on tmpfs: `<secretsDir>/<uid>`. */
export function podSecretsDir(settings: PodSettings, uid: string): string {
  return posix.join(settings.secretsDir, uid)
}

/** Where a volume lives: secrets in the secrets directory as `<volume>`, the rest in the pod directory as `volumes/<volume>`. */
function volumeLocation(v: any): VolumeDir {
  return v.secret ? { root: 'secrets', path: String(v.name) } : { root: 'pod', path: posix.join('volumes', String(v.name)) }
}

function baseLabels(pod: KubeObject, settings: PodSettings, name: string, role: ContainerRole, attempt: number): Record<string, string> {
  return {
    [LABELS.cluster]: settings.clusterId,
    [LABELS.podNamespace]: pod.metadata.namespace ?? 'default',
    [LABELS.podName]: String(pod.metadata.name),
    [LABELS.podUid]: podUid(pod),
    [LABELS.containerName]: name,
    [LABELS.role]: role,
    [LABELS.attempt]: String(attempt),
    [LABELS.grace]: String(graceSeconds(pod, settings)),
  }
}

/** The spec's hash over everything but the attempt-specific name and labels. */
function withHash(spec: ContainerSpec): ContainerSpec {
  const { name: _name, labels, ...rest } = spec
  const { [LABELS.attempt]: _a, [LABELS.specHash]: _h, ...stable } = labels
  const hash = createHash('sha256').update(stableJson({ ...rest, labels: stable })).digest('hex').slice(0, 16)
  return { ...spec, labels: { ...labels, [LABELS.specHash]: hash } }
}

export function specHash(spec: ContainerSpec): string {
  return spec.labels[LABELS.specHash]
}

/** The sandbox: holds the pod's network namespace and its host ports. */
export function sandboxSpec(d: DesiredPod, settings: PodSettings, attempt: number): ContainerSpec {
  const pod = d.pod
  const ports: PortSpec[] = []
  // On the node's network there is nothing to publish: the ports are the node's already.
  for (const c of pod.spec?.hostNetwork ? [] : (pod.spec?.containers ?? [])) {
    for (const p of c.ports ?? []) {
      ports.push({
        containerPort: p.containerPort,
        protocol: String(p.protocol ?? 'TCP').toLowerCase() === 'udp' ? 'udp' : 'tcp',
        ...(p.hostPort ? { hostPort: p.hostPort } : {}),
        ...(p.hostIP ? { hostIp: p.hostIP } : {}),
      })
    }
  }
  return withHash({
    name: containerName(pod, 'POD', attempt),
    image: settings.pauseImage,
    cmd: PAUSE_COMMAND,
    labels: baseLabels(pod, settings, 'POD', 'sandbox', attempt),
    ports,
    networkMode: pod.spec?.hostNetwork ? 'host' : settings.network,
    hostname: pod.spec?.hostNetwork ? undefined : String(pod.spec?.hostname ?? pod.metadata.name).slice(0, 63),
    ...withDns(podDns(pod, settings.clusterDns)),
    log: settings.log,
  })
}

const withDns = (dns: ContainerSpec['dns']) => (dns ? { dns } : {})

/**
 * The pod's resolv.conf, as the kubelet writes it from dnsPolicy: ClusterFirst (the default) and
 * ClusterFirstWithHostNet use the cluster DNS with the namespace's search path and ndots:5 (a
 * host-network pod under ClusterFirst keeps the node's); Default keeps the node's resolvers;
 * None uses dnsConfig alone. dnsConfig's nameservers, searches and options are added last.
 * Undefined: the engine's default (the node's resolv.conf).
 */
export function podDns(pod: KubeObject, cluster: PodSettings['clusterDns']): ContainerSpec['dns'] {
  const policy = pod.spec?.dnsPolicy ?? 'ClusterFirst'
  const extra = pod.spec?.dnsConfig ?? {}
  const servers: string[] = []
  const search: string[] = []
  const options = new Map<string, string>()
  const useCluster = cluster && (policy === 'ClusterFirstWithHostNet' || (policy === 'ClusterFirst' && !pod.spec?.hostNetwork))
  if (useCluster) {
    const ns = pod.metadata.namespace ?? 'default'
    servers.push(cluster.nameserver)
    search.push(`${ns}.svc.${cluster.domain}`, `svc.${cluster.domain}`, cluster.domain)
    options.set('ndots', 'ndots:5')
  }
  for (const s of extra.nameservers ?? []) servers.push(String(s))
  for (const s of extra.searches ?? []) if (!search.includes(String(s))) search.push(String(s))
  for (const o of extra.options ?? []) if (o?.name) options.set(String(o.name), o.value !== undefined ? `${o.name}:${o.value}` : String(o.name))
  if (servers.length === 0 && search.length === 0 && options.size === 0) return undefined
  return { servers, search, options: [...options.values()] }
}

/** An init or app container, joined to the sandbox's network namespace. */
export function appContainerSpec(
  d: DesiredPod,
  container: any,
  role: 'init' | 'app',
  settings: PodSettings,
  sandboxName: string,
  attempt: number,
): ContainerSpec | PodConfigProblem {
  const pod = d.pod
  const env = resolveEnv(d, container)
  if (env instanceof PodConfigProblem) return env
  const resolved = resolveMounts(d, container, settings)
  if (resolved instanceof PodConfigProblem) return resolved
  const { mounts, devices } = resolved
  const granted = grantedDevices(d, container)
  if (granted instanceof PodConfigProblem) return granted
  devices.push(...granted.devices)
  const labels = baseLabels(pod, settings, container.name, role, attempt)
  if (granted.label) labels[LABELS.devices] = granted.label
  const limits = container.resources?.limits ?? {}
  const requests = container.resources?.requests ?? {}
  if (requests.cpu !== undefined) labels[LABELS.cpuRequest] = String(requests.cpu)
  if (requests.memory !== undefined) labels[LABELS.memoryRequest] = String(requests.memory)
  const spec: ContainerSpec = {
    name: containerName(pod, container.name, attempt),
    image: container.image,
    ...(container.command ? { entrypoint: container.command.map(String) } : {}),
    ...(container.args ? { cmd: container.args.map(String) } : {}),
    env,
    ...(container.workingDir ? { workingDir: container.workingDir } : {}),
    labels,
    mounts,
    networkMode: `container:${sandboxName}`,
    log: settings.log,
    ...securityFields(pod.spec, container),
    ...(devices.length ? { devices } : {}),
    ...(pod.spec?.hostPID === true ? { pidMode: 'host' as const } : {}),
    ...(pod.spec?.hostIPC === true ? { ipcMode: 'host' as const } : {}),
  }
  const cpu = Quantity.tryParse(limits.cpu)
  if (cpu) spec.nanoCpus = Number(cpu.milliValue()) * 1_000_000
  const memory = Quantity.tryParse(limits.memory)
  if (memory) spec.memoryBytes = Number(memory.value())
  return withHash(spec)
}

/** `envFrom` first, then `env` (later entries win), as Kubernetes does. */
export function resolveEnv(d: DesiredPod, container: any): string[] | PodConfigProblem {
  const vars = new Map<string, string>()
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? ''
    if (from.configMapRef) {
      const cm = d.configMaps[from.configMapRef.name]
      if (!cm) {
        if (from.configMapRef.optional) continue
        return new PodConfigProblem(`configmap "${from.configMapRef.name}" not found`)
      }
      for (const [k, v] of Object.entries(cm.data ?? {})) vars.set(prefix + k, String(v))
    } else if (from.secretRef) {
      const s = d.secrets[from.secretRef.name]
      if (!s) {
        if (from.secretRef.optional) continue
        return new PodConfigProblem(`secret "${from.secretRef.name}" not found`)
      }
      for (const [k, v] of Object.entries(s.data ?? {})) vars.set(prefix + k, decodeBase64(v))
    }
  }
  for (const e of container.env ?? []) {
    if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef
      const value = (d.configMaps[ref.name]?.data as Record<string, string> | undefined)?.[ref.key]
      if (value === undefined) {
        if (ref.optional) continue
        return new PodConfigProblem(missingKey('configmap', ref.name, ref.key, d.configMaps[ref.name] !== undefined))
      }
      vars.set(e.name, String(value))
    } else if (e.valueFrom?.secretKeyRef) {
      const ref = e.valueFrom.secretKeyRef
      const value = (d.secrets[ref.name]?.data as Record<string, string> | undefined)?.[ref.key]
      if (value === undefined) {
        if (ref.optional) continue
        return new PodConfigProblem(missingKey('secret', ref.name, ref.key, d.secrets[ref.name] !== undefined))
      }
      vars.set(e.name, decodeBase64(value))
    } else if (e.valueFrom) {
      continue // fieldRef and resourceFieldRef are not supported yet
    } else {
      vars.set(e.name, String(e.value ?? ''))
    }
  }
  return [...vars].map(([k, v]) => `${k}=${v}`)
}

function missingKey(kind: string, name: string, key: string, objectExists: boolean): string {
  return objectExists ? `couldn't find key ${key} in ${kind} ${name}` : `${kind} "${name}" not found`
}

/** The devices the pod holds for this container's devices.bramble.dev limits, each at /dev/<name> inside. */
function grantedDevices(d: DesiredPod, container: any): { devices: DeviceSpec[]; label: string } | PodConfigProblem {
  const held = d.host?.devices
  if (!held) return { devices: [], label: '' }
  if ('problem' in held) return new PodConfigProblem(held.problem)
  const grant = containerGrant(d.pod.spec, container.name, held.grant)
  const devices = Object.values(grant)
    .flat()
    .map((hostPath): DeviceSpec => ({ hostPath, containerPath: posix.join('/dev', posix.basename(hostPath)), permissions: 'rwm' }))
  return { devices, label: grantLabel(grant) }
}

/** A hostPath the pod gives as a device: typed CharDevice or BlockDevice, or found to be one on the node. */
function isDeviceHostPath(d: DesiredPod, hostPath: any): boolean {
  if (hostPath.type === 'CharDevice' || hostPath.type === 'BlockDevice') return true
  const kind = d.host?.paths[hostPath.path]
  return !hostPath.type && (kind === 'char' || kind === 'block')
}

function resolveMounts(d: DesiredPod, container: any, settings: PodSettings): { mounts: MountSpec[]; devices: DeviceSpec[] } | PodConfigProblem {
  const volumes = new Map<string, any>((d.pod.spec?.volumes ?? []).map((v: any) => [v.name, v]))
  const mounts: MountSpec[] = []
  const devices: DeviceSpec[] = []
  for (const m of container.volumeMounts ?? []) {
    const v = volumes.get(m.name)
    if (!v) return new PodConfigProblem(`volume "${m.name}" is not defined in the pod`)
    let source: string
    let readOnly = m.readOnly === true
    // A device bind-mounted would be visible but not usable (the device cgroup refuses it): the engine passes it in.
    if (v.hostPath && isDeviceHostPath(d, v.hostPath)) {
      devices.push({ hostPath: v.hostPath.path, containerPath: m.mountPath, permissions: readOnly ? 'rm' : 'rwm' })
      continue
    }
    if (v.hostPath) source = v.hostPath.path
    else if (v.persistentVolumeClaim) {
      const claimed = claimPath(d, v, settings)
      if (claimed instanceof PodConfigProblem) return claimed
      source = claimed
    } else if (v.secret) source = posix.join(podSecretsDir(settings, podUid(d.pod)), volumeLocation(v).path)
    else if (v.emptyDir || v.configMap) source = posix.join(podDir(settings, podUid(d.pod)), volumeLocation(v).path)
    else return new PodConfigProblem(`volume "${v.name}" has a type Bramble does not support`)
    if (v.configMap || v.secret) readOnly = true
    if (m.subPath) source = posix.join(source, m.subPath)
    mounts.push({ type: 'bind', source, target: m.mountPath, readOnly })
  }
  return { mounts, devices }
}

/**
 * Directories and files of the pod's emptyDir, configMap and secret volumes, and its hostPath
 * volumes checked against their type (when the node's view is given) with those to create.
 */
/** PersistentVolume directories are open to every container user, as local-path makes them... */
export const CLAIM_DIR_MODE = 0o777
/** ...or, with a pod fsGroup, group-owned by it, group-writable and setgid so new files keep the group (as the kubelet does). */
export const CLAIM_DIR_FSGROUP_MODE = 0o2775

/** The host directory of a claim's volume: its PV's hostPath, a relative one under the agent's data dir. */
function claimPath(d: DesiredPod, v: any, settings: Pick<PodSettings, 'dataDir'>): string | PodConfigProblem {
  const name = String(v.persistentVolumeClaim.claimName)
  const pv = d.claims?.[name]
  if (!pv) return new PodConfigProblem(`persistentvolumeclaim "${name}" is not bound to a volume on this node yet`)
  const path = pv.spec?.hostPath?.path ?? pv.spec?.local?.path
  if (typeof path !== 'string' || path === '') return new PodConfigProblem(`volume ${pv.metadata.name} of persistentvolumeclaim "${name}" has no hostPath`)
  if (posix.isAbsolute(path)) return path
  if (!settings.dataDir) return new PodConfigProblem(`volume ${pv.metadata.name} has a relative path and this agent has no data dir`)
  return posix.join(settings.dataDir, path)
}

export function podVolumes(d: DesiredPod, settings: Pick<PodSettings, 'dataDir'> = {}): PodVolumes | PodConfigProblem {
  const dirs: VolumeDir[] = []
  const files: VolumeFile[] = []
  const hostPaths: PodVolumes['hostPaths'] = []
  for (const v of d.pod.spec?.volumes ?? []) {
    const location = volumeLocation(v)
    const dir = location.path
    if (v.hostPath && d.host) {
      const check = checkHostPath(v.hostPath, d.host.paths)
      if (!check.ok) return new PodConfigProblem(`volume "${v.name}": ${check.problem}`)
      if (check.create) hostPaths.push({ path: v.hostPath.path, kind: check.create })
    } else if (v.persistentVolumeClaim) {
      const path = claimPath(d, v, settings)
      if (path instanceof PodConfigProblem) return path
      const fsGroup = d.pod.spec?.securityContext?.fsGroup
      if (Number.isInteger(fsGroup) && fsGroup >= 0) hostPaths.push({ path, kind: 'directory', mode: CLAIM_DIR_FSGROUP_MODE, group: fsGroup })
      else hostPaths.push({ path, kind: 'directory', mode: CLAIM_DIR_MODE })
    } else if (v.emptyDir) dirs.push(location)
    else if (v.configMap || v.secret) {
      dirs.push(location)
      const source = v.configMap ?? v.secret
      const obj = v.configMap ? d.configMaps[source.name] : d.secrets[source.secretName]
      const kind = v.configMap ? 'configmap' : 'secret'
      const objName = v.configMap ? source.name : source.secretName
      if (!obj) {
        if (source.optional) continue
        return new PodConfigProblem(`${kind} "${objName}" not found`)
      }
      const entries = new Map<string, string>() // key → base64 content
      if (v.configMap) {
        for (const [k, val] of Object.entries(obj.data ?? {})) entries.set(k, Buffer.from(String(val)).toString('base64'))
        for (const [k, val] of Object.entries(obj.binaryData ?? {})) entries.set(k, String(val))
      } else {
        for (const [k, val] of Object.entries(obj.data ?? {})) entries.set(k, String(val))
      }
      const defaultMode = typeof source.defaultMode === 'number' ? source.defaultMode : 0o644
      const items: Array<{ key: string; path: string; mode?: number }> = source.items ?? [...entries.keys()].map((key) => ({ key, path: key }))
      for (const item of items) {
        const content = entries.get(item.key)
        if (content === undefined) {
          if (source.optional) continue
          return new PodConfigProblem(`couldn't find key ${item.key} in ${kind} ${objName}`)
        }
        const rel = posix.normalize(item.path)
        if (rel.startsWith('..') || posix.isAbsolute(rel)) return new PodConfigProblem(`volume "${v.name}" item path "${item.path}" leaves the volume`)
        files.push({ root: location.root, path: posix.join(dir, rel), volumeDir: dir, contentBase64: content, mode: item.mode ?? defaultMode })
      }
    }
  }
  const hash = createHash('sha256').update(stableJson({ dirs, files, hostPaths })).digest('hex').slice(0, 16)
  return { dirs, files, hostPaths, hash }
}

function decodeBase64(v: unknown): string {
  return Buffer.from(String(v), 'base64').toString('utf8')
}

function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`
  if (v && typeof v === 'object') {
    return `{${Object.keys(v)
      .sort()
      .filter((k) => (v as any)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as any)[k])}`)
      .join(',')}}`
  }
  return JSON.stringify(v)
}
