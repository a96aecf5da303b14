// Everything nodes send up (`bramble/v1/nodes/+/up/+`), decoded and checked before it touches
// anything. The node named in the topic is trusted (the broker binds a node's credentials to its
// own prefix); what it claims beyond that is not: a pod status or an event about a pod bound to
// another node is refused. Garbage, oversized and wrong-typed payloads are logged (one line,
// rate-limited per node) and dropped, and the intake keeps serving every other node.
//
// Writes follow DESIGN.md's rule for hot data: heartbeats stay in memory (heartbeats.ts); the Node
// is written only when its status changes in meaning (conditions' statuses, capacity,
// allocatable, addresses, nodeInfo), a Pod's status only when it differs.

import { isDeepStrictEqual } from 'node:util'
import { DEVICE_RESOURCE_PREFIX, deviceClassOfResource } from '../api/devices.js'
import { KINDS } from '../api/kinds.js'
import { decodeUp } from '../api/protocol-decode.js'
import { ANNOTATION_SECRETS_PUBLIC_KEY } from '../api/sealed-secret.js'
import { parseTopic, type EventsMessage, type NodeStatusMessage, type PodStatusMessage, type PresenceMessage, type RpcReply, type UpName } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import { isTerminal } from '../sched/snapshot.js'
import type { Clock } from '../lib/clock.js'
import { CLOCK_SKEW_TOLERANCE_MS } from '../lib/tls-failure.js'
import type { Logger } from '../lib/logger.js'
import { RandomHex } from '../lib/random-hex.js'
import { TurnBudget } from '../lib/turn-budget.js'
import type { Heartbeats } from './heartbeats.js'
import type { Informer } from './informer.js'
import { mutateObject, WRITE } from './node-gateway-writes.js'
import { recordWireGuardReport } from './mesh-publisher.js'
import { describeSkew, NodeClocks, shiftNodeTimes } from './node-clocks.js'
import type { ReadyCondition } from './node-lifecycle.js'
import { rfc3339, type Registry } from './registry.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const POD = KINDS.find((k) => k.kind === 'Pod')!
const EVENT = KINDS.find((k) => k.kind === 'Event')!

/** Events taken from one message; the rest are dropped (a node cannot flood the store). */
const MAX_EVENTS_PER_MESSAGE = 64
/** Messages waiting to be written per node; beyond this a node is sending faster than it may. */
const MAX_PENDING_PER_NODE = 256
const WARNINGS_PER_NODE_PER_MINUTE = 10
/**
 * How long the intake's writes may hold the event loop in one turn. A rollout at 10,000 nodes sends
 * thousands of pod statuses in one batch; written in one go they held the hub's thread for 1-2 s,
 * and the heartbeats in the sockets behind them waited that long (bench/fleet's lag p99).
 */
const WRITE_MS_PER_TURN = 10
/** Writes under way at once over all nodes: they share the store's commits. */
const WRITES_IN_FLIGHT = 64
export const AGENT_COMPONENT = 'bramble-agent'

export interface NodeStatusIntakeOptions {
  registry: Registry
  pods: Informer
  nodes: Informer
  heartbeats: Heartbeats
  clock: Clock
  logger: Logger
  onSync(node: string, revision: number): void
  onAck(node: string, revision: number): void
  onRpcReply(node: string, reply: RpcReply): void
  /** Any valid message from the node (presence online:true included). */
  onAlive(node: string): void
  /** The node's Last Will: presence online:false (not an agent's clean goodbye, agentStopped). */
  onOffline(node: string): void
  /** Each heartbeat, after it is recorded. */
  onHeartbeat?(node: string): void
  /**
   * Told, for each heartbeat that carries its send time, how long it took from the node sending it
   * to the hub having recorded it, in seconds (by the node's clock against the hub's, so a node's
   * clock offset is in it; none where both keep NTP time or share a host). The /metrics histogram.
   */
  onHeartbeatLag?(seconds: number): void
}

export class NodeStatusIntake {
  private readonly log: Logger
  /** Per-node write chain: one node's writes happen in the order it sent them. */
  private readonly chains = new Map<string, { tail: Promise<void>; pending: number }>()
  private readonly warnings = new Map<string, { windowStart: number; count: number }>()
  private readonly reported = new Map<string, ReadyCondition>()
  /** Each node's clock against the hub's: the times it reports are moved by it. */
  private readonly clocks = new NodeClocks()
  private readonly eventSuffixes = new RandomHex(8)
  private readonly turns = new TurnBudget(WRITE_MS_PER_TURN, WRITES_IN_FLIGHT)

  constructor(private readonly o: NodeStatusIntakeOptions) {
    this.log = o.logger.child({ component: 'node-intake' })
  }

  /** The Bus handler for ALL_UP_FILTER. Never throws. */
  readonly handle = (topic: string, payload: Buffer): void => {
    const parsed = parseTopic(topic)
    if (!parsed || parsed.direction !== 'up') return this.refuse(undefined, { topic: topic.slice(0, 200) }, 'dropped a message on a topic that is not a protocol v1 up topic')
    const { node, name } = parsed
    const decoded = decodeUp(name, payload)
    if (!decoded.ok) return this.refuse(node, { kind: name, reason: decoded.reason }, 'dropped an invalid message from a node')
    if (!this.o.nodes.get(node)) return this.refuse(node, { kind: name }, 'dropped a message from a node that has no Node object (deleted?)')
    this.dispatch(node, name, decoded.message)
  }

  /** The Ready condition the node's agent last reported since the hub started. */
  reportedReady(node: string): ReadyCondition | undefined {
    return this.reported.get(node)
  }

  forget(node: string): void {
    this.reported.delete(node)
    this.warnings.delete(node)
    this.clocks.forget(node)
  }

  /** Resolves once every accepted write has been made (for tests and shutdown). */
  async idle(): Promise<void> {
    while ([...this.chains.values()].some((c) => c.pending > 0)) await Promise.all([...this.chains.values()].map((c) => c.tail))
  }

  private dispatch(node: string, name: UpName, message: unknown): void {
    const now = this.o.clock.monotonic()
    // A message held back by a lost link reads as a larger offset: its times then map to when it arrived, never later.
    const sentAt = (message as { at?: unknown }).at
    if (name !== 'presence' && typeof sentAt === 'number') this.observeClock(node, sentAt)
    if (name !== 'presence') {
      this.o.heartbeats.seen(node, now)
      this.o.onAlive(node)
    }
    switch (name) {
      case 'heartbeat': {
        this.o.heartbeats.record(node, message as Parameters<Heartbeats['record']>[1], now)
        if (typeof sentAt === 'number') this.o.onHeartbeatLag?.(Math.max(0, this.o.clock.now() - sentAt) / 1000)
        this.o.onHeartbeat?.(node)
        return
      }
      case 'sync':
        return this.o.onSync(node, (message as { revision: number }).revision)
      case 'ack':
        return this.o.onAck(node, (message as { revision: number }).revision)
      case 'rpc-reply':
        return this.o.onRpcReply(node, message as RpcReply)
      case 'presence': {
        const { online, agentStopped } = message as PresenceMessage
        if (online) {
          this.log.info({ node, online }, 'node is online')
          return this.o.onAlive(node)
        }
        // A clean stop of the agent is not the node failing (see node-lifecycle.ts): its silence decides.
        if (agentStopped) return void this.log.info({ node, online }, "node's agent stopped cleanly; its pods keep running and the node is judged by its silence")
        this.log.info({ node, online }, 'node went offline (Last Will)')
        return this.o.onOffline(node)
      }
      case 'node-status':
        return this.enqueue(node, () => this.nodeStatus(node, message as NodeStatusMessage))
      case 'pod-status':
        return this.enqueue(node, () => this.podStatus(node, message as PodStatusMessage))
      case 'events':
        return this.enqueue(node, () => this.events(node, message as EventsMessage))
    }
  }

  private enqueue(node: string, work: () => Promise<void>): void {
    let chain = this.chains.get(node)
    if (!chain) this.chains.set(node, (chain = { tail: Promise.resolve(), pending: 0 }))
    if (chain.pending >= MAX_PENDING_PER_NODE) return this.refuse(node, { pending: chain.pending }, 'dropped a message: the node sends faster than the hub writes')
    chain.pending++
    const c = chain
    c.tail = c.tail
      .then(() => this.turns.run(work))
      .catch((err) => this.log.warn({ node, err }, 'could not apply a message from a node'))
      .finally(() => {
        c.pending--
      })
  }

  private async nodeStatus(node: string, message: NodeStatusMessage): Promise<void> {
    const reported = message.status
    const ready = conditionsOf(reported).find((c) => c.type === 'Ready')
    if (ready && typeof ready.status === 'string') {
      this.reported.set(node, { type: 'Ready', status: ready.status, ...(typeof ready.reason === 'string' ? { reason: ready.reason } : {}), ...(typeof ready.message === 'string' ? { message: ready.message } : {}) })
    }
    const nowIso = rfc3339(this.o.clock.now())
    const written = await mutateObject(
      this.o.registry,
      NODE,
      '',
      node,
      (current) => {
        const before = (current.status ?? {}) as Record<string, unknown>
        if (isDeepStrictEqual(nodeStatusMeaning(before), nodeStatusMeaning(reported))) return undefined
        current.status = mergeNodeStatus(before, reported, nowIso)
        return current
      },
      'status',
    )
    if (written) {
      this.o.nodes.assume(written)
      this.log.info({ node, resourceVersion: written.metadata.resourceVersion }, 'node status changed')
    }
    if (message.labels !== undefined) await this.recordDeviceLabels(node, message.labels)
    // The agent's WireGuard public key and endpoint ride along; kept as Node annotations for the mesh.
    if (message.wireguard !== undefined) {
      const { problems } = await recordWireGuardReport(this.o.registry, node, message.wireguard, this.o.nodes.list())
      if (problems.length > 0) this.refuse(node, { problems }, 'refused a WireGuard report from a node')
    }
    // So does its public key for Secrets in transit (nodes joined before join carried it).
    if (message.secretsPublicKey !== undefined) await this.recordSecretsKey(node, message.secretsPublicKey)
  }

  /** The node's devices.bramble.dev/<class> labels as it reports them; it may set no other label on itself. */
  private async recordDeviceLabels(node: string, reported: Record<string, string>): Promise<void> {
    const wanted = deviceLabels(reported)
    const same = (labels: Record<string, string> | undefined) => isDeepStrictEqual(deviceLabels(labels ?? {}), wanted)
    if (same(this.o.nodes.get(node)?.metadata.labels)) return
    const written = await mutateObject(this.o.registry, NODE, '', node, (current) => {
      if (same(current.metadata.labels)) return undefined
      const kept = Object.fromEntries(Object.entries(current.metadata.labels ?? {}).filter(([k]) => !k.startsWith(DEVICE_RESOURCE_PREFIX)))
      current.metadata.labels = { ...kept, ...wanted }
      return current
    })
    if (written) {
      this.o.nodes.assume(written)
      this.log.info({ node, devices: Object.keys(wanted) }, "node's device labels changed")
    }
  }

  private async recordSecretsKey(node: string, publicKey: string): Promise<void> {
    if (this.o.nodes.get(node)?.metadata.annotations?.[ANNOTATION_SECRETS_PUBLIC_KEY] === publicKey) return
    const written = await mutateObject(this.o.registry, NODE, '', node, (current) => {
      if (current.metadata.annotations?.[ANNOTATION_SECRETS_PUBLIC_KEY] === publicKey) return undefined
      current.metadata.annotations = { ...current.metadata.annotations, [ANNOTATION_SECRETS_PUBLIC_KEY]: publicKey }
      return current
    })
    if (written) this.log.info({ node }, "recorded the node's public key for Secrets in transit")
  }

  private async podStatus(node: string, message: PodStatusMessage): Promise<void> {
    const key = `${message.namespace}/${message.name}`
    const pod = this.o.pods.get(key)
    if (!pod) return void this.log.debug({ node, pod: key }, 'status for a pod that no longer exists; dropped')
    if (pod.spec?.nodeName !== node) return this.refuse(node, { pod: key, boundTo: pod.spec?.nodeName ?? null }, 'refused a pod status for a pod not bound to this node')
    if (pod.metadata.uid !== message.uid) return void this.log.debug({ node, pod: key }, 'status for an earlier pod of the same name; dropped')
    await mutateObject(
      this.o.registry,
      POD,
      message.namespace,
      message.name,
      (current) => {
        if (current.spec?.nodeName !== node || current.metadata.uid !== message.uid) return undefined
        // As the Kubernetes API refuses it: a pod never leaves Succeeded or Failed.
        if (isTerminal(current) && message.status.phase !== current.status?.phase) return undefined
        const next = mergePodStatus((current.status ?? {}) as Record<string, unknown>, shiftNodeTimes(message.status, this.clocks.offsetMs(node)))
        if (isDeepStrictEqual(next, current.status)) return undefined
        current.status = next
        return current
      },
      'status',
    )
  }

  private async events(node: string, message: EventsMessage): Promise<void> {
    if (message.events.length > MAX_EVENTS_PER_MESSAGE) this.refuse(node, { events: message.events.length, kept: MAX_EVENTS_PER_MESSAGE }, 'dropped events beyond the per-message limit')
    const nowIso = rfc3339(this.o.clock.now())
    const offsetMs = this.clocks.offsetMs(node)
    for (const raw of message.events.slice(0, MAX_EVENTS_PER_MESSAGE)) {
      const e = shiftNodeTimes(raw, offsetMs)
      const involved = (typeof e.involvedObject === 'object' && e.involvedObject !== null ? e.involvedObject : {}) as Record<string, unknown>
      const kind = involved.kind
      const name = typeof involved.name === 'string' ? involved.name : ''
      let namespace = 'default'
      if (kind === 'Pod') {
        namespace = typeof involved.namespace === 'string' && involved.namespace ? involved.namespace : 'default'
        const pod = this.o.pods.get(`${namespace}/${name}`)
        if (!pod || pod.spec?.nodeName !== node) {
          this.refuse(node, { pod: `${namespace}/${name}` }, 'refused an event about a pod not bound to this node')
          continue
        }
      } else if (kind !== 'Node' || name !== node) {
        this.refuse(node, { kind: String(kind), name }, 'refused an event about an object that is not this node or its pods')
        continue
      }
      const str = (v: unknown, fallback = '') => (typeof v === 'string' ? v : fallback)
      const event: KubeObject = {
        apiVersion: 'v1',
        kind: 'Event',
        metadata: { name: `${name}.${this.eventSuffixes.next()}`, namespace },
        involvedObject: {
          kind,
          apiVersion: 'v1',
          name,
          ...(kind === 'Pod' ? { namespace } : {}),
          ...(typeof involved.uid === 'string' ? { uid: involved.uid } : {}),
          ...(typeof involved.fieldPath === 'string' ? { fieldPath: involved.fieldPath } : {}),
        },
        reason: str(e.reason).slice(0, 128),
        message: str(e.message).slice(0, 1024),
        type: e.type === 'Warning' ? 'Warning' : 'Normal',
        count: typeof e.count === 'number' && Number.isSafeInteger(e.count) && e.count > 0 ? e.count : 1,
        firstTimestamp: str(e.firstTimestamp, nowIso),
        lastTimestamp: str(e.lastTimestamp, nowIso),
        source: { component: AGENT_COMPONENT, host: node },
        reportingComponent: AGENT_COMPONENT,
        reportingInstance: node,
      } as KubeObject
      try {
        await this.o.registry.create(EVENT, namespace, event, WRITE)
      } catch (err) {
        this.refuse(node, { reason: event.reason, err: (err as Error).message }, 'could not record an event from a node')
      }
    }
  }

  /** A heartbeat's time against the hub's clock; a node minutes off is named in the log, once per change. */
  private observeClock(node: string, nodeNowMs: number): void {
    const offset = this.clocks.observe(node, nodeNowMs, this.o.clock.now())
    if (offset === undefined) return
    if (Math.abs(offset) >= CLOCK_SKEW_TOLERANCE_MS) {
      this.log.warn({ node, offsetMs: offset }, `the clock of node ${node} is ${describeSkew(offset)} the hub's; the times it reports are corrected by that, and liveness never depends on it; set its time (enable NTP)`)
    } else this.log.info({ node, offsetMs: offset }, 'node clock offset from the hub')
  }

  /** One log line per refusal, at most a few per node per minute at warn level. */
  private refuse(node: string | undefined, fields: Record<string, unknown>, message: string): void {
    const key = node ?? ''
    const now = this.o.clock.monotonic()
    let w = this.warnings.get(key)
    if (!w || now - w.windowStart > 60_000) this.warnings.set(key, (w = { windowStart: now, count: 0 }))
    w.count++
    if (w.count <= WARNINGS_PER_NODE_PER_MINUTE) this.log.warn({ node, ...fields }, message)
    else this.log.debug({ node, ...fields }, message)
  }
}

function conditionsOf(status: Record<string, unknown> | undefined): Array<Record<string, unknown>> {
  const c = status?.conditions
  return Array.isArray(c) ? c.filter((x): x is Record<string, unknown> => typeof x === 'object' && x !== null) : []
}

/** What a node status means, without the timestamps that change on every report. */
export function nodeStatusMeaning(status: Record<string, unknown>): unknown {
  const conditions = conditionsOf(status)
    .map((c) => ({ type: c.type, status: c.status, reason: c.reason }))
    .sort((a, b) => String(a.type).localeCompare(String(b.type)))
  return { conditions, capacity: status.capacity, allocatable: status.allocatable, addresses: status.addresses, nodeInfo: status.nodeInfo, images: status.images }
}

/** The node's report, with each condition's lastTransitionTime kept while its status holds. */
function mergeNodeStatus(before: Record<string, unknown>, reported: Record<string, unknown>, nowIso: string): Record<string, unknown> {
  const old = new Map(conditionsOf(before).map((c) => [c.type, c]))
  const conditions = conditionsOf(reported).map((c) => {
    const prev = old.get(c.type)
    return {
      ...c,
      lastHeartbeatTime: nowIso,
      // A transition is dated by the hub, which writes it as it learns of it: a node's clock may be off.
      lastTransitionTime: prev && prev.status === c.status ? (prev.lastTransitionTime ?? nowIso) : nowIso,
    }
  })
  return { ...reported, conditions }
}

/** The agent's pod status, keeping conditions only the hub sets (PodScheduled). */
function mergePodStatus(current: Record<string, unknown>, reported: Record<string, unknown>): Record<string, unknown> {
  const reportedTypes = new Set(conditionsOf(reported).map((c) => c.type))
  const kept = conditionsOf(current).filter((c) => !reportedTypes.has(c.type))
  const conditions = [...kept, ...conditionsOf(reported)]
  return conditions.length > 0 ? { ...reported, conditions } : { ...reported }
}

/** The known devices.bramble.dev/<class> labels among `labels`, each "true". */
function deviceLabels(labels: Record<string, string>): Record<string, string> {
  return Object.fromEntries(
    Object.keys(labels)
      .filter((k) => deviceClassOfResource(k) !== undefined && labels[k] === 'true')
      .sort()
      .map((k) => [k, 'true']),
  )
}
