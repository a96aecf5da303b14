// An in-memory ContainerRuntime for planner, executor and reconciler tests. It keeps state like an
// engine would, runs no processes (a container runs until stopped or `exit()` is called), and
// throws NotImplementedError for what it does not model, so no test passes over it silently.

import { randomBytes } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import type {
  ContainerInfo,
  ContainerRuntime,
  ContainerSpec,
  ExecResult,
  LogOptions,
  PullProgress,
  RunningContainer,
  RuntimeEvent,
} from '../../src/agent/container-runtime.js'
import { ContainerNotFoundError, ContainerRuntimeError, ImagePullError, NotImplementedError } from '../../src/agent/errors.js'
import type { Clock } from '../../src/lib/clock.js'

interface FakeContainer {
  info: ContainerInfo
  spec: ContainerSpec
  waiters: Array<(r: { exitCode: number }) => void>
}

export class FakeRuntime implements ContainerRuntime {
  readonly containers = new Map<string, FakeContainer>()
  readonly images = new Map<string, string>()
  /** Images a pull can fetch. */
  readonly registry = new Set<string>()
  readonly volumes = new Map<string, Record<string, string>>()
  /** Every call, in order, for tests that check what was done. */
  readonly calls: string[] = []
  /** Answers exec calls; unset means exec is not implemented. */
  execHandler?: (container: ContainerInfo, cmd: string[]) => ExecResult
  private listeners: Array<{ labels: Record<string, string>; fn: (e: RuntimeEvent) => void }> = []

  constructor(private readonly clock: Clock = { now: () => Date.now(), monotonic: () => performance.now(), setTimeout: () => { throw new NotImplementedError('setTimeout') } }) {}

  addImage(ref: string): void {
    this.images.set(ref, `sha256:${randomBytes(32).toString('hex')}`)
  }

  /** Simulates the container's process exiting. */
  exit(id: string, exitCode: number, options: { oomKilled?: boolean } = {}): void {
    const c = this.get(id)
    c.info.state = { ...c.info.state, status: 'exited', exitCode, finishedAt: this.iso(), oomKilled: options.oomKilled ?? false }
    this.emit(c, 'die')
    for (const w of c.waiters.splice(0)) w({ exitCode })
  }

  byName(name: string): ContainerInfo | undefined {
    for (const c of this.containers.values()) if (c.info.name === name) return c.info
    return undefined
  }

  specOf(id: string): ContainerSpec {
    return this.get(id).spec
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    this.calls.push('list')
    return [...this.containers.values()].filter((c) => matches(c.info.labels, labels)).map((c) => structuredClone(c.info))
  }

  async listRunning(labels: Record<string, string>): Promise<RunningContainer[]> {
    this.calls.push('listRunning')
    return [...this.containers.values()].filter((c) => c.info.state.status === 'running' && matches(c.info.labels, labels)).map((c) => ({ id: c.info.id, name: c.info.name, labels: { ...c.info.labels } }))
  }

  async inspect(id: string): Promise<ContainerInfo> {
    this.calls.push(`inspect ${id}`)
    return structuredClone(this.get(id).info)
  }

  async imageId(ref: string): Promise<string | undefined> {
    return this.images.get(ref)
  }

  async pullImage(ref: string, onProgress?: (p: PullProgress) => void): Promise<void> {
    this.calls.push(`pull ${ref}`)
    if (!this.registry.has(ref)) throw new ImagePullError(ref, 'manifest unknown')
    onProgress?.({ status: 'Downloading', current: 1, total: 1 })
    this.addImage(ref)
  }

  async importImage(_tar: Readable, _ref: string): Promise<void> {
    throw new NotImplementedError('importImage')
  }

  async create(spec: ContainerSpec): Promise<string> {
    this.calls.push(`create ${spec.name}`)
    const imageId = this.images.get(spec.image)
    if (!imageId) throw new ContainerRuntimeError('create container', spec.name, { cause: new Error(`No such image: ${spec.image}`) })
    for (const c of this.containers.values()) {
      if (c.info.name === spec.name) throw new ContainerRuntimeError('create container', spec.name, { cause: new Error('Conflict: name in use') })
    }
    if (spec.networkMode?.startsWith('container:')) this.resolve(spec.networkMode.slice('container:'.length))
    const id = randomBytes(32).toString('hex')
    this.containers.set(id, {
      spec: structuredClone(spec),
      waiters: [],
      info: {
        id,
        name: spec.name,
        image: spec.image,
        imageId,
        labels: { ...spec.labels },
        state: { status: 'created', exitCode: 0, oomKilled: false },
      },
    })
    return id
  }

  async start(id: string): Promise<void> {
    this.calls.push(`start ${id}`)
    const c = this.get(id)
    if (c.info.state.status === 'running') return
    const mode = c.spec.networkMode
    if (mode?.startsWith('container:')) {
      const owner = this.resolve(mode.slice('container:'.length))
      if (owner.info.state.status !== 'running') throw new ContainerRuntimeError('start container', id, { cause: new Error('joined container is not running') })
    }
    const ownNetwork = !mode || (mode !== 'host' && mode !== 'none' && !mode.startsWith('container:'))
    c.info.state = { status: 'running', exitCode: 0, startedAt: this.iso(), oomKilled: false }
    c.info.ipAddress = ownNetwork ? `172.17.0.${2 + (this.containers.size % 250)}` : undefined
    this.emit(c, 'start')
  }

  async stop(id: string, _graceSeconds: number): Promise<void> {
    this.calls.push(`stop ${id}`)
    const c = this.get(id)
    if (c.info.state.status !== 'running') return
    this.exit(id, 143)
  }

  async remove(id: string): Promise<void> {
    this.calls.push(`remove ${id}`)
    const c = this.containers.get(id)
    if (!c) return
    this.containers.delete(id)
    this.emit(c, 'destroy')
  }

  async exec(id: string, cmd: string[]): Promise<ExecResult> {
    const c = this.get(id)
    if (!this.execHandler) throw new NotImplementedError('exec')
    if (c.info.state.status !== 'running') throw new ContainerRuntimeError('exec in container', id, { cause: new Error('not running') })
    return this.execHandler(c.info, cmd)
  }

  async logs(_id: string, _options?: LogOptions): Promise<Readable> {
    throw new NotImplementedError('logs')
  }

  async wait(id: string): Promise<{ exitCode: number }> {
    const c = this.get(id)
    if (c.info.state.status !== 'running' && c.info.state.status !== 'created') return { exitCode: c.info.state.exitCode }
    return new Promise((resolve) => c.waiters.push(resolve))
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    this.volumes.set(name, { ...labels })
  }

  async removeVolume(name: string): Promise<void> {
    this.volumes.delete(name)
  }

  async watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void): Promise<{ close(): void }> {
    const entry = { labels, fn: onEvent }
    this.listeners.push(entry)
    return { close: () => void (this.listeners = this.listeners.filter((l) => l !== entry)) }
  }

  private emit(c: FakeContainer, action: string): void {
    for (const l of this.listeners) if (matches(c.info.labels, l.labels)) l.fn({ id: c.info.id, action, labels: { ...c.info.labels } })
  }

  private get(id: string): FakeContainer {
    const c = this.containers.get(id)
    if (!c) throw new ContainerNotFoundError(id)
    return c
  }

  private resolve(idOrName: string): FakeContainer {
    for (const c of this.containers.values()) if (c.info.id === idOrName || c.info.name === idOrName) return c
    throw new ContainerNotFoundError(idOrName)
  }

  private iso(): string {
    return new Date(this.clock.now()).toISOString()
  }
}

function matches(have: Record<string, string>, want: Record<string, string>): boolean {
  return Object.entries(want).every(([k, v]) => have[k] === v)
}

/** A stream that ends at once: for fakes that serve empty logs. */
export function emptyStream(): Readable {
  const s = new PassThrough()
  s.end()
  return s
}
