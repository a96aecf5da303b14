// The ImageEngine port: what the agent does with whole images besides pulling them (image-rpc.ts
// loads and saves archives, image-gc.ts lists and removes). The real adapter is on the Docker
// Engine API through dockerode; its test runs against a real dockerd.

import type Docker from 'dockerode'
import { statfs } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import type { ContainerRuntime } from './container-runtime.js'
import { DockerRuntime } from './docker-runtime.js'
import { ContainerRuntimeError, NotImplementedError } from './errors.js'

export interface ImageInfo {
  /** sha256:... */
  id: string
  /** `repo:tag` names; empty for an untagged (dangling) image. */
  tags: string[]
  sizeBytes: number
  /** ms since the epoch. */
  createdAt: number
}

export interface ContainerImageUse {
  imageId: string
  running: boolean
  /** When a container of the image last started or stopped (ms since the epoch), 0 when never. */
  lastUsedAt: number
}

export interface ImageEngine {
  /** `docker load`: the names of the images the archive held. */
  load(archive: Readable): Promise<string[]>
  /** `docker save` of one image, as a tar stream. */
  save(ref: string): Promise<Readable>
  list(): Promise<ImageInfo[]>
  /** Every container on the engine (any cluster's or none), as far as image use goes. */
  containerUses(): Promise<ContainerImageUse[]>
  /** Removes an image (each of its names, then its layers); one a container uses is refused by the engine (never forced). */
  remove(image: ImageInfo): Promise<void>
  /** Bytes free and in all on the filesystem that holds the engine's images. */
  filesystem(): Promise<{ freeBytes: number; totalBytes: number; path: string }>
}

export class DockerImageEngine implements ImageEngine {
  constructor(private readonly docker: Docker, private readonly statfs: (path: string) => Promise<{ bavail: number; blocks: number; bsize: number }>) {}

  async load(archive: Readable): Promise<string[]> {
    let stream: NodeJS.ReadableStream
    try {
      stream = await this.docker.loadImage(archive, { quiet: true })
    } catch (e) {
      throw new ContainerRuntimeError('load image archive', 'into the engine', { cause: e })
    }
    const images: string[] = []
    let failure: string | undefined
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null) => (err ? reject(err) : resolve()),
        (event: any) => {
          if (event?.error) failure = String(event.error)
          const loaded = /^Loaded image(?: ID)?: (.+)$/m.exec(String(event?.stream ?? '').trim())
          if (loaded) images.push(loaded[1].trim())
        },
      )
    }).catch((e) => {
      throw new ContainerRuntimeError('load image archive', 'into the engine', { cause: e })
    })
    if (failure) throw new ContainerRuntimeError('load image archive', 'into the engine', { cause: new Error(failure) })
    if (images.length === 0) throw new ContainerRuntimeError('load image archive', 'into the engine', { cause: new Error('the engine loaded no image from it (is it a `docker save` archive?)') })
    return images
  }

  async save(ref: string): Promise<Readable> {
    try {
      await this.docker.getImage(ref).inspect()
      return (await this.docker.getImage(ref).get()) as unknown as Readable
    } catch (e) {
      throw new ContainerRuntimeError('save image', ref, { cause: e })
    }
  }

  async list(): Promise<ImageInfo[]> {
    const images = await this.docker.listImages({ all: false }).catch((e) => {
      throw new ContainerRuntimeError('list images', 'of the engine', { cause: e })
    })
    return images.map((i) => ({
      id: i.Id,
      tags: (i.RepoTags ?? []).filter((t) => t !== '<none>:<none>'),
      sizeBytes: i.Size,
      createdAt: i.Created * 1000,
    }))
  }

  async containerUses(): Promise<ContainerImageUse[]> {
    const summaries = await this.docker.listContainers({ all: true }).catch((e) => {
      throw new ContainerRuntimeError('list containers', 'of the engine', { cause: e })
    })
    const uses: ContainerImageUse[] = []
    for (const s of summaries) {
      const c = await this.docker.getContainer(s.Id).inspect().catch(() => undefined)
      if (!c) continue
      const times = [c.State.StartedAt, c.State.FinishedAt, c.Created].map((t) => (t && !t.startsWith('0001-') ? Date.parse(t) : 0))
      uses.push({ imageId: c.Image, running: c.State.Running || c.State.Restarting || c.State.Paused, lastUsedAt: Math.max(0, ...times.filter(Number.isFinite)) })
    }
    return uses
  }

  async remove(image: ImageInfo): Promise<void> {
    // By name, one at a time: removing by id an image with several names is refused without force.
    for (const ref of image.tags.length > 0 ? image.tags : [image.id]) {
      try {
        await this.docker.getImage(ref).remove({ force: false, noprune: false })
      } catch (e) {
        if ((e as { statusCode?: number }).statusCode === 404) continue
        throw new ContainerRuntimeError('remove image', ref, { cause: e })
      }
    }
  }

  async filesystem(): Promise<{ freeBytes: number; totalBytes: number; path: string }> {
    const info = await this.docker.info().catch((e) => {
      throw new ContainerRuntimeError('read engine info', 'for its image filesystem', { cause: e })
    })
    const path = String(info.DockerRootDir ?? '/var/lib/docker')
    const s = await this.statfs(path)
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize, path }
  }
}

/** The engine of the agent's runtime: Docker's, or one that refuses every call (a fake runtime in tests). */
export function imageEngine(runtime: ContainerRuntime): ImageEngine {
  if (runtime instanceof DockerRuntime) return new DockerImageEngine(runtime.docker, (path) => statfs(path))
  const refuse = (operation: string) => () => Promise.reject(new NotImplementedError(operation))
  return { load: refuse('image load'), save: refuse('image save'), list: refuse('image list'), containerUses: refuse('container image uses'), remove: refuse('image remove'), filesystem: refuse('image filesystem') }
}
