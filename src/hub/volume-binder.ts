// Binds PersistentVolumeClaims to PersistentVolumes, and provisions local-path volumes as k3s users
// know them: the built-in `local-path` StorageClass (the default, WaitForFirstConsumer) gets a
// volume only once a pod using the claim is scheduled; the hub then makes a PersistentVolume on
// that pod's node (a hostPath `volumes/<pv>`, relative to the agent's data dir, which the agent
// creates) with a required node affinity to it, so every later pod using the claim goes there.
// A volume made by hand (hostPath, no claim) binds to a claim of its class that fits.
// When a claim is gone (a deleted one stays while a pod uses it: pvc-protection.ts) its volume is
// deleted (reclaim policy Delete: the agent then removes the directory) or kept as Released (Retain).

import { claimsOfPod } from '../api/claims.js'
import { KINDS } from '../api/kinds.js'
import { Quantity } from '../api/quantity.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { isTerminal } from '../sched/snapshot.js'
import type { EventRecorder } from './event-recorder.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'

const CLAIM = KINDS.find((k) => k.kind === 'PersistentVolumeClaim')!
const VOLUME = KINDS.find((k) => k.kind === 'PersistentVolume')!
const STORAGE_CLASS = KINDS.find((k) => k.kind === 'StorageClass')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export const LOCAL_PATH_CLASS = 'local-path'
/** k3s's provisioner name, so manifests written for k3s name the same class. */
export const LOCAL_PATH_PROVISIONER = 'rancher.io/local-path'
export const DEFAULT_CLASS_ANNOTATION = 'storageclass.kubernetes.io/is-default-class'
export const SELECTED_NODE_ANNOTATION = 'volume.kubernetes.io/selected-node'
export const HOSTNAME_LABEL = 'kubernetes.io/hostname'
/** Where a provisioned volume lives on its node, relative to the agent's data dir. */
export const LOCAL_VOLUMES_DIR = 'volumes'

export interface VolumeBinderOptions {
  registry: Registry
  pods: Informer
  claims: Informer
  volumes: Informer
  storageClasses: Informer
  events: EventRecorder
  clock: Clock
  logger: Logger
}

/** True while `pod` may use `claim`'s volume: bound to a node, not finished, naming the claim. */
export function podUsesClaim(pod: KubeObject, claim: KubeObject): boolean {
  return pod.metadata.namespace === claim.metadata.namespace && Boolean(pod.spec?.nodeName) && !isTerminal(pod) && claimsOfPod(pod).includes(claim.metadata.name!)
}

/**
 * The node a volume is pinned to by a required `metadata.name In [node]` field term (what the hub
 * writes: a node's kubernetes.io/hostname label is its host's name, which need not be the node's),
 * or a `kubernetes.io/hostname In [node]` one (volumes made by hand), if any.
 */
export function volumeNode(pv: KubeObject): string | undefined {
  for (const term of pv.spec?.nodeAffinity?.required?.nodeSelectorTerms ?? []) {
    for (const e of term?.matchFields ?? []) if (e?.key === 'metadata.name' && e.operator === 'In' && e.values?.length === 1) return String(e.values[0])
    for (const e of term?.matchExpressions ?? []) if (e?.key === HOSTNAME_LABEL && e.operator === 'In' && e.values?.length === 1) return String(e.values[0])
  }
  return undefined
}

export function localPathStorageClass(): KubeObject {
  return {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: { name: LOCAL_PATH_CLASS, annotations: { [DEFAULT_CLASS_ANNOTATION]: 'true' } },
    provisioner: LOCAL_PATH_PROVISIONER,
    reclaimPolicy: 'Delete',
    volumeBindingMode: 'WaitForFirstConsumer',
  }
}

const quantity = (v: unknown) => Quantity.tryParse(v)

export class VolumeBinder {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: VolumeBinderOptions) {
    this.log = o.logger.child({ component: 'volume-binder' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'binding failed; will retry') })
    o.claims.onChange((_type, claim) => this.queue.add(objectKey(claim)))
    o.pods.onChange((type, pod, previous) => {
      if (type === 'DELETED' || !pod.spec?.nodeName || previous?.spec?.nodeName) return
      for (const name of claimsOfPod(pod)) this.queue.add(`${pod.metadata.namespace}/${name}`)
    })
    // Keys: `namespace/name` for a claim, a bare name for a volume (cluster-scoped).
    o.volumes.onChange((type, pv) => {
      const ref = pv.spec?.claimRef
      if (ref?.namespace && ref.name) this.queue.add(`${ref.namespace}/${ref.name}`)
      else {
        if (type !== 'DELETED') this.queue.add(pv.metadata.name!)
        // A volume made free may fit a claim that waits.
        for (const c of o.claims.list()) if (!c.spec?.volumeName) this.queue.add(objectKey(c))
      }
    })
  }

  /** Makes the built-in local-path StorageClass when there is none of that name, then binds. */
  async start(): Promise<void> {
    if (!this.o.storageClasses.get(LOCAL_PATH_CLASS)) {
      try {
        const { object } = await this.o.registry.create(STORAGE_CLASS, '', localPathStorageClass(), WRITE)
        this.o.storageClasses.assume(object)
      } catch (err) {
        if ((err as { httpStatus?: number }).httpStatus !== 409) throw err
      }
    }
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  private defaultClass(): KubeObject | undefined {
    return this.o.storageClasses.list().find((c) => c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true')
  }

  private async reconcile(key: string): Promise<void> {
    if (!key.includes('/')) return this.markAvailable(key)
    const [namespace, name] = key.split('/') as [string, string]
    const claim = this.o.claims.get(key)
    // Volumes of this name's earlier claims (deleted, or deleted and made again) are released first;
    // a claim being deleted keeps its volume until it is gone (pvc-protection.ts holds it while in use).
    await this.release(namespace, name, claim?.metadata.uid)
    if (!claim || claim.metadata.deletionTimestamp) return
    if (claim.spec?.volumeName) return this.markBound(claim)
    const className: string | undefined = claim.spec?.storageClassName ?? this.defaultClass()?.metadata.name
    const found = this.availableVolumeFor(claim, className ?? '')
    if (found) return this.bind(claim, found, className)
    const sc = className ? this.o.storageClasses.get(className) : undefined
    const node = sc?.provisioner === LOCAL_PATH_PROVISIONER ? this.consumerNode(claim) : undefined
    // WaitForFirstConsumer: nothing more to do until a pod using it is scheduled.
    if (!sc || !node) return this.markPending(claim)
    const pv = await this.provision(claim, sc, node)
    await this.bind(claim, pv, className, node)
  }

  /** The node of a scheduled, unfinished pod that uses the claim. */
  private consumerNode(claim: KubeObject): string | undefined {
    return this.o.pods.list().find((p) => podUsesClaim(p, claim))?.spec?.nodeName
  }

  /** A volume nobody claims (or reserved for this claim) of the claim's class, big enough, with its access modes. */
  private availableVolumeFor(claim: KubeObject, className: string): KubeObject | undefined {
    const want = quantity(claim.spec?.resources?.requests?.storage)
    const modes: string[] = claim.spec?.accessModes ?? []
    return this.o.volumes.list().find((pv) => {
      const ref = pv.spec?.claimRef
      if (ref && !(ref.namespace === claim.metadata.namespace && ref.name === claim.metadata.name && (!ref.uid || ref.uid === claim.metadata.uid))) return false
      if (pv.metadata.deletionTimestamp || pv.status?.phase === 'Released' || pv.status?.phase === 'Failed') return false
      if ((pv.spec?.storageClassName ?? '') !== className) return false
      const has = quantity(pv.spec?.capacity?.storage)
      if (!has || (want && has.cmp(want) < 0)) return false
      return modes.every((m) => (pv.spec?.accessModes ?? []).includes(m))
    })
  }

  private async provision(claim: KubeObject, sc: KubeObject, node: string): Promise<KubeObject> {
    const name = `pvc-${claim.metadata.uid}`
    const existing = this.o.volumes.get(name)
    if (existing) return existing
    const pv: KubeObject = {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name, annotations: { 'pv.kubernetes.io/provisioned-by': LOCAL_PATH_PROVISIONER } },
      spec: {
        capacity: { storage: claim.spec?.resources?.requests?.storage },
        accessModes: claim.spec?.accessModes ?? ['ReadWriteOnce'],
        hostPath: { path: `${LOCAL_VOLUMES_DIR}/${name}`, type: 'DirectoryOrCreate' },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [node] }] }] } },
        persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
        storageClassName: sc.metadata.name,
        volumeMode: claim.spec?.volumeMode ?? 'Filesystem',
        claimRef: { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claim.metadata.namespace, name: claim.metadata.name, uid: claim.metadata.uid },
      },
    }
    try {
      const { object } = await this.o.registry.create(VOLUME, '', pv, WRITE)
      this.o.volumes.assume(object)
      await this.o.events.record(claim, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${name} on node ${node}`)
      return object
    } catch (err) {
      if ((err as { httpStatus?: number }).httpStatus !== 409) throw err
      return this.o.registry.get(VOLUME, '', name)
    }
  }

  private async bind(claim: KubeObject, pv: KubeObject, className: string | undefined, node?: string): Promise<void> {
    const ref = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', namespace: claim.metadata.namespace, name: claim.metadata.name, uid: claim.metadata.uid }
    if (JSON.stringify(pv.spec?.claimRef) !== JSON.stringify(ref)) {
      const { object } = await this.o.registry.update(VOLUME, '', pv.metadata.name!, { ...pv, spec: { ...pv.spec, claimRef: ref } }, WRITE)
      pv = object
    }
    if (pv.status?.phase !== 'Bound') {
      const { object } = await this.o.registry.update(VOLUME, '', pv.metadata.name!, { ...pv, status: { ...(pv.status ?? {}), phase: 'Bound' } }, WRITE, 'status')
      this.o.volumes.assume(object)
    }
    const next = structuredClone(claim)
    next.metadata.annotations = { ...next.metadata.annotations, 'pv.kubernetes.io/bind-completed': 'yes', ...(node ? { [SELECTED_NODE_ANNOTATION]: node } : {}) }
    next.spec = { ...next.spec, volumeName: pv.metadata.name, ...(className && !next.spec?.storageClassName ? { storageClassName: className } : {}) }
    const { object } = await this.o.registry.update(CLAIM, claim.metadata.namespace!, claim.metadata.name!, next, WRITE)
    this.o.claims.assume(object)
    await this.markBound(object)
  }

  /** A volume nobody claims is Available, as Kubernetes shows it (a Released one stays Released). */
  private async markAvailable(name: string): Promise<void> {
    const pv = this.o.volumes.get(name)
    if (!pv || pv.spec?.claimRef || pv.metadata.deletionTimestamp || ['Available', 'Released', 'Failed'].includes(pv.status?.phase)) return
    const { object } = await this.o.registry.update(VOLUME, '', name, { ...pv, status: { ...(pv.status ?? {}), phase: 'Available' } }, WRITE, 'status')
    this.o.volumes.assume(object)
  }

  /** An unbound claim says so, as Kubernetes shows it: Pending. */
  private async markPending(claim: KubeObject): Promise<void> {
    if (claim.status?.phase === 'Pending') return
    const { object } = await this.o.registry.update(CLAIM, claim.metadata.namespace!, claim.metadata.name!, { ...claim, status: { ...(claim.status ?? {}), phase: 'Pending' } }, WRITE, 'status')
    this.o.claims.assume(object)
  }

  /** A bound claim's status: Bound with its volume's capacity, or Lost when the volume is gone. */
  private async markBound(claim: KubeObject): Promise<void> {
    const pv = this.o.volumes.get(claim.spec.volumeName)
    const status = pv
      ? { ...(claim.status ?? {}), phase: 'Bound', accessModes: pv.spec?.accessModes ?? [], capacity: { ...(pv.spec?.capacity ?? {}) } }
      : { ...(claim.status ?? {}), phase: 'Lost' }
    if (JSON.stringify(status) === JSON.stringify(claim.status ?? {})) return
    const { object } = await this.o.registry.update(CLAIM, claim.metadata.namespace!, claim.metadata.name!, { ...claim, status }, WRITE, 'status')
    this.o.claims.assume(object)
  }

  /** The claim is gone: its volumes are deleted (Delete) or kept as Released (Retain). */
  private async release(namespace: string, name: string, liveUid: string | undefined): Promise<void> {
    for (const pv of this.o.volumes.list()) {
      const ref = pv.spec?.claimRef
      if (ref?.namespace !== namespace || ref.name !== name || (liveUid && ref.uid === liveUid) || pv.metadata.deletionTimestamp) continue
      if (pv.spec?.persistentVolumeReclaimPolicy === 'Delete') {
        await this.o.registry.delete(VOLUME, '', pv.metadata.name!, { dryRun: false }).catch((err) => {
          if ((err as { httpStatus?: number }).httpStatus !== 404) throw err
        })
        this.log.info({ volume: pv.metadata.name, claim: `${namespace}/${name}` }, 'deleted the volume of a deleted claim')
      } else if (pv.status?.phase !== 'Released') {
        const { object } = await this.o.registry.update(VOLUME, '', pv.metadata.name!, { ...pv, status: { ...(pv.status ?? {}), phase: 'Released' } }, WRITE, 'status')
        this.o.volumes.assume(object)
      }
    }
  }
}
