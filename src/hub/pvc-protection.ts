// pvc-protection, as Kubernetes has it: a PersistentVolumeClaim carries the finalizer
// kubernetes.io/pvc-protection from its creation (api/claims.ts; this controller also
// adds it to claims made before the hub had it), so deleting a claim only marks it Terminating
// while a pod uses it. A pod uses a claim from when it is bound to a node until it has finished or
// is gone: its containers may be writing there. Once no pod does, the finalizer goes and the claim
// with it, and only then its volume (volume-binder.ts: deleted, and its directory with it, under
// reclaim policy Delete). The scheduler places no new pod with a claim being deleted
// (sched/volume-binding.ts).

import { claimsOfPod, PVC_PROTECTION_FINALIZER, withClaimProtection } from '../api/claims.js'
import { KINDS } from '../api/kinds.js'
import type { KubeObject, ObjectMeta } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { WorkQueue } from '../lib/work-queue.js'
import { objectKey, type Informer } from './informer.js'
import type { Registry } from './registry.js'
import { podUsesClaim } from './volume-binder.js'

const CLAIM = KINDS.find((k) => k.kind === 'PersistentVolumeClaim')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

export interface PvcProtectionOptions {
  registry: Registry
  pods: Informer
  claims: Informer
  clock: Clock
  logger: Logger
}

export class PvcProtection {
  private readonly queue: WorkQueue<string>
  private readonly log: Logger

  constructor(private readonly o: PvcProtectionOptions) {
    this.log = o.logger.child({ component: 'pvc-protection-controller' })
    this.queue = new WorkQueue<string>({ clock: o.clock, onError: (key, err) => this.log.warn({ key, err }, 'pvc protection failed; will retry') })
    o.claims.onChange((type, claim) => {
      if (type !== 'DELETED') this.queue.add(objectKey(claim))
    })
    // A pod that finishes, goes or never got a node may be what a deleted claim waits for.
    o.pods.onChange((_type, pod, previous) => {
      for (const p of previous ? [pod, previous] : [pod]) for (const name of claimsOfPod(p)) this.queue.add(`${p.metadata.namespace}/${name}`)
    })
  }

  start(): void {
    for (const claim of this.o.claims.list()) this.queue.add(objectKey(claim))
    this.queue.start((key) => this.reconcile(key))
  }

  stop(): Promise<void> {
    return this.queue.stop()
  }

  private async reconcile(key: string): Promise<void> {
    const claim = this.o.claims.get(key)
    if (!claim) return
    const protectedNow = (claim.metadata.finalizers ?? []).includes(PVC_PROTECTION_FINALIZER)
    if (!claim.metadata.deletionTimestamp) {
      if (!protectedNow) await this.write(claim, withClaimProtection(claim).metadata)
      return
    }
    if (!protectedNow) return
    const user = this.o.pods.list().find((pod) => podUsesClaim(pod, claim))
    if (user) {
      this.log.debug({ claim: key, pod: user.metadata.name }, 'deleted claim still in use; kept')
      return
    }
    const finalizers = claim.metadata.finalizers!.filter((f) => f !== PVC_PROTECTION_FINALIZER)
    const metadata: ObjectMeta = { ...claim.metadata, finalizers }
    if (finalizers.length === 0) delete metadata.finalizers
    await this.write(claim, metadata)
    this.log.info({ claim: key }, 'deleted claim no longer in use; released')
  }

  /** A conflict throws, and the claim is looked at again with a fresh read. */
  private async write(claim: KubeObject, metadata: ObjectMeta): Promise<void> {
    const { object } = await this.o.registry.update(CLAIM, claim.metadata.namespace!, claim.metadata.name!, { ...claim, metadata }, WRITE)
    if (object.metadata.deletionTimestamp && !(object.metadata.finalizers ?? []).length) return
    this.o.claims.assume(object)
  }
}
