// Runs the planner's steps against the ContainerRuntime (STYLE.md §2): one executor per Step kind.

import { mkdir, readdir, rm, writeFile, rename, chmod, chown } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import type { KubeObject } from '../api/types.js'
import type { Logger } from '../lib/logger.js'
import type { ContainerRuntime, PullProgress } from './container-runtime.js'
import { ImagePullError } from './errors.js'
import { ensureBusyboxImage } from './pod-pause-image.js'
import type { VolumeRoot } from './pod-volumes.js'
import type { PodRuntimeState, Step } from './pod-planner.js'
import type { ProbeSpec } from './probes.js'
import { PullProgressTracker } from './pull-progress.js'

/** A pull under way says how far it got at most this often. */
const PULL_PROGRESS_INTERVAL_MS = 2_000

export interface ExecutorContext {
  runtime: ContainerRuntime
  /** The pod's directory on the host (emptyDir and configMap volumes live under it). */
  podDir: string
  /** The pod's directory on tmpfs for its secret volumes. */
  secretsDir: string
  /** The pod, when still desired (for events); undefined while removing. */
  pod?: KubeObject
  state: PodRuntimeState
  now(): number
  event(reason: string, message: string, options?: { type?: 'Normal' | 'Warning'; container?: string }): void
  startProbes(id: string, container: string, probes: ProbeSpec): Promise<void>
  /** How far the pull of `image` got (undefined: it ended), for the pod's status. */
  pullProgress(image: string, text: string | undefined): void
  stopProbes(id: string): void
  log: Logger
}

type Executors = { [K in Step['kind']]: (step: Extract<Step, { kind: K }>, ctx: ExecutorContext) => Promise<void> }

export const executors: Executors = {
  async ensurePauseImage(step, ctx) {
    await ensureBusyboxImage(ctx.runtime, step.image)
  },

  async pull(step, ctx) {
    ctx.event('Pulling', `Pulling image "${step.image}"`, { container: step.container })
    const tracker = new PullProgressTracker(PULL_PROGRESS_INTERVAL_MS)
    const startedAt = ctx.now()
    const onProgress = (p: PullProgress) => {
      const line = tracker.update(p, ctx.now())
      if (line) ctx.pullProgress(step.image, `Pulling image "${step.image}": ${line}`)
    }
    try {
      await ctx.runtime.pullImage(step.image, onProgress, step.auth)
    } catch (e) {
      if (step.bestEffort && e instanceof ImagePullError) return // offline: the local image will do
      throw e
    } finally {
      ctx.pullProgress(step.image, undefined)
    }
    delete ctx.state.pullFailures[step.image]
    const seconds = ((ctx.now() - startedAt) / 1000).toFixed(1)
    const size = tracker.text()
    ctx.event('Pulled', `Successfully pulled image "${step.image}" in ${seconds}s${size ? ` (${size})` : ''}`, { container: step.container })
  },

  async writeVolumes(step, ctx) {
    const rootDir = (root: VolumeRoot): string => (root === 'secrets' ? ctx.secretsDir : ctx.podDir)
    // The pod's secrets directory is owner-only; its volume directories keep the default mode, as a
    // container user must list the files it mounts.
    if (step.dirs.some((d) => d.root === 'secrets')) await ensurePrivateDir(ctx.secretsDir)
    for (const dir of step.dirs) await mkdir(join(rootDir(dir.root), dir.path), { recursive: true })
    // An earlier Bramble wrote secret volumes under the pod directory, on the SD card: they go.
    for (const dir of step.dirs) if (dir.root === 'secrets') await rm(join(ctx.podDir, 'volumes', dir.path), { recursive: true, force: true })
    ctx.state.podDir = true
    // As the kubelet makes them: directories 0755 with their parents, empty files 0644 in an existing directory.
    for (const h of step.hostPaths) {
      if (h.kind === 'directory') {
        await mkdir(h.path, { recursive: true, mode: 0o755 })
        // A PersistentVolume's directory: owned by the pod's fsGroup, or open to the container's user whoever it is (mkdir's mode passes the umask).
        if (h.group !== undefined) await chown(h.path, 0, h.group)
        if (h.mode !== undefined) await chmod(h.path, h.mode)
      } else await writeFile(h.path, '', { flag: 'a', mode: 0o644 })
    }
    const wanted = new Set(step.files.map((f) => join(rootDir(f.root), f.path)))
    for (const f of step.files) {
      const path = join(rootDir(f.root), f.path)
      await mkdir(dirname(path), { recursive: true })
      // Written beside, then renamed: a reader never sees half a file.
      const tmp = `${path}.bramble-tmp`
      await writeFile(tmp, Buffer.from(f.contentBase64, 'base64'), { mode: f.mode })
      await chmod(tmp, f.mode)
      await rename(tmp, path)
    }
    // Keys removed from a ConfigMap or Secret disappear from the volume.
    const fileDirs = new Set(step.files.map((f) => join(rootDir(f.root), f.volumeDir)))
    for (const dir of fileDirs) await removeStale(dir, wanted)
    ctx.state.volumesHash = step.hash
  },

  async create(step, ctx) {
    await ctx.runtime.create(step.spec)
    if (step.backoff) ctx.state.backoff[step.container] = step.backoff
    if (step.role !== 'sandbox') ctx.event('Created', `Created container ${step.container}`, { container: step.container })
  },

  async start(step, ctx) {
    await ctx.runtime.start(step.target)
    if (step.container !== 'POD') ctx.event('Started', `Started container ${step.container}`, { container: step.container })
  },

  async stop(step, ctx) {
    ctx.stopProbes(step.id)
    if (step.container !== 'POD') {
      const why = step.reason === 'Unhealthy' ? 'failed liveness probe, will be restarted' : step.reason === 'SpecChanged' ? 'definition changed, will be restarted' : ''
      ctx.event('Killing', `Stopping container ${step.container}${why ? `: Container ${step.container} ${why}` : ''}`, { container: step.container })
    }
    await ctx.runtime.stop(step.id, step.graceSeconds)
    ctx.state.unhealthy = ctx.state.unhealthy.filter((id) => id !== step.id)
  },

  async remove(step, ctx) {
    ctx.stopProbes(step.id)
    try {
      await ctx.runtime.remove(step.id)
    } catch (e) {
      // A dockerd stopped while it set a container up can leave it dead with its filesystem still
      // mounted ("device or resource busy"), and no removal succeeds. Dead, it runs nothing and
      // holds only its name (a new attempt has another): the pod goes on without it.
      const left = await ctx.runtime.inspect(step.id).catch(() => undefined)
      if (left?.state.status !== 'dead' && left?.state.status !== 'removing') throw e
      ctx.log.warn({ container: step.container, id: step.id, err: (e as Error).message }, 'the engine cannot remove a dead container; going on without it')
    }
  },

  async startProbes(step, ctx) {
    await ctx.startProbes(step.id, step.container, step.probes)
    ctx.state.probing = [...ctx.state.probing, step.id]
  },

  async stopProbes(step, ctx) {
    ctx.stopProbes(step.id)
    ctx.state.probing = ctx.state.probing.filter((id) => id !== step.id)
  },

  async removePodDir(_step, ctx) {
    await rm(ctx.podDir, { recursive: true, force: true })
    await rm(ctx.secretsDir, { recursive: true, force: true })
    ctx.state.podDir = false
  },

  async wait(step, ctx) {
    if (step.reason === 'CrashLoopBackOff') {
      ctx.event('BackOff', `Back-off restarting failed container ${step.container}`, { type: 'Warning', container: step.container })
    } else {
      const failure = step.image ? ctx.state.pullFailures[step.image] : undefined
      if (failure) failure.backingOff = true
      ctx.event('BackOff', `Back-off pulling image`, { type: 'Warning', container: step.container })
    }
  },
}

export async function executeStep(step: Step, ctx: ExecutorContext): Promise<void> {
  await (executors[step.kind] as (s: Step, c: ExecutorContext) => Promise<void>)(step, ctx)
}

/** Steps that change the engine or the disk: after them the pod is looked at again. */
export function changesState(step: Step): boolean {
  return step.kind !== 'wait' && step.kind !== 'startProbes' && step.kind !== 'stopProbes'
}

async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  await chmod(dir, 0o700)
}

async function removeStale(dir: string, wanted: Set<string>): Promise<void> {
  let entries
  try {
    entries = await readdir(dir, { withFileTypes: true, recursive: true })
  } catch {
    return
  }
  for (const e of entries) {
    if (!e.isFile()) continue
    const path = join(e.parentPath ?? (e as any).path, e.name)
    if (!wanted.has(path) && !relative(dir, path).startsWith('..')) await rm(path, { force: true })
  }
}
