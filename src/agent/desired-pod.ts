// A pod as the agent is given it (with the ConfigMaps, Secrets and volumes it refers to), the
// agent's settings for pods, and the keys, names and host directories derived from a pod.

import { posix } from 'node:path'
import type { KubeObject } from '../api/types.js'
import type { DeviceGrant } from './device-allocator.js'
import type { HostPathKind } from './host-paths.js'

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

export function podDir(settings: PodSettings, uid: string): string {
  return posix.join(settings.podsDir, uid)
}

/** The pod's directory for its secret volumes, on tmpfs: `<secretsDir>/<uid>`. */
export function podSecretsDir(settings: PodSettings, uid: string): string {
  return posix.join(settings.secretsDir, uid)
}
