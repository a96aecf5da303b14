// The StatefulSet controller: pods with stable names (`<name>-0` .. `<name>-N-1`), each with its own
// PersistentVolumeClaims from the volumeClaimTemplates (`<template>-<name>-<ordinal>`), kept when the
// pod or the StatefulSet goes (retention policy Retain, the default). OrderedReady starts ordinal N
// only once N-1 is Running and Ready and removes from the highest ordinal, one at a time; Parallel
// does both at once. RollingUpdate replaces pods of an old template from the highest ordinal down
// to the partition, one at a time; OnDelete waits for people to delete them.
//
// Revisions are a hash of the pod template (the `controller-revision-hash` label), not stored
// ControllerRevision objects: a pod below the partition that is deleted comes back at the new
// template, where Kubernetes would bring back the old one.

import { createHash } from 'node:crypto'
import { KINDS } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'
import { controllerOf, isReady } from './replicaset-controller.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!
const CLAIM = KINDS.find((k) => k.kind === 'PersistentVolumeClaim')!
const STATEFUL_SET = KINDS.find((k) => k.kind === 'StatefulSet')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export const REVISION_LABEL = 'controller-revision-hash'
export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name'
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index'

export interface StatefulSetControllerOptions {
  registry: Registry
  statefulSets: Informer
  pods: Informer
  claims: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
}

/** The revision name of a StatefulSet's current template: `<name>-<hash>`. */
export function revisionOf(sts: KubeObject): string {
  const hash = createHash('sha256').update(JSON.stringify(sts.spec?.template ?? {})).digest('hex').slice(0, 10)
  return `${sts.metadata.name}-${hash}`
}

/** The ordinal of a pod named `<set>-<n>`, or undefined for any other name. */
export function ordinalOf(setName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${setName}-`)) return undefined
  const rest = podName.slice(setName.length + 1)
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined
}

export function claimName(template: string, setName: string, ordinal: number): string {
  return `${template}-${setName}-${ordinal}`
}

const runningAndReady = (p: KubeObject) => p.status?.phase === 'Running' && isReady(p)

export class StatefulSetController {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: StatefulSetControllerOptions) {
    this.log = o.logger.child({ component: 'statefulset-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'reconcile failed; will retry') })
    o.statefulSets.onChange((type, sts) => {
      if (type !== 'DELETED') this.queue.add(objectKey(sts))
    })
    o.pods.onChange((_type, pod, previous) => {
      for (const p of [pod, previous]) {
        const owner = p && controllerOf(p)
        if (owner?.kind === 'StatefulSet') this.queue.add(`${p!.metadata.namespace}/${owner.name}`)
      }
    })
  }

  start(): void {
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  /** The set's pods by ordinal (any state, deleting ones too). */
  private podsOf(sts: KubeObject): Map<number, KubeObject> {
    const byOrdinal = new Map<number, KubeObject>()
    for (const p of this.o.pods.list()) {
      if (p.metadata.namespace !== sts.metadata.namespace || controllerOf(p)?.uid !== sts.metadata.uid) continue
      const ordinal = ordinalOf(sts.metadata.name!, p.metadata.name!)
      if (ordinal !== undefined) byOrdinal.set(ordinal, p)
    }
    return byOrdinal
  }

  private async reconcile(key: string): Promise<void> {
    const sts = this.o.statefulSets.get(key)
    if (!sts || sts.metadata.deletionTimestamp) return
    const replicas = typeof sts.spec?.replicas === 'number' ? sts.spec.replicas : 1
    const parallel = sts.spec?.podManagementPolicy === 'Parallel'
    const updateRevision = revisionOf(sts)
    const pods = this.podsOf(sts)

    // Failed or finished pods are removed; the next pass makes them again under the same name.
    for (const [, pod] of pods) if (isTerminal(pod) && !pod.metadata.deletionTimestamp) await this.deletePod(sts, pod)

    // Ordinals below replicas: make what is missing, in order unless Parallel.
    let blocked = false
    for (let i = 0; i < replicas && !blocked; i++) {
      const pod = pods.get(i)
      if (!pod) {
        await this.ensureClaims(sts, i)
        const { object } = await this.o.registry.create(POD, sts.metadata.namespace!, this.podFor(sts, i, updateRevision), WRITE)
        this.o.pods.assume(object)
        pods.set(i, object)
        await this.o.events.record(sts, 'Normal', 'SuccessfulCreate', `create Pod ${object.metadata.name} in StatefulSet ${sts.metadata.name} successful`)
        if (!parallel) blocked = true
      } else if (!parallel && (!runningAndReady(pod) || pod.metadata.deletionTimestamp)) blocked = true
    }

    // Ordinals at or above replicas: removed from the highest, one at a time unless Parallel.
    const condemned = [...pods.keys()].filter((i) => i >= replicas).sort((a, b) => b - a)
    if (condemned.length > 0) {
      const terminating = condemned.some((i) => pods.get(i)!.metadata.deletionTimestamp)
      if (parallel) {
        for (const i of condemned) if (!pods.get(i)!.metadata.deletionTimestamp) await this.deletePod(sts, pods.get(i)!)
      } else if (!terminating && !blocked) await this.deletePod(sts, pods.get(condemned[0])!)
    }
    await this.deleteScaledClaims(sts, replicas, pods)

    // RollingUpdate: once every replica is there, Running and Ready, replace the highest old one.
    const strategy = sts.spec?.updateStrategy?.type ?? 'RollingUpdate'
    if (strategy === 'RollingUpdate' && condemned.length === 0) {
      const partition = sts.spec?.updateStrategy?.rollingUpdate?.partition ?? 0
      const all = [...Array(replicas).keys()].map((i) => pods.get(i))
      const settled = all.every((p) => p && runningAndReady(p) && !p.metadata.deletionTimestamp)
      if (settled) {
        for (let i = replicas - 1; i >= partition; i--) {
          const pod = pods.get(i)!
          if (pod.metadata.labels?.[REVISION_LABEL] !== updateRevision) {
            await this.deletePod(sts, pod)
            break
          }
        }
      }
    }
    await this.writeStatus(sts, updateRevision)
  }

  private async deletePod(sts: KubeObject, pod: KubeObject): Promise<void> {
    await this.o.registry.delete(POD, pod.metadata.namespace!, pod.metadata.name!, { dryRun: false }).catch((err) => {
      if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
    })
    await this.o.events.record(sts, 'Normal', 'SuccessfulDelete', `delete Pod ${pod.metadata.name} in StatefulSet ${sts.metadata.name} successful`)
  }

  /** The pod's claims, made when missing; an existing one (kept from an earlier pod) is reused as it is. */
  private async ensureClaims(sts: KubeObject, ordinal: number): Promise<void> {
    const deleteWithSet = sts.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Delete'
    for (const t of (sts.spec?.volumeClaimTemplates ?? []) as KubeObject[]) {
      const name = claimName(t.metadata.name!, sts.metadata.name!, ordinal)
      if (this.o.claims.get(`${sts.metadata.namespace}/${name}`)) continue
      const claim: KubeObject = {
        apiVersion: 'v1',
        kind: 'PersistentVolumeClaim',
        metadata: {
          name,
          namespace: sts.metadata.namespace,
          labels: { ...(t.metadata.labels ?? {}), ...(sts.spec?.selector?.matchLabels ?? {}) },
          ...(t.metadata.annotations ? { annotations: { ...t.metadata.annotations } } : {}),
          // Retain (the default) leaves the claim without an owner, so the garbage collector keeps it.
          ...(deleteWithSet ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: sts.metadata.name!, uid: sts.metadata.uid!, controller: true, blockOwnerDeletion: true }] } : {}),
        },
        spec: structuredClone(t.spec ?? {}),
      }
      try {
        const { object } = await this.o.registry.create(CLAIM, sts.metadata.namespace!, claim, WRITE)
        this.o.claims.assume(object)
        await this.o.events.record(sts, 'Normal', 'SuccessfulCreate', `create Claim ${name} Pod ${sts.metadata.name}-${ordinal} in StatefulSet ${sts.metadata.name} success`)
      } catch (err) {
        if ((err as { httpStatus?: number }).httpStatus !== 409) throw err
      }
    }
  }

  /** whenScaled: Delete removes the claims of ordinals scaled away, once their pod is gone. */
  private async deleteScaledClaims(sts: KubeObject, replicas: number, pods: Map<number, KubeObject>): Promise<void> {
    if (sts.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled !== 'Delete') return
    const prefixes = ((sts.spec?.volumeClaimTemplates ?? []) as KubeObject[]).map((t) => `${t.metadata.name}-${sts.metadata.name}-`)
    for (const claim of this.o.claims.list()) {
      if (claim.metadata.namespace !== sts.metadata.namespace || claim.metadata.deletionTimestamp) continue
      const prefix = prefixes.find((p) => claim.metadata.name!.startsWith(p))
      if (!prefix) continue
      const rest = claim.metadata.name!.slice(prefix.length)
      const ordinal = /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined
      if (ordinal === undefined || ordinal < replicas || pods.has(ordinal)) continue
      await this.o.registry.delete(CLAIM, sts.metadata.namespace!, claim.metadata.name!, { dryRun: false }).catch((err) => {
        if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
      })
    }
  }

  private podFor(sts: KubeObject, ordinal: number, revision: string): KubeObject {
    const template = sts.spec?.template ?? {}
    const name = `${sts.metadata.name}-${ordinal}`
    const spec = structuredClone(template.spec ?? {})
    const claimVolumes = ((sts.spec?.volumeClaimTemplates ?? []) as KubeObject[]).map((t) => ({
      name: t.metadata.name!,
      persistentVolumeClaim: { claimName: claimName(t.metadata.name!, sts.metadata.name!, ordinal) },
    }))
    const claimed = new Set(claimVolumes.map((v) => v.name))
    spec.volumes = [...((spec.volumes ?? []) as Array<{ name: string }>).filter((v) => !claimed.has(v.name)), ...claimVolumes]
    if (spec.volumes.length === 0) delete spec.volumes
    spec.hostname = name
    if (sts.spec?.serviceName) spec.subdomain = sts.spec.serviceName
    return {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: sts.metadata.namespace,
        labels: { ...(template.metadata?.labels ?? {}), [REVISION_LABEL]: revision, [POD_NAME_LABEL]: name, [POD_INDEX_LABEL]: String(ordinal) },
        ...(template.metadata?.annotations ? { annotations: { ...template.metadata.annotations } } : {}),
        ownerReferences: [{ apiVersion: 'apps/v1', kind: 'StatefulSet', name: sts.metadata.name!, uid: sts.metadata.uid!, controller: true, blockOwnerDeletion: true }],
      },
      spec,
    }
  }

  private async writeStatus(sts: KubeObject, updateRevision: string): Promise<void> {
    const replicas = typeof sts.spec?.replicas === 'number' ? sts.spec.replicas : 1
    const active = [...this.podsOf(sts).values()].filter((p) => !isTerminal(p) && !p.metadata.deletionTimestamp)
    const ready = active.filter(runningAndReady).length
    let currentRevision: string = sts.status?.currentRevision ?? updateRevision
    const updated = active.filter((p) => p.metadata.labels?.[REVISION_LABEL] === updateRevision).length
    // The update is done once every replica runs the new template and is ready: it becomes the current one.
    if (updated === replicas && ready === replicas && active.length === replicas) currentRevision = updateRevision
    const current = active.filter((p) => p.metadata.labels?.[REVISION_LABEL] === currentRevision).length
    const status = {
      ...(sts.status ?? {}),
      observedGeneration: sts.metadata.generation ?? 1,
      replicas: active.length,
      readyReplicas: ready,
      currentReplicas: current,
      updatedReplicas: updated,
      availableReplicas: ready,
      currentRevision,
      updateRevision,
      collisionCount: sts.status?.collisionCount ?? 0,
    }
    if (JSON.stringify(status) === JSON.stringify(sts.status ?? {})) return
    const { object } = await this.o.registry.update(STATEFUL_SET, sts.metadata.namespace!, sts.metadata.name!, { ...sts, status }, WRITE, 'status')
    this.o.statefulSets.assume(object)
  }
}
