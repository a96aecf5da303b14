// Image garbage collection on the node: every period, the image filesystem's usage against the
// thresholds (image-gc-planner.ts decides), the chosen images removed one by one, and Events on
// the Node saying what went and, when the disk stays full, how much could not be freed. The last
// pass's problem feeds the Node's DiskPressure condition until a pass finds room again.

import type { Clock } from '../lib/clock.js'
import type { DesiredPod } from './desired-pod.js'
import { MAX_REPORTED_IMAGES, type NodeImage } from './node-status.js'
import type { Logger } from '../lib/logger.js'
import type { ImageEngine, ImageInfo } from './image-engine.js'
import { planImageGc, type ImageGcThresholds } from './image-gc-planner.js'

export const DEFAULT_IMAGE_GC_PERIOD_MS = 60_000

export interface ImageGcOptions {
  images: ImageEngine
  thresholds: ImageGcThresholds
  /** Image names and ids the node's desired pods and the pause image use. */
  keep: () => Promise<ReadonlySet<string>> | ReadonlySet<string>
  /** An Event on this Node. */
  event: (reason: string, message: string, type: 'Normal' | 'Warning') => void
  /** The disk stays full (a message) or has room again (undefined). */
  onProblemChange?: (problem: string | undefined) => void
  /** The engine's images are not what the last pass listed (status.images changes). */
  onImagesChange?: () => void
  clock: Clock
  logger: Logger
  periodMs?: number
}

export interface ImageGcPassResult {
  removed: ImageInfo[]
  problem: string | undefined
}

export class ImageGc {
  /** Image id → when it was last seen in use by a container. */
  private readonly lastUsedAt = new Map<string, number>()
  private problemText: string | undefined
  private listed: NodeImage[] | undefined
  private timer?: { cancel(): void }
  private running: Promise<unknown> = Promise.resolve()
  private stopped = false
  private readonly log: Logger

  constructor(private readonly o: ImageGcOptions) {
    this.log = o.logger.child({ component: 'image-gc' })
  }

  /** A first pass at once (status.images), then one every period. */
  start(): void {
    void this.runOnce()
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'image garbage collection failed; will retry'))
      .finally(() => this.schedule())
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.timer?.cancel()
    await this.running.catch(() => {})
  }

  /** The engine's images as the last pass left them, largest first, for status.images; undefined before the first pass. */
  images(): NodeImage[] | undefined {
    return this.listed
  }

  /** Why the image filesystem stays full after the last pass; undefined while it has room. */
  problem(): string | undefined {
    return this.problemText
  }

  /** One pass now (passes never overlap). */
  runOnce(): Promise<ImageGcPassResult> {
    const pass = this.running.catch(() => {}).then(() => this.pass())
    this.running = pass
    return pass
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = this.o.clock.setTimeout(() => {
      void this.runOnce()
        .catch((err) => this.log.warn({ err: (err as Error).message }, 'image garbage collection failed; will retry'))
        .finally(() => this.schedule())
    }, this.o.periodMs ?? DEFAULT_IMAGE_GC_PERIOD_MS)
  }

  private async pass(): Promise<ImageGcPassResult> {
    const { images } = this.o
    const now = this.o.clock.now()
    const uses = await images.containerUses()
    for (const u of uses) {
      const at = u.running ? now : u.lastUsedAt
      if (at > (this.lastUsedAt.get(u.imageId) ?? 0)) this.lastUsedAt.set(u.imageId, at)
    }
    const [list, fs, keep] = await Promise.all([images.list(), images.filesystem(), this.o.keep()])
    const plan = planImageGc({ images: list, uses, keep, lastUsedAt: this.lastUsedAt, filesystem: fs, thresholds: this.o.thresholds })
    if (!plan.pressure) {
      this.setImages(list)
      this.setProblem(undefined)
      return { removed: [], problem: undefined }
    }
    this.log.info({ usedPercent: plan.usedPercent.toFixed(1), bytesToFree: plan.bytesToFree, candidates: plan.remove.length }, 'image filesystem over its high threshold; removing unused images')
    const removed: ImageInfo[] = []
    for (const image of plan.remove) {
      try {
        await images.remove(image)
        removed.push(image)
        this.lastUsedAt.delete(image.id)
      } catch (err) {
        // A container made since the plan uses it: it stays, the next pass looks again.
        this.log.warn({ image: image.tags[0] ?? image.id, err: (err as Error).message }, 'could not remove an image')
      }
    }
    const freed = removed.reduce((n, i) => n + i.sizeBytes, 0)
    if (removed.length > 0) {
      const names = removed.map((i) => i.tags.join(', ') || i.id.slice(0, 19))
      this.o.event('ImageGCRemoved', `removed ${removed.length} unused image${removed.length === 1 ? '' : 's'}, least recently used first (${mb(freed)}): ${names.join('; ')}`, 'Normal')
    }
    const gone = new Set(removed.map((i) => i.id))
    this.setImages(list.filter((i) => !gone.has(i.id)))
    const after = await images.filesystem()
    const usedAfter = after.totalBytes > 0 ? (100 * (after.totalBytes - after.freeBytes)) / after.totalBytes : 0
    if (usedAfter >= this.o.thresholds.highPercent) {
      const message = `the image filesystem ${fs.path} stays ${usedAfter.toFixed(1)}% full (high threshold ${this.o.thresholds.highPercent}%): freeing ${mb(plan.bytesToFree)} to reach ${this.o.thresholds.lowPercent}% needed unused images, and only ${mb(freed)} could go; the rest is held by images pods use`
      this.o.event('FreeDiskSpaceFailed', message, 'Warning')
      this.setProblem(message)
    } else {
      this.setProblem(undefined)
    }
    return { removed, problem: this.problemText }
  }

  private setImages(list: ImageInfo[]): void {
    const images = list
      .filter((i) => i.tags.length > 0)
      .sort((a, b) => b.sizeBytes - a.sizeBytes || a.id.localeCompare(b.id))
      .slice(0, MAX_REPORTED_IMAGES)
      .map((i) => ({ names: [...i.tags].sort(), sizeBytes: i.sizeBytes }))
    if (JSON.stringify(images) === JSON.stringify(this.listed)) return
    this.listed = images
    this.o.onImagesChange?.()
  }

  private setProblem(problem: string | undefined): void {
    if (problem === this.problemText) return
    this.problemText = problem
    this.o.onProblemChange?.(problem)
  }
}

/** The image names desired pods and the pause image use, with `:latest` added where no tag is given (as the engine names them). */
export function imagesInUse(pauseImage: string, desired: DesiredPod[]): Set<string> {
  const refs = new Set<string>()
  const add = (ref: string) => {
    refs.add(ref)
    const name = ref.split('@')[0]
    if (!ref.includes('@') && name.lastIndexOf(':') <= name.lastIndexOf('/')) refs.add(`${ref}:latest`)
  }
  add(pauseImage)
  for (const d of desired) for (const c of [...(d.pod.spec?.initContainers ?? []), ...(d.pod.spec?.containers ?? [])]) add(String(c.image))
  return refs
}

function mb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}
