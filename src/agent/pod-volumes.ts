// A pod's volumes on the node: the directories and files of its emptyDir, configMap and secret
// volumes, its hostPath and PersistentVolume directories, and the mounts and devices a container
// gets from them. Pure: paths come from settings, nothing touches the disk.

import { createHash } from 'node:crypto'
import { posix } from 'node:path'
import type { DeviceSpec, MountSpec } from './container-runtime.js'
import { PodConfigProblem, podDir, podSecretsDir, podUid, type DesiredPod, type PodSettings } from './desired-pod.js'
import { checkHostPath } from './host-paths.js'
import { stableJson } from '../lib/stable-json.js'

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

/** Where a volume lives: secrets in the secrets directory as `<volume>`, the rest in the pod directory as `volumes/<volume>`. */
export function volumeLocation(v: any): VolumeDir {
  return v.secret ? { root: 'secrets', path: String(v.name) } : { root: 'pod', path: posix.join('volumes', String(v.name)) }
}

/** A hostPath the pod gives as a device: typed CharDevice or BlockDevice, or found to be one on the node. */
function isDeviceHostPath(d: DesiredPod, hostPath: any): boolean {
  if (hostPath.type === 'CharDevice' || hostPath.type === 'BlockDevice') return true
  const kind = d.host?.paths[hostPath.path]
  return !hostPath.type && (kind === 'char' || kind === 'block')
}

/** The container's volume mounts as engine binds, and the hostPath volumes that are devices as engine devices. */
export function resolveMounts(d: DesiredPod, container: any, settings: PodSettings): { mounts: MountSpec[]; devices: DeviceSpec[] } | PodConfigProblem {
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

/**
 * Directories and files of the pod's emptyDir, configMap and secret volumes, and its hostPath
 * volumes checked against their type (when the node's view is given) with those to create.
 */
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
