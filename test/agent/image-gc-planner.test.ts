// Image garbage collection's decision: when, how much, which images first, which never.

import t from 'tap'
import { imageGcThresholdProblems, planImageGc, type ImageGcInput } from '../../src/agent/image-gc-planner.js'
import type { ImageInfo } from '../../src/agent/image-engine.js'
import { imagesInUse } from '../../src/agent/image-gc.js'

const MB = 1_000_000
const image = (id: string, sizeMb: number, createdAt: number, tags = [`${id}:1`]): ImageInfo => ({ id: `sha256:${id}`, tags, sizeBytes: sizeMb * MB, createdAt })

function input(over: Partial<ImageGcInput>): ImageGcInput {
  return {
    images: [image('old', 30, 100), image('mid', 30, 200), image('new', 30, 300)],
    uses: [],
    keep: new Set(),
    lastUsedAt: new Map(),
    filesystem: { freeBytes: 100 * MB, totalBytes: 1000 * MB },
    thresholds: { highPercent: 85, lowPercent: 80 },
    ...over,
  }
}

t.test('below the high threshold nothing is removed (the do-nothing case)', async (t) => {
  const plan = planImageGc(input({ filesystem: { freeBytes: 160 * MB, totalBytes: 1000 * MB } }))
  t.same(plan, { pressure: false, usedPercent: 84, bytesToFree: 0, remove: [], shortfallBytes: 0 })
})

t.test('at or above the high threshold, least recently used first until the low threshold is reached', async (t) => {
  // 90% used, low 80%: 100 MB to free.
  const lastUsedAt = new Map([['sha256:old', 5_000], ['sha256:mid', 1_000]])
  const plan = planImageGc(input({ lastUsedAt, images: [image('old', 60, 100), image('mid', 80, 200), image('new', 30, 300)] }))
  t.equal(plan.pressure, true)
  t.equal(plan.bytesToFree, 100 * MB)
  t.same(plan.remove.map((i) => i.id), ['sha256:new', 'sha256:mid'], 'never-used "new" counts from its creation (300), then mid (used at 1000); old, used last, stays')
  t.equal(plan.shortfallBytes, 0)
})

t.test('images a container uses, running or stopped, and those desired pods name are never removed', async (t) => {
  const plan = planImageGc(input({
    uses: [{ imageId: 'sha256:old', running: true, lastUsedAt: 1 }, { imageId: 'sha256:mid', running: false, lastUsedAt: 1 }],
    keep: new Set(['new:1']),
  }))
  t.same(plan.remove, [])
  t.equal(plan.shortfallBytes, 100 * MB, 'the disk stays full: all of it is a shortfall')
})

t.test('a pod that names an image by id keeps it too; what is removable but not enough is a shortfall', async (t) => {
  const plan = planImageGc(input({ keep: new Set(['sha256:old']) }))
  t.same(plan.remove.map((i) => i.id), ['sha256:mid', 'sha256:new'])
  t.equal(plan.shortfallBytes, 40 * MB)
})

t.test('thresholds are whole percents with low below high, each problem naming its field', async (t) => {
  t.same(imageGcThresholdProblems({ highPercent: 85, lowPercent: 80 }), [])
  t.same(imageGcThresholdProblems({ highPercent: 101, lowPercent: 2.5 }), ['highPercent: must be a whole percent from 0 to 100, got 101', 'lowPercent: must be a whole percent from 0 to 100, got 2.5'])
  t.same(imageGcThresholdProblems({ highPercent: 80, lowPercent: 80 }), ['lowPercent (80) must be below highPercent (80)'])
})

t.test("the images kept: the pause image and every desired pod's, named as the engine names them", async (t) => {
  const pod = (images: string[]) => ({ pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { initContainers: [{ name: 'i', image: images[0] }], containers: images.slice(1).map((image, n) => ({ name: `c${n}`, image })) } }, configMaps: {}, secrets: {} }) as any
  const keep = imagesInUse('bramble/pause:1', [pod(['busybox', '127.0.0.1:5000/app:2', 'registry.local:5000/tool', 'app@sha256:abc'])])
  t.same([...keep].sort(), ['127.0.0.1:5000/app:2', 'app@sha256:abc', 'bramble/pause:1', 'busybox', 'busybox:latest', 'registry.local:5000/tool', 'registry.local:5000/tool:latest'])
})
