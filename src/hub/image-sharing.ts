// Images shared between nodes where no registry is: a pod whose image is not on its node and
// cannot be pulled there (pull policy Never: ErrImageNeverPull; IfNotPresent: ErrImagePull or
// ImagePullBackOff) gets it from a Ready node that reports having it in status.images, through
// the hub (the `image copy` path). One copy per image and node at a time; after a failed one the
// next waits out a back-off. Events on the pod say what happened.

import type { ImageNodeResult } from '../api/image-transfer.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { EventRecorder } from './event-recorder.js'
import type { Informer } from './informer.js'

const WAITING_FOR_IMAGE = new Set(['ErrImageNeverPull', 'ErrImagePull', 'ImagePullBackOff'])
/** How long after a copy of an image to a node the next one may start. */
export const DEFAULT_SHARE_RETRY_MS = 60_000

export interface ImageSharingOptions {
  pods: Informer
  nodes: Informer
  copy: (image: string, from: string, to: string[]) => Promise<ImageNodeResult[]>
  events: EventRecorder
  clock: Clock
  logger: Logger
  retryMs?: number
}

export class ImageSharing {
  private readonly inFlight = new Set<string>()
  private readonly lastTry = new Map<string, number>()
  private readonly log: Logger

  constructor(private readonly o: ImageSharingOptions) {
    this.log = o.logger.child({ component: 'image-sharing' })
  }

  /** Registers with the pod informer: call before it starts. */
  start(): void {
    this.o.pods.onChange((type, pod) => {
      if (type !== 'DELETED') this.look(pod)
    })
  }

  private look(pod: KubeObject): void {
    const node = pod.spec?.nodeName as string | undefined
    if (!node || pod.metadata.deletionTimestamp) return
    const specs: any[] = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]
    const statuses: any[] = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])]
    for (const status of statuses) {
      if (!WAITING_FOR_IMAGE.has(status?.state?.waiting?.reason)) continue
      const spec = specs.find((c) => c.name === status.name)
      if (!spec || pullsAlways(spec)) continue
      const image = String(spec.image)
      const key = `${image}\0${node}`
      const last = this.lastTry.get(key)
      if (this.inFlight.has(key) || (last !== undefined && this.o.clock.now() - last < (this.o.retryMs ?? DEFAULT_SHARE_RETRY_MS))) continue
      const source = this.sourceFor(image, node)
      if (!source) continue
      this.inFlight.add(key)
      this.lastTry.set(key, this.o.clock.now())
      void this.share(pod, image, source, node).finally(() => this.inFlight.delete(key))
    }
  }

  /** A Ready node other than `lacking` whose status.images names the image. */
  private sourceFor(image: string, lacking: string): string | undefined {
    const names = engineNames(image)
    const has = (n: KubeObject) => (n.status?.images ?? []).some((i: any) => Array.isArray(i?.names) && i.names.some((name: unknown) => names.has(String(name))))
    return this.o.nodes
      .list()
      .filter((n) => n.metadata.name !== lacking && isReady(n) && has(n))
      .map((n) => n.metadata.name!)
      .sort()[0]
  }

  private async share(pod: KubeObject, image: string, from: string, to: string): Promise<void> {
    await this.o.events.record(pod, 'Normal', 'ImageCopying', `image "${image}" is not on node ${to} and cannot be pulled there: copying it from node ${from} through the hub`)
    try {
      const results = await this.o.copy(image, from, [to])
      const failed = results.filter((r) => !r.ok)
      if (failed.length === 0) {
        this.log.info({ image, from, to }, 'copied an image between nodes')
        await this.o.events.record(pod, 'Normal', 'ImageCopied', `image "${image}" copied from node ${from} to node ${to}`)
      } else {
        await this.o.events.record(pod, 'Warning', 'ImageCopyFailed', `could not copy image "${image}" from node ${from} to node ${to}: ${failed.map((r) => `${r.node}: ${r.error}`).join('; ')}`)
      }
    } catch (err) {
      this.log.warn({ image, from, to, err: (err as Error).message }, 'image copy failed')
    }
  }
}

/** The names the engine lists an image reference under (`busybox` is `busybox:latest`). */
function engineNames(ref: string): Set<string> {
  const name = ref.split('@')[0]!
  const tagged = ref.includes('@') || name.lastIndexOf(':') > name.lastIndexOf('/')
  return new Set(tagged ? [ref] : [ref, `${ref}:latest`])
}

/** Kubernetes' default pull policy: Always for `:latest` or no tag (such a pod pulls, it never waits for a copy). */
function pullsAlways(container: any): boolean {
  if (container.imagePullPolicy) return container.imagePullPolicy === 'Always'
  const image = String(container.image)
  if (image.includes('@')) return false
  const name = image.split('@')[0]!
  return name.lastIndexOf(':') <= name.lastIndexOf('/') || name.endsWith(':latest')
}

function isReady(node: KubeObject): boolean {
  return (node.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')
}
