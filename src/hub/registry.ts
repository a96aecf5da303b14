// The resource registry: Kubernetes' rules for create, update, patch and delete of every kind
// (defaults, validation, generation, subresources, namespace cascade) on top of the Store port.
// The HTTP API calls it, and so will the hub's controllers, so every writer obeys the same rules.

import { isDeepStrictEqual } from 'node:util'
import { withClaimProtection } from '../api/claims.js'
import { applyDefaults } from '../api/defaults.js'
import { DEFAULT_TOLERATION_SECONDS, withDefaultTolerations } from '../api/default-tolerations.js'
import { withGeneratedJobSelector } from '../api/job-selector.js'
import { KINDS, type KindInfo } from '../api/kinds.js'
import { applyPatch } from '../api/patch.js'
import { validateObject, validateUpdate } from '../api/validate.js'
import type { FieldError, KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { ApiError, alreadyExists, badRequest, conflict, forbidden, gone, invalid, notFound, patchFailed } from './api-errors.js'
import { StoreCompactedError, StoreConflictError, StoreExistsError, StoreNotFoundError } from './errors.js'
import { boundPod, type BindingRequest } from './pod-binding.js'
import { checkEnvelope, fieldWarnings, initialStatus, randomSuffix } from './registry-intake.js'
import { ServiceAllocations } from './service-allocations.js'
import { resourceOf, type ObjectKey, type Store, type StoreEvent, type Watch, type WatchOptions } from './store.js'

export type FieldValidation = 'Strict' | 'Warn' | 'Ignore'

export interface WriteContext {
  dryRun: boolean
  fieldValidation: FieldValidation
  /**
   * false: the caller discards Warning texts (the hub's own writers), so they are not worked out.
   * Validation is the same either way, and Strict still refuses unknown fields.
   */
  warnings?: boolean
}

/** How a delete treats the objects the deleted one owns (DeleteOptions.propagationPolicy). */
export type PropagationPolicy = 'Orphan' | 'Background' | 'Foreground'
export const PROPAGATION_POLICIES: readonly PropagationPolicy[] = ['Orphan', 'Background', 'Foreground']

/** Finalizers the garbage collector acts on: an owner deleted with Orphan or Foreground carries one until it is done. */
export const ORPHAN_FINALIZER = 'orphan'
export const FOREGROUND_FINALIZER = 'foregroundDeletion'

export interface DeleteOptions {
  dryRun: boolean
  resourceVersion?: string
  uid?: string
  /** Background (the default) deletes now and lets the garbage collector take the dependents. */
  propagationPolicy?: PropagationPolicy
  /** For a pod on a node: the seconds its containers get to stop, instead of its terminationGracePeriodSeconds. */
  gracePeriodSeconds?: number
}

export interface RegistryOptions {
  /** Seconds of the not-ready and unreachable tolerations new pods get (DefaultTolerationSeconds admission). */
  defaultTolerationSeconds?: number
  /** The range Services' cluster IPs are leased from (--service-cidr, default 10.43.0.0/16). */
  serviceCidr?: string
}

export interface WriteResult {
  object: KubeObject
  warnings: string[]
  /** False when an update changed nothing and so wrote nothing. */
  changed: boolean
}

/** Namespaces Kubernetes refuses to delete. */
const PROTECTED_NAMESPACES = new Set(['default', 'kube-system', 'kube-public'])
const NAMESPACE_KIND = KINDS.find((k) => k.kind === 'Namespace')!
/** How often a patch is retried when a concurrent writer wins the race, as the API server does. */
const PATCH_ATTEMPTS = 5

export function keyOf(info: KindInfo, namespace: string, name: string): ObjectKey {
  return { resource: resourceOf(info.group, info.plural), namespace: info.namespaced ? namespace : '', name }
}

export class Registry {
  private readonly defaultTolerationSeconds: number
  /** Cluster IP and node port leases of Services. */
  readonly serviceAllocations: ServiceAllocations

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logger: Logger,
    options: RegistryOptions = {},
  ) {
    this.defaultTolerationSeconds = options.defaultTolerationSeconds ?? DEFAULT_TOLERATION_SECONDS
    this.serviceAllocations = new ServiceAllocations(store, logger, options.serviceCidr)
  }

  async get(info: KindInfo, namespace: string, name: string): Promise<KubeObject> {
    const object = await this.store.get(keyOf(info, namespace, name))
    if (!object) throw notFound(info.group, info.plural, name)
    return object
  }

  async list(info: KindInfo, namespace: string | undefined): Promise<{ items: KubeObject[]; revision: number }> {
    return this.store.list({ resource: resourceOf(info.group, info.plural), namespace: info.namespaced ? namespace : undefined })
  }

  /** Streams changes after `fromRevision`; throws a 410 ApiError when that revision is compacted. */
  watch(info: KindInfo, namespace: string | undefined, fromRevision: number, onEvent: (event: StoreEvent) => void, options?: WatchOptions): Watch {
    try {
      return this.store.watch({ resource: resourceOf(info.group, info.plural), namespace: info.namespaced ? namespace : undefined }, fromRevision, onEvent, options)
    } catch (err) {
      if (err instanceof StoreCompactedError) throw gone(err.message)
      throw err
    }
  }

  async create(info: KindInfo, namespace: string, body: unknown, ctx: WriteContext): Promise<WriteResult> {
    const incoming = checkEnvelope(info, body, namespace)
    const meta = incoming.metadata
    if (!meta.name && meta.generateName) meta.name = `${meta.generateName}${randomSuffix()}`
    const warnings = fieldWarnings(info, incoming, ctx, undefined)
    if (info.namespaced) await this.requireNamespace(namespace)

    delete meta.resourceVersion
    delete meta.uid
    delete meta.creationTimestamp
    delete meta.deletionTimestamp
    delete meta.deletionGracePeriodSeconds
    if (info.hasGeneration) meta.generation = 1
    else delete meta.generation
    let object = applyDefaults(incoming)
    if (info.kind === 'Pod') object = withDefaultTolerations(object, this.defaultTolerationSeconds)
    if (info.kind === 'PersistentVolumeClaim') object = withClaimProtection(object)
    // A Service's address leases name its uid, so it is chosen here too.
    if (info.kind === 'Service') object.metadata.uid = crypto.randomUUID()
    if (info.kind === 'Job') {
      // The uid is chosen here (the store keeps it) because a Job's generated selector names it.
      object.metadata.uid = crypto.randomUUID()
      object = withGeneratedJobSelector(object, object.metadata.uid)
    }
    object.status = initialStatus(info, incoming)
    if (object.status === undefined) delete object.status

    const errors = validateObject(object).errors
    if (errors.length > 0) throw invalid(info.group, info.kind, meta.name ?? '', errors)
    if (info.kind === 'Service') {
      object = await this.serviceAllocations.allocate(object, ctx.dryRun)
      if (!ctx.dryRun) return this.createService(info, namespace, object, warnings)
    }
    if (ctx.dryRun) return { object: { ...object, metadata: { ...object.metadata, uid: object.metadata.uid ?? crypto.randomUUID(), creationTimestamp: rfc3339(this.clock.now()) } }, warnings, changed: true }
    try {
      return { object: await this.store.create(keyOf(info, namespace, meta.name!), object), warnings, changed: true }
    } catch (err) {
      if (err instanceof StoreExistsError) throw alreadyExists(info.group, info.plural, meta.name!)
      throw err
    }
  }

  /** Stores a new Service whose addresses are leased; a failed write gives them back. */
  private async createService(info: KindInfo, namespace: string, object: KubeObject, warnings: string[]): Promise<WriteResult> {
    try {
      return { object: await this.store.create(keyOf(info, namespace, object.metadata.name!), object), warnings, changed: true }
    } catch (err) {
      await this.serviceAllocations.release(object)
      if (err instanceof StoreExistsError) throw alreadyExists(info.group, info.plural, object.metadata.name!)
      throw err
    }
  }

  /** Replaces an object (PUT). `subresource: 'status'` changes only status; otherwise status is kept. */
  async update(info: KindInfo, namespace: string, name: string, body: unknown, ctx: WriteContext, subresource?: 'status'): Promise<WriteResult> {
    const incoming = checkEnvelope(info, body, namespace)
    if (incoming.metadata.name !== undefined && incoming.metadata.name !== name) {
      throw badRequest(`the name of the object (${incoming.metadata.name}) does not match the name on the URL (${name})`)
    }
    incoming.metadata.name = name
    const old = await this.get(info, namespace, name)
    const warnings = fieldWarnings(info, incoming, ctx, undefined)
    return this.writeUpdate(info, old, incoming, ctx, warnings, incoming.metadata.resourceVersion || undefined, subresource)
  }

  /** Applies a merge, JSON or strategic merge patch, retrying when a concurrent writer got there first. */
  async patch(info: KindInfo, namespace: string, name: string, patch: Buffer, contentType: string, ctx: WriteContext, subresource?: 'status'): Promise<WriteResult> {
    for (let attempt = 1; ; attempt++) {
      const old = await this.get(info, namespace, name)
      let patched: KubeObject
      try {
        patched = applyPatch(structuredClone(old), patch, contentType)
      } catch (err) {
        throw patchFailed(err, info.group, info.kind, name)
      }
      const incoming = checkEnvelope(info, patched, namespace)
      if (incoming.metadata.name !== name) throw badRequest(`the patch may not change metadata.name (${name} → ${incoming.metadata.name})`)
      const requested = patchedResourceVersion(old, incoming)
      const warnings = fieldWarnings(info, incoming, ctx, old)
      try {
        return await this.writeUpdate(info, old, incoming, ctx, warnings, requested ?? old.metadata.resourceVersion, subresource)
      } catch (err) {
        // A conflict on the version we read ourselves means someone else wrote in between: try again.
        if (requested === undefined && attempt < PATCH_ATTEMPTS && err instanceof ApiError && err.reason === 'Conflict') continue
        throw err
      }
    }
  }

  /**
   * Stores an object the hub built itself and knows to be valid (an Event its recorder made),
   * without the checks a request body needs, so that a controller's bookkeeping costs one write.
   * Never reachable from the API; the recorder's tests hold its events to validateObject.
   */
  async createOwn(info: KindInfo, namespace: string, object: KubeObject): Promise<KubeObject> {
    try {
      return await this.store.create(keyOf(info, namespace, object.metadata.name!), object)
    } catch (err) {
      if (err instanceof StoreExistsError) throw alreadyExists(info.group, info.plural, object.metadata.name!)
      throw err
    }
  }

  /**
   * Binds a pending pod to a node (the pods/binding subresource, pod-binding.ts): one narrow write
   * of spec.nodeName and the PodScheduled condition, retried when another writer got there first.
   * `read`: the pod as the caller last saw it (an informer's copy), tried first instead of a read;
   * if it is not the stored version the write conflicts and the pod is read again.
   */
  async bind(namespace: string, name: string, request: BindingRequest, dryRun: boolean, read?: KubeObject): Promise<KubeObject> {
    const pod = KINDS.find((k) => k.kind === 'Pod')!
    for (let attempt = 1; ; attempt++) {
      const old = attempt === 1 && read ? read : await this.get(pod, namespace, name)
      const next = boundPod(old, request, rfc3339(this.clock.now()))
      if (dryRun) return next
      try {
        return await this.store.update(keyOf(pod, namespace, name), next, { expectedResourceVersion: old.metadata.resourceVersion })
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= PATCH_ATTEMPTS) throw this.translate(pod, name, err)
      }
    }
  }

  /**
   * Deletes an object. Background deletes it now; Orphan and Foreground only mark it
   * (deletionTimestamp and a finalizer) and the garbage collector finishes: it strips the
   * ownerReferences of the dependents (Orphan) or deletes them first (Foreground), then removes
   * its finalizer, and the object goes. An object already being deleted is returned as it is.
   */
  async delete(info: KindInfo, namespace: string, name: string, options: DeleteOptions): Promise<KubeObject> {
    if (info === NAMESPACE_KIND && PROTECTED_NAMESPACES.has(name)) throw forbidden(`namespaces "${name}" is forbidden: this namespace may not be deleted`)
    const old = await this.get(info, namespace, name)
    if (options.uid && old.metadata.uid !== options.uid) throw conflict(info.group, info.plural, name)
    if (options.dryRun || old.metadata.deletionTimestamp) return old
    if (info === NAMESPACE_KIND) await this.deleteNamespaceContents(name)
    else if (options.propagationPolicy === 'Orphan' || options.propagationPolicy === 'Foreground') {
      return this.markForDeletion(info, namespace, name, old, options.propagationPolicy === 'Orphan' ? ORPHAN_FINALIZER : FOREGROUND_FINALIZER, options.resourceVersion)
    } else if (info.kind !== 'Pod' && (old.metadata.finalizers ?? []).length > 0) {
      // As in Kubernetes, an object with finalizers stays, Terminating, until they are all removed.
      // (Not a Pod: its node stops it as it goes, and has no notion of one that stays.)
      return this.markForDeletion(info, namespace, name, old, undefined, options.resourceVersion)
    }
    let current = old
    for (let attempt = 1; ; attempt++) {
      try {
        const expectedResourceVersion = await this.markGracePeriod(info, current, options)
        return await this.released(await this.store.delete(keyOf(info, namespace, name), { expectedResourceVersion }))
      } catch (err) {
        // A write between marking and deleting (a node's status report) is raced again, as patches are.
        const retry = err instanceof StoreConflictError && options.gracePeriodSeconds !== undefined && options.resourceVersion === undefined && attempt < PATCH_ATTEMPTS
        if (!retry) throw this.translate(info, name, err)
      }
      current = await this.get(info, namespace, name)
      if (options.uid && current.metadata.uid !== options.uid) throw conflict(info.group, info.plural, name)
    }
  }

  /**
   * A pod on a node deleted with a grace period of its own gets it written as
   * metadata.deletionGracePeriodSeconds just before it goes: the deletion event carries it to the
   * node's delete message (desired-state.ts), and the agent stops the containers within it. Returns
   * the resourceVersion the delete must then expect.
   */
  private async markGracePeriod(info: KindInfo, old: KubeObject, options: DeleteOptions): Promise<string | undefined> {
    if (info.kind !== 'Pod' || options.gracePeriodSeconds === undefined || !old.spec?.nodeName) return options.resourceVersion
    const marked = structuredClone(old)
    marked.metadata.deletionGracePeriodSeconds = options.gracePeriodSeconds
    const written = await this.store.update(keyOf(info, old.metadata.namespace ?? '', old.metadata.name!), marked, { expectedResourceVersion: options.resourceVersion ?? old.metadata.resourceVersion })
    return written.metadata.resourceVersion
  }

  /** Sets deletionTimestamp and the finalizer (if one), retrying when a controller wrote in between (unless the caller gave a resourceVersion). */
  private async markForDeletion(info: KindInfo, namespace: string, name: string, read: KubeObject, finalizer: string | undefined, resourceVersion: string | undefined): Promise<KubeObject> {
    let old = read
    for (let attempt = 1; ; attempt++) {
      const marked = structuredClone(old)
      marked.metadata.deletionTimestamp = rfc3339(this.clock.now())
      marked.metadata.deletionGracePeriodSeconds = 0
      if (finalizer) marked.metadata.finalizers = [...new Set([...(old.metadata.finalizers ?? []), finalizer])]
      try {
        return await this.store.update(keyOf(info, namespace, name), marked, { expectedResourceVersion: resourceVersion ?? old.metadata.resourceVersion })
      } catch (err) {
        if (!(err instanceof StoreConflictError) || resourceVersion !== undefined || attempt >= PATCH_ATTEMPTS) throw this.translate(info, name, err)
      }
      old = await this.get(info, namespace, name)
      if (old.metadata.deletionTimestamp) return old
    }
  }

  /** Deleting a namespace deletes everything in it, as Kubernetes' namespace controller does. */
  private async deleteNamespaceContents(namespace: string): Promise<void> {
    for (const kind of KINDS.filter((k) => k.namespaced)) {
      const { items } = await this.list(kind, namespace)
      for (const item of items) {
        try {
          await this.released(await this.store.delete(keyOf(kind, namespace, item.metadata.name!)))
        } catch (err) {
          if (!(err instanceof StoreNotFoundError)) throw err
        }
      }
      if (items.length > 0) this.logger.info({ component: 'registry', namespace, kind: kind.kind, count: items.length }, 'deleted namespace contents')
    }
  }

  private async writeUpdate(
    info: KindInfo,
    old: KubeObject,
    incoming: KubeObject,
    ctx: WriteContext,
    warnings: string[],
    expectedResourceVersion: string | undefined,
    subresource: 'status' | undefined,
  ): Promise<WriteResult> {
    let next: KubeObject
    if (subresource === 'status') {
      next = { ...structuredClone(old), status: incoming.status }
    } else {
      next = applyDefaults(incoming)
      if (info.subresources.includes('status')) {
        if (old.status === undefined) delete next.status
        else next.status = structuredClone(old.status)
      }
    }
    const meta = next.metadata
    meta.uid = old.metadata.uid
    meta.creationTimestamp = old.metadata.creationTimestamp
    // Once set, a deletion stays: it completes when the last finalizer is removed.
    if (old.metadata.deletionTimestamp) {
      meta.deletionTimestamp = old.metadata.deletionTimestamp
      meta.deletionGracePeriodSeconds = old.metadata.deletionGracePeriodSeconds
    } else {
      delete meta.deletionTimestamp
      delete meta.deletionGracePeriodSeconds
    }
    meta.resourceVersion = old.metadata.resourceVersion
    if (info.hasGeneration) {
      const generation = old.metadata.generation ?? 1
      meta.generation = isDeepStrictEqual(next.spec, old.spec) ? generation : generation + 1
    } else {
      delete meta.generation
    }
    if (expectedResourceVersion !== undefined && expectedResourceVersion !== old.metadata.resourceVersion) {
      throw conflict(info.group, info.plural, meta.name!)
    }

    const errors: FieldError[] = [...validateObject(next).errors, ...validateUpdate(old, next)]
    if (errors.length > 0) throw invalid(info.group, info.kind, meta.name!, errors)
    const leases = info.kind === 'Service' && subresource !== 'status'
    if (leases) next = await this.serviceAllocations.allocate(next, ctx.dryRun, old)
    if (isDeepStrictEqual(next, old)) return { object: old, warnings, changed: false }
    if (ctx.dryRun) return { object: next, warnings, changed: true }
    try {
      const key = keyOf(info, old.metadata.namespace ?? '', meta.name!)
      if (meta.deletionTimestamp && (meta.finalizers ?? []).length === 0) {
        return { object: await this.released(await this.store.delete(key, { expectedResourceVersion: old.metadata.resourceVersion })), warnings, changed: true }
      }
      const written = await this.store.update(key, next, { expectedResourceVersion: old.metadata.resourceVersion })
      if (leases) await this.serviceAllocations.release(old, written)
      return { object: written, warnings, changed: true }
    } catch (err) {
      if (leases) await this.serviceAllocations.release(next, old)
      throw this.translate(info, meta.name!, err)
    }
  }

  /** A deleted Service gives back its cluster IP and node ports. */
  private async released(deleted: KubeObject): Promise<KubeObject> {
    if (deleted.kind === 'Service') await this.serviceAllocations.release(deleted)
    return deleted
  }

  private async requireNamespace(namespace: string): Promise<void> {
    if (!(await this.store.get(keyOf(NAMESPACE_KIND, '', namespace)))) {
      throw new ApiError(404, 'NotFound', `namespaces "${namespace}" not found`, { name: namespace, kind: 'namespaces' })
    }
  }

  private translate(info: KindInfo, name: string, err: unknown): unknown {
    if (err instanceof StoreConflictError) return conflict(info.group, info.plural, name)
    if (err instanceof StoreNotFoundError) return notFound(info.group, info.plural, name)
    return err
  }
}

/** A patch may carry metadata.resourceVersion as a precondition; only then is a conflict final. */
function patchedResourceVersion(old: KubeObject, patched: KubeObject): string | undefined {
  const rv = patched.metadata.resourceVersion
  return rv && rv !== old.metadata.resourceVersion ? rv : undefined
}

/** The last second formatted: a binding, its Event and a status report all stamp the same few seconds. */
let lastSecond = NaN
let lastFormatted = ''

export function rfc3339(ms: number): string {
  const second = Math.floor(ms / 1000)
  if (second !== lastSecond) {
    lastFormatted = new Date(second * 1000).toISOString().replace('.000Z', 'Z')
    lastSecond = second
  }
  return lastFormatted
}
