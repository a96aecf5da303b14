// Desired state for each node: the Pods bound to it and the ConfigMaps and Secrets those pods use,
// and the PersistentVolumes pinned to it (the agent makes and removes their directories),
// sent down `down/desired` with the revision it was read at. Finished pods (Succeeded, Failed) stay
// until they are deleted, as in Kubernetes: the node keeps their exited containers for logs and
// learns from the phase that they must never run again.
//
// Level-triggered (STYLE.md §1): a change to a pod, configmap or secret only marks the nodes it
// concerns dirty in a WorkQueue keyed by node name; a worker reads the informers' caches, diffs
// against what the node was last sent and sends what differs. A change after a quiet spell goes
// at once; a short delay before the runs right behind it coalesces bursts (a Deployment of 50 pods
// is a message or two, not 50).
//
// How a reconnecting agent gets only what changed, with no history in the store: for every
// revision the hub sends a node it keeps a snapshot of that desired set (object key →
// resourceVersion), in memory, until a later revision is acknowledged. The agent's `up/sync
// {revision}` names what it holds; with that revision's snapshot the hub sends exactly the
// upserts (new or changed resourceVersion) and the deletes (keys no longer desired). Revision 0,
// or one the hub has no snapshot of (the hub restarted, or the agent is far behind), gets the
// whole set with `full: true`. Nothing of this is written to LMDB.
//
// Secrets go down sealed to the node (src/api/sealed-secret.ts), with the public key it sent at join
// or with its status (the Node annotation bramble.io/secrets-public-key): the broker never sees a
// value. A node whose key the hub does not know gets no Secrets at all, never plaintext; its pods
// that use them wait, and the hub logs why. A new key sends every Secret again, sealed to it.
//
// Before a node has sent `up/sync` since the hub started, the hub does not know what it holds and
// sends it nothing; the agent syncs on every connect. A node that heartbeats without having synced
// (its session on a shared broker outlived the hub that led before: highly available hubs) gets
// the whole set.

import { isDeepStrictEqual } from 'node:util'
import { DELIVERY, MAX_PAYLOAD_BYTES, downTopic, encodeMessage, type DesiredMessage, type DesiredObject, type ObjectRef } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import { ANNOTATION_SECRETS_PUBLIC_KEY, sealSecret } from '../api/sealed-secret.js'
import { desiredKey, diff, ownNode, parseKey, referencedObjects, sameSnapshot, secretsKeyOf, versionOf, type DesiredKey, type Snapshot } from './desired-objects.js'
import { objectKey, type Informer } from './informer.js'
import { volumeNode } from './volume-binder.js'

export const DEFAULT_COALESCE_MS = 50
/** Unacknowledged snapshots kept per node; an agent further behind than this gets a full set. */
const SNAPSHOTS_KEPT = 16

export interface DesiredStateOptions {
  bus: Bus
  pods: Informer
  configMaps: Informer
  secrets: Informer
  /** When given, each node's own Node (name, uid and spec: its pod subnet) goes down with its pods. */
  nodes?: Informer
  /** When given, the PersistentVolumes whose node affinity names a node go down to it. */
  persistentVolumes?: Informer
  clock: Clock
  logger: Logger
  /** Delay before a changed node is looked at, so bursts go out as one message. */
  coalesceMs?: number
}

interface NodeSession {
  /** The node said what it holds since the hub started: live changes may be pushed. */
  synced: boolean
  /** The revision the node asked to be brought up from; answered by the next run. */
  syncRequest?: number
  /** The last revision sent and its content. */
  sent?: { revision: number; keys: Snapshot }
  /** Snapshots of revisions sent (acknowledged or not), by revision. */
  snapshots: Map<number, Snapshot>
  acked?: number
  /** ConfigMaps and Secrets the node's pods referenced at the last run. */
  refs: Set<DesiredKey>
  /** Secrets were withheld for want of the node's public key, and the hub said so. */
  withheldLogged?: boolean
  /** When (monotonic ms) a live change was last looked at for this node: a stepped wall clock must not hold or hurry it. */
  lastRunAt?: number
}

export class DesiredState {
  private readonly queue: WorkQueue<string>
  private readonly sessions = new Map<string, NodeSession>()
  private readonly podsByNode = new Map<string, Set<string>>()
  /** ConfigMap/Secret key → nodes whose pods reference it (present or not). */
  private readonly users = new Map<DesiredKey, Set<string>>()
  /** The highest store revision the caches have shown: what a desired set is "read at". */
  private maxSeen = 0
  /** Deleted pods whose deletion named a grace period (an eviction's), until their node is sent the delete. */
  private readonly deletionGrace = new Map<DesiredKey, { node: string; uid: string; seconds: number }>()
  private readonly log: Logger
  private readonly coalesceMs: number

  constructor(private readonly o: DesiredStateOptions) {
    this.log = o.logger.child({ component: 'desired-state' })
    this.coalesceMs = o.coalesceMs ?? DEFAULT_COALESCE_MS
    this.queue = new WorkQueue<string>({ clock: o.clock, workers: 4, onError: (node, err) => this.log.warn({ node, err }, 'sending desired state failed; will retry') })
    o.pods.onChange((type, pod, previous) => {
      this.observe(pod)
      const key = objectKey(pod)
      const before = previous?.spec?.nodeName as string | undefined
      const now = type === 'DELETED' ? undefined : (pod.spec?.nodeName as string | undefined)
      if (before && before !== now) this.podsByNode.get(before)?.delete(key)
      const grace = pod.metadata.deletionGracePeriodSeconds
      if (type === 'DELETED' && before && typeof grace === 'number') {
        this.deletionGrace.set(desiredKey('Pod', pod.metadata.namespace ?? '', pod.metadata.name!), { node: before, uid: pod.metadata.uid!, seconds: grace })
      }
      if (now) {
        let set = this.podsByNode.get(now)
        if (!set) this.podsByNode.set(now, (set = new Set()))
        set.add(key)
      }
      // A status the node itself reported need not echo back down; the next message carries it.
      if (type === 'MODIFIED' && previous && onlyStatusChanged(previous, pod)) return
      for (const node of new Set([before, now, pod.spec?.nodeName as string | undefined])) if (node) this.markDirty(node)
    })
    const onConfig = (kind: 'ConfigMap' | 'Secret') => (_type: string, obj: KubeObject) => {
      this.observe(obj)
      for (const node of this.users.get(desiredKey(kind, obj.metadata.namespace ?? '', obj.metadata.name!)) ?? []) this.markDirty(node)
    }
    o.configMaps.onChange(onConfig('ConfigMap'))
    o.persistentVolumes?.onChange((_type, pv, previous) => {
      this.observe(pv)
      for (const node of new Set([volumeNode(pv), previous && volumeNode(previous)])) if (node) this.markDirty(node)
    })
    o.secrets.onChange(onConfig('Secret'))
    // Status comes from the node itself; only what ownNode() sends (a pod subnet leased) concerns it.
    // So does its public key for Secrets: with a new one, every Secret goes down again sealed to it.
    o.nodes?.onChange((type, node, previous) => {
      if (type === 'DELETED') return
      if (!previous || versionOf(ownNode(node)) !== versionOf(ownNode(previous)) || secretsKeyOf(node) !== secretsKeyOf(previous)) this.markDirty(node.metadata.name!)
    })
  }

  start(): void {
    this.queue.start((node) => this.reconcile(node))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** `up/sync`: the node holds `revision` (0: nothing) and wants what changed since. */
  onSync(node: string, revision: number): void {
    const s = this.session(node)
    s.syncRequest = revision
    this.queue.add(node)
  }

  /**
   * A heartbeat from the node. One that has not synced since this hub started, and heartbeats all
   * the same, will not sync: it kept its broker session across a change of leading hub.
   */
  onHeartbeat(node: string): void {
    if (!this.sessions.has(node)) this.onSync(node, 0)
  }

  /** `up/ack`: the node's replica durably holds `revision`. */
  onAck(node: string, revision: number): void {
    const s = this.sessions.get(node)
    if (!s || !s.snapshots.has(revision)) {
      this.log.debug({ node, revision }, 'acknowledgement of a revision this hub did not send; ignored')
      return
    }
    s.acked = Math.max(s.acked ?? 0, revision)
    for (const r of s.snapshots.keys()) if (r < s.acked) s.snapshots.delete(r)
  }

  /** A deleted pod's ref with the uid and grace period its deletion asked for, if it asked for one. */
  private withDeletionGrace(ref: ObjectRef): ObjectRef {
    const entry = ref.kind === 'Pod' ? this.deletionGrace.get(desiredKey('Pod', ref.namespace, ref.name)) : undefined
    return entry ? { ...ref, uid: entry.uid, gracePeriodSeconds: entry.seconds } : ref
  }

  /** The node is gone (deleted): forget everything about it. */
  forget(node: string): void {
    const s = this.sessions.get(node)
    if (s) for (const ref of s.refs) this.users.get(ref)?.delete(node)
    this.sessions.delete(node)
    for (const [key, entry] of this.deletionGrace) if (entry.node === node) this.deletionGrace.delete(key)
  }

  /** The revision a node last acknowledged, if any since the hub started. */
  ackedRevision(node: string): number | undefined {
    return this.sessions.get(node)?.acked
  }

  /** Resolves once no node is queued or being sent to (delayed ones aside). */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  private observe(obj: KubeObject): void {
    const rv = Number(obj.metadata.resourceVersion)
    if (Number.isSafeInteger(rv) && rv > this.maxSeen) this.maxSeen = rv
  }

  private markDirty(node: string): void {
    const s = this.sessions.get(node)
    if (!s?.synced) return
    // A change after a quiet spell goes at once (one pod: no wait); those right behind it are
    // gathered into the next message.
    if (this.o.clock.monotonic() - (s.lastRunAt ?? -Infinity) >= this.coalesceMs) this.queue.add(node)
    else this.queue.addAfter(node, this.coalesceMs)
  }

  private session(node: string): NodeSession {
    let s = this.sessions.get(node)
    if (!s) this.sessions.set(node, (s = { synced: false, snapshots: new Map(), refs: new Set() }))
    return s
  }

  /**
   * What the node should hold now, ConfigMaps and Secrets before the pods that use them; Secrets
   * in the clear here, sealed to `sealTo` as they go out, and none without it.
   */
  private desiredFor(node: string): { objects: Map<DesiredKey, DesiredObject>; refs: Set<DesiredKey>; sealTo: string | undefined; withheld: string[] } {
    const pods: Array<[DesiredKey, DesiredObject]> = []
    const refs = new Set<DesiredKey>()
    for (const key of this.podsByNode.get(node) ?? []) {
      const pod = this.o.pods.get(key)
      if (!pod || pod.spec?.nodeName !== node) continue
      pods.push([desiredKey('Pod', pod.metadata.namespace!, pod.metadata.name!), pod as DesiredObject])
      // A finished pod runs nothing more: its ConfigMaps and Secrets need not be on the node.
      if (!isTerminal(pod)) for (const ref of referencedObjects(pod)) refs.add(ref)
    }
    const objects = new Map<DesiredKey, DesiredObject>()
    const self = this.o.nodes?.get(node)
    const sealTo = self ? secretsKeyOf(self) : undefined
    const withheld: string[] = []
    for (const ref of [...refs].sort()) {
      const { kind, namespace, name } = parseKey(ref)
      const obj = (kind === 'ConfigMap' ? this.o.configMaps : this.o.secrets).get(`${namespace}/${name}`)
      if (!obj) continue
      if (kind === 'Secret' && !sealTo) withheld.push(`${namespace}/${name}`)
      else objects.set(ref, obj as DesiredObject)
    }
    // Cluster-scoped, like the Node: namespace '' names it in the node's replica and in deletes.
    for (const pv of this.o.persistentVolumes?.list() ?? [])
      if (volumeNode(pv) === node) objects.set(desiredKey('PersistentVolume', '', pv.metadata.name!), { ...pv, metadata: { ...pv.metadata, namespace: '' } } as DesiredObject)
    for (const [key, pod] of pods.sort(([a], [b]) => (a < b ? -1 : 1))) objects.set(key, pod)
    if (self) objects.set(desiredKey('Node', '', node), ownNode(self))
    return { objects, refs, sealTo, withheld }
  }

  private async reconcile(node: string): Promise<void> {
    const s = this.sessions.get(node)
    if (!s) return
    s.lastRunAt = this.o.clock.monotonic()
    const { objects, refs, sealTo, withheld } = this.desiredFor(node)
    this.indexRefs(node, s, refs)
    this.logWithheld(node, s, withheld)
    // A Secret's version names the key it was sealed to: a node with a new key gets it again.
    const now: Snapshot = new Map([...objects].map(([k, o]) => [k, o.kind === 'Secret' ? `${versionOf(o)}@${sealTo}` : versionOf(o)]))

    let message: DesiredMessage
    if (s.syncRequest !== undefined) {
      const held = s.syncRequest
      s.syncRequest = undefined
      s.synced = true
      const base = held === 0 ? undefined : s.snapshots.get(held)
      const revision = this.revisionFor(s, now, held)
      message = base
        ? { revision, since: held, full: false, ...diff(base, now, objects) }
        : { revision, since: 0, full: true, upserts: [...objects.values()], deletes: [] }
    } else {
      if (!s.synced || !s.sent) return
      const changes = diff(s.sent.keys, now, objects)
      if (changes.upserts.length === 0 && changes.deletes.length === 0) return
      message = { revision: this.revisionFor(s, now, s.sent.revision), since: s.sent.revision, full: false, ...changes }
    }

    message.upserts = message.upserts.map((o) => (o.kind === 'Secret' ? (sealSecret(o, node, sealTo!) as DesiredObject) : o))
    message.deletes = message.deletes.map((ref) => this.withDeletionGrace(ref))
    for (const [key, entry] of this.deletionGrace) if (entry.node === node) this.deletionGrace.delete(key)
    const payload = encodeMessage(message)
    if (payload.length > MAX_PAYLOAD_BYTES.desired) {
      this.log.error({ node, bytes: payload.length, limit: MAX_PAYLOAD_BYTES.desired, objects: objects.size }, 'desired state for the node is larger than one message may be; not sent')
      return
    }
    s.sent = { revision: message.revision, keys: now }
    s.snapshots.set(message.revision, now)
    this.trimSnapshots(s)
    this.log.debug({ node, revision: message.revision, since: message.since, full: message.full, upserts: message.upserts.length, deletes: message.deletes.length }, 'sending desired state')
    await this.o.bus.publish(downTopic(node, 'desired'), payload, DELIVERY.desired)
  }

  /**
   * The revision a message carries: the store revision the caches were read at, strictly above the
   * last one sent when the content differs from it, and never below what the node holds.
   */
  private revisionFor(s: NodeSession, now: Snapshot, held: number): number {
    const last = s.sent?.revision ?? 0
    if (s.sent && sameSnapshot(s.sent.keys, now) && last >= held) return last
    return Math.max(this.maxSeen, last + 1, held)
  }

  /** Once per node until its key is known: which Secrets it is not sent, and why. */
  private logWithheld(node: string, s: NodeSession, withheld: string[]): void {
    if (withheld.length === 0) {
      s.withheldLogged = false
      return
    }
    if (s.withheldLogged) return
    s.withheldLogged = true
    this.log.warn(
      { node, secrets: withheld.slice(0, 20) },
      `the hub does not know node ${node}'s public key for Secrets in transit (annotation ${ANNOTATION_SECRETS_PUBLIC_KEY}); its Secrets are withheld, never sent in the clear, and pods that use them wait until the agent reports its key`,
    )
  }

  private trimSnapshots(s: NodeSession): void {
    for (const r of [...s.snapshots.keys()].sort((a, b) => a - b)) {
      if (s.snapshots.size <= SNAPSHOTS_KEPT) break
      if (r !== s.acked && r !== s.sent?.revision) s.snapshots.delete(r)
    }
  }

  private indexRefs(node: string, s: NodeSession, refs: Set<DesiredKey>): void {
    for (const old of s.refs) if (!refs.has(old)) this.users.get(old)?.delete(node)
    for (const ref of refs) {
      let set = this.users.get(ref)
      if (!set) this.users.set(ref, (set = new Set()))
      set.add(node)
    }
    s.refs = refs
  }
}

/** True for a status the node itself reported; a pod turning finished goes down (its phase is final). */
function onlyStatusChanged(before: KubeObject, after: KubeObject): boolean {
  if (isTerminal(before) !== isTerminal(after)) return false
  const { resourceVersion: _a, ...metaBefore } = before.metadata
  const { resourceVersion: _b, ...metaAfter } = after.metadata
  return isDeepStrictEqual(before.spec, after.spec) && isDeepStrictEqual(metaBefore, metaAfter)
}
