// `bramble image load FILE.tar [--node N]... | --all` and `bramble image copy IMAGE --from N --to M`:
// images for sites without a registry, through the hub (src/api/image-transfer.ts has the flow).
// Prints one line per node, `NODE: loaded IMAGE...` or `NODE: failed: WHY`; exit 1 if any failed.

import { randomBytes } from 'node:crypto'
import { open, stat } from 'node:fs/promises'
import {
  IMAGE_ARCHIVES_PATH,
  IMAGE_CHUNK_BYTES,
  IMAGE_COPIES_PATH,
  IMAGE_LOADS_PATH,
  type ImageCopyRequest,
  type ImageLoadRequest,
  type ImageLoadResponse,
} from '../api/image-transfer.js'
import type { ClientContext } from './client-context.js'
import { CommandError, UsageError } from './errors.js'
import { ProgressBar } from './progress-bar.js'

export interface ImageLoadOptions {
  node?: string[]
  all?: boolean
}

/** The targets of `image load`, checked before anything is sent. */
export function loadTargets(options: ImageLoadOptions): Pick<ImageLoadRequest, 'nodes' | 'all'> {
  const nodes = options.node ?? []
  if (options.all && nodes.length > 0) throw new UsageError('image load takes --node or --all, not both')
  if (options.all) return { all: true }
  if (nodes.length === 0) throw new UsageError('image load needs the nodes to load on: --node NAME (repeatable) or --all for every Ready node')
  return { nodes }
}

export async function runImageLoad(ctx: ClientContext, file: string, options: ImageLoadOptions): Promise<void> {
  const targets = loadTargets(options)
  const size = await stat(file).then((s) => (s.isFile() ? s.size : -1), () => -1)
  if (size < 0) throw new UsageError(`${file} is not a file; give a \`docker save\` archive, e.g. docker save -o app.tar app:1`)
  const archive = randomBytes(16).toString('hex')
  await upload(ctx, file, archive, size)
  ctx.io.err(`uploaded ${file} (${(size / 1e6).toFixed(1)} MB); loading on ${targets.all ? 'every Ready node' : targets.nodes!.join(', ')}\n`)
  const res = await ctx.client.request('POST', IMAGE_LOADS_PATH, { body: { archive, size, ...targets } satisfies ImageLoadRequest })
  report(ctx, res.json as ImageLoadResponse, 'loaded')
}

export async function runImageCopy(ctx: ClientContext, image: string, options: { from?: string; to?: string[] }): Promise<void> {
  if (!options.from) throw new UsageError('image copy needs --from NODE: a node that has the image')
  if (!options.to?.length) throw new UsageError('image copy needs --to NODE (repeatable): the nodes that lack it')
  const body: ImageCopyRequest = { image, from: options.from, to: options.to }
  const res = await ctx.client.request('POST', IMAGE_COPIES_PATH, { body })
  report(ctx, res.json as ImageLoadResponse, 'has')
}

/** The archive in chunks, each PUT at its offset (a short request each, whatever the link). */
async function upload(ctx: ClientContext, file: string, archive: string, size: number): Promise<void> {
  const handle = await open(file, 'r')
  const bar = new ProgressBar(ctx.io)
  const mb = (bytes: number) => Math.round(bytes / 1e6)
  try {
    let offset = 0
    do {
      bar.update(mb(offset), Math.max(1, mb(size)), 'MB uploaded')
      const buffer = Buffer.alloc(Math.min(IMAGE_CHUNK_BYTES, size - offset))
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, offset)
      await ctx.client.request('PUT', IMAGE_ARCHIVES_PATH, { body: buffer.subarray(0, bytesRead), contentType: 'application/x-tar', query: { id: archive, offset: String(offset) } })
      offset += bytesRead
    } while (offset < size)
  } finally {
    bar.clear()
    await handle.close()
  }
}

function report(ctx: ClientContext, response: ImageLoadResponse, verb: string): void {
  const failed = response.results.filter((r) => !r.ok)
  for (const r of response.results) {
    if (r.ok) ctx.io.out(`${r.node}: ${verb} ${(r.images ?? []).join(', ')}\n`)
    else ctx.io.out(`${r.node}: failed: ${r.error}\n`)
  }
  if (failed.length > 0) throw new CommandError(`${failed.length} of ${response.results.length} nodes did not get the image: ${failed.map((r) => r.node).join(', ')}`)
}
