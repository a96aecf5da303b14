// The ContainerRuntime port: what the agent needs from a container engine. The real adapter is
// docker-runtime.ts (dockerode); tests also use an in-memory fake. Both pass
// test/contract/container-runtime.ts.

import type { Readable } from 'node:stream'
import type { RegistryAuth } from './registry-auth.js'

/** Labels every Bramble container carries; the cluster id keeps clusters on one engine apart. */
export const LABELS = {
  cluster: 'io.bramble.cluster',
  podNamespace: 'io.bramble.pod.namespace',
  podName: 'io.bramble.pod.name',
  podUid: 'io.bramble.pod.uid',
  containerName: 'io.bramble.container.name',
  /** `sandbox`, `init` or `app`. */
  role: 'io.bramble.container.role',
  /** Hash of the container's spec: a change means recreate. */
  specHash: 'io.bramble.container.hash',
  /** 0 for the first run of a container, then one more per restart (restartCount). */
  attempt: 'io.bramble.container.attempt',
  /** The pod's terminationGracePeriodSeconds, for stopping it once it is no longer desired. */
  grace: 'io.bramble.pod.grace-seconds',
  /** Host devices the container was given for its devices.bramble.dev limits (device-allocator.ts). */
  devices: 'io.bramble.container.devices',
  cpuRequest: 'io.bramble.resources.requests.cpu',
  memoryRequest: 'io.bramble.resources.requests.memory',
} as const

export type ContainerStatus = 'created' | 'running' | 'paused' | 'restarting' | 'removing' | 'exited' | 'dead'

export interface ContainerState {
  status: ContainerStatus
  exitCode: number
  /** ISO timestamps; undefined when never started / not finished. */
  startedAt?: string
  finishedAt?: string
  oomKilled: boolean
  error?: string
}

export interface ContainerInfo {
  id: string
  name: string
  /** The image reference the container was created from. */
  image: string
  /** The image's id (sha256:...). */
  imageId: string
  labels: Record<string, string>
  state: ContainerState
  /** The container's own IP address, if it has a network namespace of its own. */
  ipAddress?: string
}

export interface MountSpec {
  type: 'bind' | 'tmpfs' | 'volume'
  /** Host path (bind) or volume name (volume); unused for tmpfs. */
  source?: string
  target: string
  readOnly?: boolean
}

export interface PortSpec {
  containerPort: number
  protocol: 'tcp' | 'udp'
  hostPort?: number
  hostIp?: string
}

export interface ContainerSpec {
  name: string
  image: string
  entrypoint?: string[]
  cmd?: string[]
  /** `NAME=value` entries. */
  env?: string[]
  workingDir?: string
  labels: Record<string, string>
  /** Exposed ports and host port bindings (only meaningful on a container owning its network). */
  ports?: PortSpec[]
  /** CPU limit in units of 1e-9 CPUs (Docker's NanoCpus). */
  nanoCpus?: number
  memoryBytes?: number
  mounts?: MountSpec[]
  /** `bridge`, `host`, `none`, a network name, or `container:<id or name>`. */
  networkMode?: string
  hostname?: string
  /** The container's resolv.conf: nameservers, search domains, options (`ndots:5`). */
  dns?: { servers: string[]; search: string[]; options: string[] }
  /** Log rotation, so a chatty pod cannot fill an SD card. */
  log?: { maxSize: string; maxFile: number }
  /** Every capability and every host device (securityContext.privileged). */
  privileged?: boolean
  /** Capabilities added to and dropped from the engine's default set, without `CAP_`: `NET_ADMIN`, `ALL`. */
  capAdd?: string[]
  capDrop?: string[]
  /** `uid`, `uid:gid` or `:gid` (securityContext.runAsUser and runAsGroup). */
  user?: string
  /** Extra group ids for the process (supplementalGroups). */
  groupAdd?: string[]
  readonlyRootfs?: boolean
  /** The process and its children can never gain privileges (allowPrivilegeEscalation: false). */
  noNewPrivileges?: boolean
  /** Host devices passed in (a CharDevice hostPath, a devices.bramble.dev resource). */
  devices?: DeviceSpec[]
  /** `host`: the node's process ids (hostPID) and System V IPC (hostIPC). */
  pidMode?: 'host'
  ipcMode?: 'host'
}

export interface DeviceSpec {
  hostPath: string
  containerPath: string
  /** Device cgroup access: `rwm` (read, write, mknod), `rm` when mounted read-only. */
  permissions: 'rwm' | 'rm'
}

export interface ExecResult {
  exitCode: number
  output: string
}

export interface LogOptions {
  tail?: number
  follow?: boolean
  timestamps?: boolean
}

export interface PullProgress {
  status: string
  id?: string
  current?: number
  total?: number
}

export interface RuntimeEvent {
  id: string
  /** Docker's action: create, start, die, oom, kill, stop, destroy, ... */
  action: string
  labels: Record<string, string>
}

/** A running container as the engine's list has it, without inspecting it. */
export interface RunningContainer {
  id: string
  name: string
  labels: Record<string, string>
}

export interface ContainerRuntime {
  /** Containers (running or not) carrying all the given labels. */
  list(labels: Record<string, string>): Promise<ContainerInfo[]>
  /** The running containers carrying all the given labels: one list request and no inspects, cheap enough for every heartbeat. */
  listRunning(labels: Record<string, string>): Promise<RunningContainer[]>
  /** Throws ContainerNotFoundError. */
  inspect(id: string): Promise<ContainerInfo>
  /** The image's id if the image is present locally. */
  imageId(ref: string): Promise<string | undefined>
  /** Resolves when the pull is done, with the registry's credentials when given; throws ImagePullError. */
  pullImage(ref: string, onProgress?: (p: PullProgress) => void, auth?: RegistryAuth): Promise<void>
  /** Imports a root filesystem tarball as image `ref` (how images are made without a registry). */
  importImage(rootfsTar: Readable, ref: string): Promise<void>
  /** Creates a container with restart policy "no": the agent restarts containers, not the engine. */
  create(spec: ContainerSpec): Promise<string>
  start(id: string): Promise<void>
  /** SIGTERM, then SIGKILL after graceSeconds. Stopping a stopped container is not an error. */
  stop(id: string, graceSeconds: number): Promise<void>
  /** Removing a missing container is not an error. */
  remove(id: string): Promise<void>
  /** Runs a command in a running container and waits for it. */
  exec(id: string, cmd: string[], options?: { timeoutMs?: number }): Promise<ExecResult>
  /** The container's output (stdout and stderr, demultiplexed into one text stream). */
  logs(id: string, options?: LogOptions): Promise<Readable>
  /** Resolves with the exit code once the container has stopped. */
  wait(id: string): Promise<{ exitCode: number }>
  createVolume(name: string, labels: Record<string, string>): Promise<void>
  /** Removing a missing volume is not an error. */
  removeVolume(name: string): Promise<void>
  /**
   * Container lifecycle events of containers carrying the labels, until close(). `onEnd` hears,
   * once, that the engine ended the stream (it stopped or restarted): watch again to go on.
   */
  watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, onEnd?: (err?: Error) => void): Promise<{ close(): void }>
}
