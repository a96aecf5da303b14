// Which images to remove when the image filesystem fills (pure, STYLE.md §2), as the kubelet's
// image garbage collection decides it: nothing while usage is below the high threshold; above it,
// enough bytes to bring usage down to the low threshold, least recently used images first. An
// image any container uses (running or stopped) or a desired pod names is never a candidate.

import type { ContainerImageUse, ImageInfo } from './image-engine.js'

export interface ImageGcThresholds {
  /** Percent of the filesystem in use at which collection starts (kubelet's imageGCHighThresholdPercent, default 85). */
  highPercent: number
  /** Percent of the filesystem in use collection brings it down to (imageGCLowThresholdPercent, default 80). */
  lowPercent: number
}

export const DEFAULT_IMAGE_GC: ImageGcThresholds = { highPercent: 85, lowPercent: 80 }

export interface ImageGcInput {
  images: ImageInfo[]
  uses: ContainerImageUse[]
  /** Image names or ids the node's desired pods (and the pause image) use: kept even with no container now. */
  keep: ReadonlySet<string>
  /** When each image id was last seen in use (ms since the epoch); an image never seen in use counts from its creation. */
  lastUsedAt: ReadonlyMap<string, number>
  filesystem: { freeBytes: number; totalBytes: number }
  thresholds: ImageGcThresholds
}

export interface ImageGcPlan {
  /** Usage is at or above the high threshold. */
  pressure: boolean
  usedPercent: number
  /** Bytes to free to reach the low threshold (0 without pressure). */
  bytesToFree: number
  /** Oldest use first. */
  remove: ImageInfo[]
  /** Bytes the removable images do not cover (0 when they are enough). */
  shortfallBytes: number
}

/** Problems of a pair of thresholds, each naming its field; empty when they are usable. */
export function imageGcThresholdProblems(t: ImageGcThresholds): string[] {
  const problems: string[] = []
  for (const [field, value] of [['highPercent', t.highPercent], ['lowPercent', t.lowPercent]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 100) problems.push(`${field}: must be a whole percent from 0 to 100, got ${value}`)
  }
  if (problems.length === 0 && t.lowPercent >= t.highPercent) problems.push(`lowPercent (${t.lowPercent}) must be below highPercent (${t.highPercent})`)
  return problems
}

export function planImageGc(input: ImageGcInput): ImageGcPlan {
  const { freeBytes, totalBytes } = input.filesystem
  const usedBytes = Math.max(0, totalBytes - freeBytes)
  const usedPercent = totalBytes > 0 ? (100 * usedBytes) / totalBytes : 0
  if (totalBytes <= 0 || usedPercent < input.thresholds.highPercent) return { pressure: false, usedPercent, bytesToFree: 0, remove: [], shortfallBytes: 0 }

  const bytesToFree = Math.ceil(usedBytes - (input.thresholds.lowPercent / 100) * totalBytes)
  const inUse = new Set(input.uses.map((u) => u.imageId))
  const candidates = input.images
    .filter((i) => !inUse.has(i.id) && !input.keep.has(i.id) && !i.tags.some((t) => input.keep.has(t)))
    .map((i) => ({ image: i, lastUsedAt: input.lastUsedAt.get(i.id) ?? i.createdAt }))
    .sort((a, b) => a.lastUsedAt - b.lastUsedAt || a.image.id.localeCompare(b.image.id))
  const remove: ImageInfo[] = []
  let freed = 0
  for (const c of candidates) {
    if (freed >= bytesToFree) break
    remove.push(c.image)
    freed += c.image.sizeBytes
  }
  return { pressure: true, usedPercent, bytesToFree, remove, shortfallBytes: Math.max(0, bytesToFree - freed) }
}
