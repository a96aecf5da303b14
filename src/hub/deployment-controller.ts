// The Deployment controller: one ReplicaSet per pod template (labelled with its hash), rolled from
// the old to the new within maxSurge / maxUnavailable as pods become available, or all at once for
// Recreate; the revision annotation, observedGeneration and status kubectl rollout reads.

import { createHash } from 'node:crypto'
import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'
import { controllerOf } from './replicaset-controller.js'

const DEPLOYMENT = KINDS.find((k) => k.kind === 'Deployment')!
const REPLICA_SET = KINDS.find((k) => k.kind === 'ReplicaSet')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision'
export const HASH_LABEL = 'pod-template-hash'
/** Deployment annotations Kubernetes does not copy onto its ReplicaSets. */
const NOT_COPIED = new Set(['kubectl.kubernetes.io/last-applied-configuration', REVISION_ANNOTATION, 'deployment.kubernetes.io/revision-history', 'deployment.kubernetes.io/desired-replicas', 'deployment.kubernetes.io/max-replicas', 'deprecated.deployment.rollback.to'])

/**
 * The annotations of the Deployment's current ReplicaSet: the Deployment's own (its
 * kubernetes.io/change-cause is what `rollout history` shows) and the revision.
 */
function replicaSetAnnotations(d: KubeObject, rs: KubeObject | undefined, revision: string): Record<string, string> {
  const copied = Object.entries(d.metadata.annotations ?? {}).filter(([k]) => !NOT_COPIED.has(k))
  return { ...(rs?.metadata.annotations ?? {}), ...Object.fromEntries(copied), [REVISION_ANNOTATION]: revision }
}

export interface DeploymentControllerOptions {
  registry: Registry
  deployments: Informer
  replicaSets: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
}

/**
 * A short hash of a pod template: the new ReplicaSet's name suffix and label. Keys are sorted, empty
 * values and the hash label itself are left out, so a template copied back from a ReplicaSet
 * (`kubectl rollout undo`) finds that ReplicaSet again.
 */
export function templateHash(template: any): string {
  const copy = structuredClone(template ?? {})
  if (copy.metadata?.labels) delete copy.metadata.labels[HASH_LABEL]
  return createHash('sha256').update(canonicalJson(copy)).digest('hex').slice(0, 10)
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`
  if (value && typeof value === 'object') {
    // Go's encoder writes zero values (`creationTimestamp: null`, `resources: {}`) that mean "absent".
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined && v !== null)
      .map(([k, v]) => [k, canonicalJson(v)] as const)
      .filter(([, json]) => json !== '{}')
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    return `{${entries.map(([k, json]) => `${JSON.stringify(k)}:${json}`).join(',')}}`
  }
  return JSON.stringify(value)
}

/** maxSurge / maxUnavailable as numbers: percentages of replicas, surge rounded up, unavailable down. */
export function resolveRollingBounds(replicas: number, strategy: any): { maxSurge: number; maxUnavailable: number } {
  const value = (v: unknown, fallback: string, roundUp: boolean) => {
    const raw = v ?? fallback
    if (typeof raw === 'number') return raw
    const pct = Number(String(raw).replace('%', ''))
    return roundUp ? Math.ceil((pct * replicas) / 100) : Math.floor((pct * replicas) / 100)
  }
  const maxSurge = value(strategy?.rollingUpdate?.maxSurge, '25%', true)
  let maxUnavailable = value(strategy?.rollingUpdate?.maxUnavailable, '25%', false)
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1 // as Kubernetes: the rollout must move
  return { maxSurge, maxUnavailable }
}

const specReplicas = (rs: KubeObject) => (typeof rs.spec?.replicas === 'number' ? rs.spec.replicas : 0)
const available = (rs: KubeObject) => Number(rs.status?.availableReplicas ?? 0)

export class DeploymentController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: DeploymentControllerOptions) {
    this.log = o.logger.child({ component: 'deployment-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    // A deleted Deployment's ReplicaSets are the garbage collector's (deleted, or orphaned on request).
    o.deployments.onChange((type, d) => {
      if (type !== 'DELETED') this.queue.add(objectKey(d))
    })
    o.replicaSets.onChange((_type, rs, previous) => {
      for (const r of [rs, previous]) {
        const owner = r && controllerOf(r)
        if (owner?.kind === 'Deployment') this.queue.add(`${r!.metadata.namespace}/${owner.name}`)
      }
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  private owned(d: KubeObject): KubeObject[] {
    return this.o.replicaSets.list().filter((rs) => rs.metadata.namespace === d.metadata.namespace && controllerOf(rs)?.uid === d.metadata.uid)
  }

  private async reconcile(key: string): Promise<void> {
    const d = this.o.deployments.get(key)
    // Being deleted: a new ReplicaSet now would only be more for the garbage collector.
    if (!d || d.metadata.deletionTimestamp) return
    const hash = templateHash(d.spec?.template)
    const all = this.owned(d)
    let newRS = all.find((rs) => rs.metadata.labels?.[HASH_LABEL] === hash)
    const old = all.filter((rs) => rs !== newRS)
    const desired = typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1
    const revisionOf = (rs: KubeObject) => Number(rs.metadata.annotations?.[REVISION_ANNOTATION] ?? 0)
    const maxOldRevision = Math.max(0, ...old.map(revisionOf))

    if (!newRS) {
      newRS = await this.createReplicaSet(d, hash, maxOldRevision + 1, old.length === 0 ? desired : 0)
    } else {
      // It carries the Deployment's annotations (change-cause); after a rollback to an older template it becomes the newest revision again.
      const revision = String(revisionOf(newRS) <= maxOldRevision ? maxOldRevision + 1 : revisionOf(newRS))
      const annotations = replicaSetAnnotations(d, newRS, revision)
      if (JSON.stringify(annotations) !== JSON.stringify(newRS.metadata.annotations ?? {})) newRS = await this.writeReplicaSet(newRS, { annotations })
    }

    if (!d.spec?.paused) {
      if (d.spec?.strategy?.type === 'Recreate') await this.recreate(newRS, old, desired)
      else await this.roll(d, newRS, old, desired)
    }
    await this.cleanupHistory(d, old)
    await this.writeStatus(d, newRS)
  }

  private async recreate(newRS: KubeObject, old: KubeObject[], desired: number): Promise<void> {
    for (const rs of old) if (specReplicas(rs) > 0) await this.scale(rs, 0)
    const oldPods = old.reduce((n, rs) => n + Number(rs.status?.replicas ?? 0), 0)
    if (oldPods === 0 && specReplicas(newRS) !== desired) await this.scale(newRS, desired)
  }

  private async roll(d: KubeObject, newRS: KubeObject, old: KubeObject[], desired: number): Promise<void> {
    const { maxSurge, maxUnavailable } = resolveRollingBounds(desired, d.spec?.strategy)
    const total = () => specReplicas(newRS) + old.reduce((n, rs) => n + specReplicas(rs), 0)
    // Scale the new ReplicaSet up, within the surge.
    if (specReplicas(newRS) > desired) newRS = await this.scale(newRS, desired)
    else if (specReplicas(newRS) < desired) {
      const room = desired + maxSurge - total()
      const up = Math.min(room, desired - specReplicas(newRS))
      if (up > 0) newRS = await this.scale(newRS, specReplicas(newRS) + up)
    }
    // Scale old ones down, keeping at least desired - maxUnavailable available.
    const minAvailable = desired - maxUnavailable
    const availableNow = available(newRS) + old.reduce((n, rs) => n + available(rs), 0)
    let budget = Math.max(0, availableNow - minAvailable)
    // Old pods that are not available cost no availability: remove them first.
    for (const rs of [...old].sort((a, b) => Number(a.metadata.annotations?.[REVISION_ANNOTATION] ?? 0) - Number(b.metadata.annotations?.[REVISION_ANNOTATION] ?? 0))) {
      const current = specReplicas(rs)
      if (current === 0) continue
      const unavailable = Math.max(0, current - available(rs))
      const down = Math.min(current, unavailable + budget)
      if (down > 0) {
        await this.scale(rs, current - down)
        budget -= Math.max(0, down - unavailable)
      }
    }
  }

  private async createReplicaSet(d: KubeObject, hash: string, revision: number, replicas: number): Promise<KubeObject> {
    const template = structuredClone(d.spec.template ?? {})
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [HASH_LABEL]: hash } }
    const selector = structuredClone(d.spec.selector ?? {})
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [HASH_LABEL]: hash }
    const { object } = await this.o.registry.create(
      REPLICA_SET,
      d.metadata.namespace!,
      {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${d.metadata.name}-${hash}`,
          labels: { ...(template.metadata.labels ?? {}) },
          annotations: replicaSetAnnotations(d, undefined, String(revision)),
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: d.metadata.name!, uid: d.metadata.uid!, controller: true, blockOwnerDeletion: true }],
        },
        spec: { replicas, minReadySeconds: d.spec.minReadySeconds ?? 0, selector, template },
      },
      WRITE,
    )
    this.o.replicaSets.assume(object)
    await this.o.events.record(d, 'Normal', 'ScalingReplicaSet', `Created new replica set "${object.metadata.name}" with ${replicas} replicas`)
    return object
  }

  private async scale(rs: KubeObject, replicas: number): Promise<KubeObject> {
    const next = await this.writeReplicaSet(rs, {}, replicas)
    const owner = controllerOf(rs)
    if (owner) {
      const d = this.o.deployments.get(`${rs.metadata.namespace}/${owner.name}`)
      if (d) await this.o.events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled ${replicas > specReplicas(rs) ? 'up' : 'down'} replica set ${rs.metadata.name} from ${specReplicas(rs)} to ${replicas}`)
    }
    return next
  }

  private async writeReplicaSet(rs: KubeObject, meta: Record<string, unknown>, replicas?: number): Promise<KubeObject> {
    const next = { ...rs, metadata: { ...rs.metadata, ...meta }, spec: { ...rs.spec, ...(replicas === undefined ? {} : { replicas }) } }
    const { object } = await this.o.registry.update(REPLICA_SET, rs.metadata.namespace!, rs.metadata.name!, next, WRITE)
    this.o.replicaSets.assume(object)
    return object
  }

  /** Keeps `revisionHistoryLimit` old ReplicaSets (scaled to zero) for `rollout undo`. */
  private async cleanupHistory(d: KubeObject, old: KubeObject[]): Promise<void> {
    const limit = typeof d.spec?.revisionHistoryLimit === 'number' ? d.spec.revisionHistoryLimit : 10
    const idle = old
      .filter((rs) => specReplicas(rs) === 0 && Number(rs.status?.replicas ?? 0) === 0)
      .sort((a, b) => Number(a.metadata.annotations?.[REVISION_ANNOTATION] ?? 0) - Number(b.metadata.annotations?.[REVISION_ANNOTATION] ?? 0))
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      await this.o.registry.delete(REPLICA_SET, rs.metadata.namespace!, rs.metadata.name!, { dryRun: false }).catch(() => undefined)
    }
  }

  private async writeStatus(d: KubeObject, newRS: KubeObject): Promise<void> {
    const all = this.owned(d)
    const sum = (f: (rs: KubeObject) => number) => all.reduce((n, rs) => n + f(rs), 0)
    const desired = typeof d.spec?.replicas === 'number' ? d.spec.replicas : 1
    const availableReplicas = sum(available)
    const status: Record<string, unknown> = {
      ...(d.status ?? {}),
      observedGeneration: d.metadata.generation ?? 1,
      replicas: sum((rs) => Number(rs.status?.replicas ?? 0)),
      updatedReplicas: Number(newRS.status?.replicas ?? 0),
      readyReplicas: sum((rs) => Number(rs.status?.readyReplicas ?? 0)),
      availableReplicas,
      unavailableReplicas: Math.max(0, desired - availableReplicas),
    }
    const revision = newRS.metadata.annotations?.[REVISION_ANNOTATION]
    let current = d
    if (revision && d.metadata.annotations?.[REVISION_ANNOTATION] !== revision) {
      const { object } = await this.o.registry.update(DEPLOYMENT, d.metadata.namespace!, d.metadata.name!, { ...d, metadata: { ...d.metadata, annotations: { ...d.metadata.annotations, [REVISION_ANNOTATION]: revision } } }, WRITE)
      this.o.deployments.assume(object)
      current = object
    }
    if (JSON.stringify(status) === JSON.stringify(current.status ?? {})) return
    const { object } = await this.o.registry.update(DEPLOYMENT, d.metadata.namespace!, d.metadata.name!, { ...current, status }, WRITE, 'status')
    this.o.deployments.assume(object)
  }
}
