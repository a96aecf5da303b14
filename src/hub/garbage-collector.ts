// The garbage collector: objects whose owners (metadata.ownerReferences, matched by uid) are all
// gone are deleted, for every kind (Deployment → ReplicaSets → Pods, DaemonSet/Job → Pods,
// CronJob → Jobs), as Kubernetes' garbage collector does. It also finishes the deletions the
// registry only marks: Orphan (strip the ownerReferences to the owner from its dependents, then let
// it go) and Foreground (delete the dependents first, then the owner).
//
// Informers only say where to look: every decision re-reads the dependent and its owners from the
// store, so a cache that lags (or a hub that was down when an owner went) never deletes a
// dependent whose owner exists. Dependents whose owners vanished while the hub was down are found
// by the sweep at start.

import { kindByApiVersion, type KindInfo } from '../api/kinds.js'
import type { KubeObject, ObjectMeta, OwnerReference } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import type { Informer } from './informer.js'
import { FOREGROUND_FINALIZER, ORPHAN_FINALIZER, type PropagationPolicy, type Registry } from './registry.js'

const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export interface GarbageCollectorOptions {
  registry: Registry
  /** One per kind that may own or be owned; started before the collector. */
  informers: Informer[]
  clock: Clock
  logger: Logger
}

/** An object as the queue names it. */
interface Ref {
  info: KindInfo
  namespace: string
  name: string
}

type OwnerState = 'present' | 'absent' | 'deletingForeground'

const isNotFound = (err: unknown) => (err as { httpStatus?: number }).httpStatus === 404

function hasFinalizer(o: KubeObject, finalizer: string): boolean {
  return Boolean(o.metadata.deletionTimestamp) && (o.metadata.finalizers ?? []).includes(finalizer)
}

export class GarbageCollector {
  /** Queue keys: `dependent|Kind|ns|name` (should it go?) and `owner|Kind|ns|name` (finish its deletion). */
  private readonly queue: WorkQueue<string>
  private readonly refs = new Map<string, Ref>()
  /** Owner uid → queue keys of the objects that name it in ownerReferences. */
  private readonly dependents = new Map<string, Set<string>>()
  /** uid → `owner|...` key of every object the informers hold, to find deleting owners. */
  private readonly byUid = new Map<string, string>()
  private readonly log: Logger
  private started = false

  constructor(private readonly o: GarbageCollectorOptions) {
    this.log = o.logger.child({ component: 'garbage-collector' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'garbage collection failed; will retry') })
    for (const informer of o.informers) informer.onChange((type, object, previous) => this.observe(informer.info, type, object, previous))
  }

  /** Sweeps every object the informers hold once (owners gone while the hub was down), then follows changes. */
  start(): void {
    this.started = true
    for (const informer of this.o.informers) {
      for (const object of informer.list()) {
        if (object.metadata.ownerReferences?.length) this.queue.add(this.key('dependent', informer.info, object))
        if (object.metadata.deletionTimestamp) this.queue.add(this.key('owner', informer.info, object))
      }
    }
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** Resolves once nothing is queued or running (tests). */
  idle(): Promise<void> {
    return this.queue.idle()
  }

  private key(role: 'dependent' | 'owner', info: KindInfo, object: KubeObject): string {
    const key = `${role}|${info.kind}|${object.metadata.namespace ?? ''}|${object.metadata.name}`
    if (!this.refs.has(key)) this.refs.set(key, { info, namespace: object.metadata.namespace ?? '', name: object.metadata.name! })
    return key
  }

  private observe(info: KindInfo, type: string, object: KubeObject, previous: KubeObject | undefined): void {
    const uid = object.metadata.uid!
    const owned = Boolean(object.metadata.ownerReferences?.length || previous?.metadata.ownerReferences?.length)
    // Most changes are new versions of an object already known, and most objects own nothing and
    // are owned by nothing (bench/sched's pods): their keys are not built again for every change.
    if (type !== 'DELETED' && !owned && this.byUid.has(uid) && !object.metadata.deletionTimestamp) return
    const dependentKey = this.key('dependent', info, object)
    const ownerKey = this.key('owner', info, object)
    for (const ref of previous?.metadata.ownerReferences ?? []) this.dependents.get(ref.uid)?.delete(dependentKey)
    if (type === 'DELETED') {
      this.byUid.delete(uid)
      this.refs.delete(ownerKey)
      this.refs.delete(dependentKey)
      const orphans = this.dependents.get(uid) ?? []
      this.dependents.delete(uid)
      if (!this.started) return
      // Its dependents may be orphans now; owners waiting in Foreground may be done.
      for (const key of orphans) this.queue.add(key)
      for (const ref of object.metadata.ownerReferences ?? []) {
        const owner = this.byUid.get(ref.uid)
        if (owner) this.queue.add(owner)
      }
      return
    }
    this.byUid.set(uid, ownerKey)
    for (const ref of object.metadata.ownerReferences ?? []) {
      let set = this.dependents.get(ref.uid)
      if (!set) this.dependents.set(ref.uid, (set = new Set()))
      set.add(dependentKey)
    }
    if (!this.started) return
    if (object.metadata.deletionTimestamp) this.queue.add(ownerKey)
    // An owner not in any cache is looked up in the store; owners the caches hold are there.
    if ((object.metadata.ownerReferences ?? []).some((r) => !this.byUid.has(r.uid) || this.isDeletingForeground(r.uid))) this.queue.add(dependentKey)
  }

  private isDeletingForeground(uid: string): boolean {
    const key = this.byUid.get(uid)
    const ref = key ? this.refs.get(key) : undefined
    const informer = ref && this.o.informers.find((i) => i.info === ref.info)
    const object = ref && informer?.get(ref.namespace ? `${ref.namespace}/${ref.name}` : ref.name)
    return Boolean(object && hasFinalizer(object, FOREGROUND_FINALIZER))
  }

  private async reconcile(key: string): Promise<void> {
    const ref = this.refs.get(key)
    if (!ref) return
    const object = await this.o.registry.get(ref.info, ref.namespace, ref.name).catch((err) => {
      if (isNotFound(err)) return undefined
      throw err
    })
    if (!object) return
    if (key.startsWith('owner|')) return this.finishDeletion(ref, object)
    return this.collect(ref, object)
  }

  /** A dependent goes when none of its owners is left; references to owners that are gone are removed. */
  private async collect(ref: Ref, object: KubeObject): Promise<void> {
    const owners = object.metadata.ownerReferences ?? []
    if (owners.length === 0 || object.metadata.deletionTimestamp) return
    const states = await Promise.all(owners.map((owner) => this.ownerState(ref, owner)))
    if (states.includes('present')) {
      // Kept by another owner: references to owners gone or going are dropped, so none waits on it.
      const kept = owners.filter((_, i) => states[i] === 'present')
      if (kept.length === owners.length) return
      await this.o.registry.update(ref.info, ref.namespace, ref.name, { ...object, metadata: { ...object.metadata, ownerReferences: kept } }, WRITE)
      this.log.info({ kind: ref.info.kind, namespace: ref.namespace, name: ref.name }, 'removed references to owners that are gone')
      return
    }
    // Foreground: a dependent that owns others is itself deleted in the foreground.
    const policy: PropagationPolicy = states.includes('deletingForeground') && this.dependents.get(object.metadata.uid!)?.size ? 'Foreground' : 'Background'
    await this.o.registry.delete(ref.info, ref.namespace, ref.name, { dryRun: false, uid: object.metadata.uid, propagationPolicy: policy }).catch((err) => {
      if (!isNotFound(err)) throw err
    })
    this.log.info({ kind: ref.info.kind, namespace: ref.namespace, name: ref.name, owners: owners.map((o) => `${o.kind}/${o.name}`), policy }, 'deleted: its owners are gone')
  }

  /** Read from the store, never the cache. A kind Bramble does not serve counts as present: nothing to judge by. */
  private async ownerState(dependent: Ref, owner: OwnerReference): Promise<OwnerState> {
    const info = kindByApiVersion(owner.apiVersion, owner.kind)
    if (!info) return 'present'
    const found = await this.o.registry.get(info, info.namespaced ? dependent.namespace : '', owner.name).catch((err) => {
      if (isNotFound(err)) return undefined
      throw err
    })
    if (!found || found.metadata.uid !== owner.uid) return 'absent'
    return hasFinalizer(found, FOREGROUND_FINALIZER) ? 'deletingForeground' : 'present'
  }

  /** An owner marked for deletion: orphan or delete its dependents, then drop the finalizer (the registry then deletes it). */
  private async finishDeletion(ref: Ref, owner: KubeObject): Promise<void> {
    if (hasFinalizer(owner, ORPHAN_FINALIZER)) {
      for (const { info, object } of await this.liveDependents(ref, owner)) await this.orphan(info, object, owner.metadata.uid!)
      await this.removeFinalizer(ref, ORPHAN_FINALIZER)
      this.log.info({ kind: ref.info.kind, namespace: ref.namespace, name: ref.name }, 'deleted; its dependents are orphaned')
      return
    }
    if (hasFinalizer(owner, FOREGROUND_FINALIZER)) {
      const waiting = await this.liveDependents(ref, owner)
      for (const { info, object } of waiting) this.queue.add(this.key('dependent', info, object))
      // Done only when no dependent is left; each one's deletion queues this owner again.
      if (waiting.length === 0) await this.removeFinalizer(ref, FOREGROUND_FINALIZER)
    }
  }

  /** The objects naming the owner, read from the store (a cache could miss one just made). */
  private async liveDependents(ref: Ref, owner: KubeObject): Promise<Array<{ info: KindInfo; object: KubeObject }>> {
    const found: Array<{ info: KindInfo; object: KubeObject }> = []
    for (const { info } of this.o.informers) {
      if (ref.info.namespaced && !info.namespaced) continue
      const { items } = await this.o.registry.list(info, ref.info.namespaced ? ref.namespace : undefined)
      for (const object of items) if (object.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid)) found.push({ info, object })
    }
    return found
  }

  private async orphan(info: KindInfo, object: KubeObject, ownerUid: string): Promise<void> {
    const kept = (object.metadata.ownerReferences ?? []).filter((o) => o.uid !== ownerUid)
    const metadata: ObjectMeta = { ...object.metadata, ownerReferences: kept }
    if (kept.length === 0) delete metadata.ownerReferences
    // A conflict throws and the owner is tried again with fresh reads.
    await this.o.registry.update(info, object.metadata.namespace ?? '', object.metadata.name!, { ...object, metadata }, WRITE)
  }

  private async removeFinalizer(ref: Ref, finalizer: string): Promise<void> {
    const object = await this.o.registry.get(ref.info, ref.namespace, ref.name)
    const finalizers = (object.metadata.finalizers ?? []).filter((f) => f !== finalizer)
    const metadata: ObjectMeta = { ...object.metadata, finalizers }
    if (finalizers.length === 0) delete metadata.finalizers
    await this.o.registry.update(ref.info, ref.namespace, ref.name, { ...object, metadata }, WRITE)
  }
}
