// The hub ↔ agent protocol over MQTT 3.1.1, version 1: topics and message shapes that both sides
// share. No I/O here; decoders live in protocol-decode.ts.
//
// Every node's topics sit under `bramble/v1/nodes/<node>/`; the hub writes under `down/`, the
// node under `up/`. Cluster-wide topics sit under `bramble/v1/cluster/`. Node names are DNS-1123
// labels, which keeps the MQTT wildcards `+` and `#` and the level separator `/` out of topics.

import { isDNS1123Label } from './names.js'
import type { KubeObject } from './types.js'

export const PROTOCOL_VERSION = 1
export const TOPIC_ROOT = 'bramble/v1'
export const NODES_ROOT = `${TOPIC_ROOT}/nodes`
export const CLUSTER_ROOT = `${TOPIC_ROOT}/cluster`

export const DOWN_NAMES = ['desired', 'rpc'] as const
export const UP_NAMES = ['sync', 'ack', 'heartbeat', 'node-status', 'pod-status', 'events', 'rpc-reply', 'presence'] as const
export const CLUSTER_NAMES = ['mesh', 'services'] as const

export type DownName = (typeof DOWN_NAMES)[number]
export type UpName = (typeof UP_NAMES)[number]
export type ClusterName = (typeof CLUSTER_NAMES)[number]
export type Direction = 'up' | 'down'

export function isValidNodeName(name: string): boolean {
  return typeof name === 'string' && isDNS1123Label(name).length === 0
}

function nodePrefix(node: string): string {
  if (!isValidNodeName(node)) throw new TypeError(`node name "${node}" is not a DNS-1123 label`)
  return `${NODES_ROOT}/${node}`
}

/** `bramble/v1/nodes/<node>/down/<name>` */
export function downTopic(node: string, name: DownName): string {
  return `${nodePrefix(node)}/down/${name}`
}

/** `bramble/v1/nodes/<node>/up/<name>` */
export function upTopic(node: string, name: UpName): string {
  return `${nodePrefix(node)}/up/${name}`
}

/** `bramble/v1/cluster/<name>` */
export function clusterTopic(name: ClusterName): string {
  return `${CLUSTER_ROOT}/${name}`
}

/** The filter the hub subscribes to for everything nodes send: `bramble/v1/nodes/+/up/+`. */
export const ALL_UP_FILTER = `${NODES_ROOT}/+/up/+`
/** What a node subscribes to for its own downward traffic. */
export function nodeDownFilter(node: string): string {
  return `${nodePrefix(node)}/down/+`
}

export type ParsedTopic =
  | { node: string; direction: 'up'; name: UpName }
  | { node: string; direction: 'down'; name: DownName }

/** Splits a node topic; undefined for anything that is not exactly a known protocol v1 node topic. */
export function parseTopic(topic: string): ParsedTopic | undefined {
  const parts = topic.split('/')
  if (parts.length !== 6 || parts[0] !== 'bramble' || parts[1] !== 'v1' || parts[2] !== 'nodes') return undefined
  const [, , , node, direction, name] = parts as [string, string, string, string, string, string]
  if (!isValidNodeName(node)) return undefined
  if (direction === 'up' && (UP_NAMES as readonly string[]).includes(name)) return { node, direction, name: name as UpName }
  if (direction === 'down' && (DOWN_NAMES as readonly string[]).includes(name)) return { node, direction, name: name as DownName }
  return undefined
}

// ---- Messages -------------------------------------------------------------------------------

export interface ObjectRef {
  kind: DesiredObject['kind']
  namespace: string
  name: string
  uid?: string
  /**
   * A deleted Pod's containers get this many seconds to stop instead of the pod's own
   * terminationGracePeriodSeconds: the deletion asked for it (an eviction's deleteOptions).
   */
  gracePeriodSeconds?: number
}

/**
 * A Pod bound to the node, or a ConfigMap or Secret those pods use, as Kubernetes JSON; or the
 * node's own Node, cut to `metadata.name`, `metadata.uid`, the `bramble.io/cluster-cidr`
 * annotation and `spec` (namespace ''). That is how an agent learns its pod subnet:
 * `spec.podCIDR` / `spec.podCIDRs`, leased by the hub (src/hub/pod-cidr-allocator.ts), and the
 * cluster CIDR it came from (the annotation). It arrives with the pods, is kept in the agent's
 * replica (so it is known offline and after a reboot) and comes down again whenever those change.
 * Read it with `replica.node()`. Other nodes' subnets travel on the cluster mesh topic.
 * A Secret travels sealed to the node (src/api/sealed-secret.ts): only its identity in the clear.
 */
export type DesiredObject = KubeObject & { kind: 'Pod' | 'ConfigMap' | 'Secret' | 'Node' | 'PersistentVolume' }

/**
 * Desired state at `revision`. `full` replaces the node's replica wholesale; otherwise the
 * message holds what changed after `since` (upserts, then deletes).
 */
export interface DesiredMessage {
  revision: number
  since: number
  full: boolean
  upserts: DesiredObject[]
  deletes: ObjectRef[]
}

/**
 * `exec` and `port-forward` open a stream session (id = the session); `stream` carries the hub's
 * side of one: `{session, seq, channel, data}` (base64), `{session, seq, eof}`, `{session, seq,
 * resize: {width, height}}`, `{session, ack}` (bytes of the node's output passed on) or
 * `{session, close: true}`. See src/lib/stream-window.ts for ordering and the window.
 */
export const RPC_METHODS = ['logs', 'exec', 'port-forward', 'stream', 'image-load', 'image-save'] as const
export type RpcMethod = (typeof RPC_METHODS)[number]

/** A request to the node; the reply goes to `replyTopic` (an `up/rpc-reply` topic of the node). */
export interface RpcRequest {
  id: string
  replyTopic: string
  method: RpcMethod
  params: Record<string, unknown>
}

/** "I hold this revision; send what changed since." 0 means "nothing yet". */
export interface SyncMessage {
  revision: number
}

/** Sent once the desired state at `revision` is durable in the node's replica. */
export interface AckMessage {
  revision: number
}

/** Kept in memory at the hub. cpu is a fraction of all cores (0..1), memory in bytes in use. */
export interface HeartbeatMessage {
  seq: number
  uptimeMs: number
  cpu: number
  memory: number
  temperature?: number
  /** The running pods' usage, read from their containers' cgroups (absent from older agents). */
  pods?: PodUsage[]
  /** The node's wall clock as it sent this, ms since the epoch (also on pod-status and events): the hub learns the node's clock offset from it. */
  at?: number
}

/** One pod's usage, as `kubectl top pods` shows it (metrics.k8s.io PodMetrics). */
export interface PodUsage {
  namespace: string
  name: string
  containers: ContainerUsage[]
}

export interface ContainerUsage {
  name: string
  /** Cores in use over the last heartbeat interval (0.25 is 250m). */
  cpuCores: number
  /** Working set: memory in use less the page cache the kernel may take back, in bytes. */
  memoryBytes: number
}

/** The Node's status, as Kubernetes' NodeStatus. */
export interface NodeStatusMessage {
  status: Record<string, unknown>
  /**
   * The node's WireGuard public key and endpoint (`host:port`), when it runs the mesh; the hub
   * keeps them as Node annotations and publishes them on the cluster mesh topic. Never a private key.
   */
  wireguard?: { publicKey: string; endpoint?: string }
  /** The node's X25519 public key for Secrets in transit (src/api/sealed-secret.ts); the hub keeps it as a Node annotation. */
  secretsPublicKey?: string
  /** Labels the node reports of itself; the hub takes only the devices.bramble.dev/<class> ones (src/api/devices.ts). */
  labels?: Record<string, string>
}

export interface PodStatusMessage {
  namespace: string
  name: string
  uid: string
  status: Record<string, unknown>
  /** The node's wall clock as it sent this (see HeartbeatMessage.at). */
  at?: number
}

/** Kubernetes Event-shaped records (reason, message, type, involvedObject, ...). */
export interface EventsMessage {
  events: Array<Record<string, unknown>>
  /** The node's wall clock as it sent this (see HeartbeatMessage.at). */
  at?: number
}

/**
 * One reply, or one chunk of a streamed reply (`chunk` with `done: false` until the last). In a
 * stream session (exec, port-forward) `chunk` is base64 on `channel` (1 stdout, 2 stderr), every
 * message but an acknowledgement carries `seq`, and `ack` counts the hub's bytes passed on.
 */
export interface RpcReply {
  id: string
  ok: boolean
  result?: unknown
  error?: string
  chunk?: string
  done?: boolean
  seq?: number
  channel?: number
  ack?: number
}

/**
 * Retained; also the node's Last Will with `online: false`. `at` is ms since the epoch.
 * `agentStopped` marks the `online: false` an agent sends as it stops cleanly (a restart, an
 * upgrade): its pods keep running, so the hub does not take it for the node failing.
 */
export interface PresenceMessage {
  online: boolean
  at: number
  agentStopped?: boolean
}

export interface UpMessages {
  sync: SyncMessage
  ack: AckMessage
  heartbeat: HeartbeatMessage
  'node-status': NodeStatusMessage
  'pod-status': PodStatusMessage
  events: EventsMessage
  'rpc-reply': RpcReply
  presence: PresenceMessage
}

export interface DownMessages {
  desired: DesiredMessage
  rpc: RpcRequest
}

export type UpMessage = { [K in UpName]: { name: K; message: UpMessages[K] } }[UpName]
export type DownMessage = { [K in DownName]: { name: K; message: DownMessages[K] } }[DownName]

const KiB = 1024
const MiB = 1024 * KiB

/** Largest payload accepted per message kind, in bytes; anything larger is refused unread. */
export const MAX_PAYLOAD_BYTES: Readonly<Record<UpName | DownName, number>> = {
  sync: 1 * KiB,
  ack: 1 * KiB,
  // With every running pod's usage: about 100 bytes a container.
  heartbeat: 64 * KiB,
  presence: 1 * KiB,
  'node-status': 64 * KiB,
  'pod-status': 64 * KiB,
  events: 256 * KiB,
  'rpc-reply': 256 * KiB,
  rpc: 16 * KiB,
  desired: 1 * MiB,
}

/** How each kind travels: QoS 1 for state that must not be lost; presence is retained. */
export const DELIVERY: Readonly<Record<UpName | DownName, { qos: 0 | 1; retain: boolean }>> = {
  sync: { qos: 1, retain: false },
  ack: { qos: 1, retain: false },
  heartbeat: { qos: 0, retain: false },
  presence: { qos: 1, retain: true },
  'node-status': { qos: 1, retain: false },
  'pod-status': { qos: 1, retain: false },
  events: { qos: 1, retain: false },
  'rpc-reply': { qos: 1, retain: false },
  rpc: { qos: 1, retain: false },
  desired: { qos: 1, retain: false },
}

export function encodeMessage(message: unknown): Buffer {
  return Buffer.from(JSON.stringify(message))
}
