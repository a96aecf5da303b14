// A ContainerRuntime for benchmarks only: containers live in memory, start at once and run until
// stopped, so one process can play a thousand nodes for bench/sched. It runs nothing, which is why
// it lives in bench/ and nothing in src/ imports it: the one place Bramble allows a runtime that
// does not run containers. It keeps state like an engine would and passes the ContainerRuntime
// contract (test/bench/simulated-runtime.test.ts); exec, which it cannot fake honestly, throws.
//
// Every call answers on a later turn of the event loop, as an engine's answer over its socket does.
// Answered at once, a thousand simulated nodes' pod passes ran as one chain of promise callbacks,
// and the sockets of every node in the process waited for it: a heartbeat stamped at the start of
// a 2-second chain reached the hub 2 seconds late (bench/fleet's lag, measured at the hub, was the
// simulator's stall, which a real fleet, a process per node, does not share). The runtimes of one
// process also share a budget of 25 ms of answers per turn: answers all due on one
// turn (10,000 nodes starting pods) ran for seconds before the loop polled again, and a socket's
// next write waits for the previous one's completion, which comes from that poll.

import { createHash, randomBytes } from 'node:crypto'
import { PassThrough, type Readable } from 'node:stream'
import { setImmediate as nextTurn } from 'node:timers/promises'
import type { ContainerInfo, ContainerRuntime, ContainerSpec, ExecResult, LogOptions, RunningContainer, RuntimeEvent } from '../src/agent/container-runtime.js'
import { ContainerNotFoundError, ContainerRuntimeError, ImagePullError, NotImplementedError } from '../src/agent/errors.js'
import { TurnBudget } from '../src/lib/turn-budget.js'

/** Milliseconds of answers (and what the callers do with them) per turn, over every runtime in the process. */
const ANSWER_MS_PER_TURN = 25
const answerTurns = new TurnBudget(ANSWER_MS_PER_TURN)

/**
 * Resolves on a later turn, once the process's budget for answers allows. The answer's turn is over
 * once the caller has done what it does with it up to its next wait (a tick after this promise
 * callback chain): a release at once would let every answer due start before any of that ran.
 */
async function engineAnswer(): Promise<void> {
  await nextTurn()
  process.nextTick(await answerTurns.enter())
}

export interface SimulatedRuntimeOptions {
  /** Images the node already holds (the pause image, typically). */
  images?: string[]
  /** Which references a pull can fetch; all of them by default. */
  pullable?: (ref: string) => boolean
  /** This node's pod IPs are `<prefix>.<n>`, e.g. `10.42.7`. */
  ipPrefix?: string
}

interface SimulatedContainer {
  info: ContainerInfo
  networkMode?: string
  waiters: Array<(r: { exitCode: number }) => void>
}

export class SimulatedRuntime implements ContainerRuntime {
  private readonly containers = new Map<string, SimulatedContainer>()
  private readonly images = new Map<string, string>()
  private readonly listeners = new Set<{ labels: Record<string, string>; fn: (e: RuntimeEvent) => void }>()
  private readonly volumes = new Map<string, Record<string, string>>()
  private nextIp = 2

  constructor(private readonly o: SimulatedRuntimeOptions = {}) {
    for (const ref of o.images ?? []) this.addImage(ref)
  }

  /** How many containers are running now. */
  get running(): number {
    let n = 0
    for (const c of this.containers.values()) if (c.info.state.status === 'running') n++
    return n
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    await engineAnswer()
    const out: ContainerInfo[] = []
    for (const c of this.containers.values()) if (matches(c.info.labels, labels)) out.push(copy(c.info))
    return out
  }

  async listRunning(labels: Record<string, string>): Promise<RunningContainer[]> {
    await engineAnswer()
    const out: RunningContainer[] = []
    for (const c of this.containers.values()) if (c.info.state.status === 'running' && matches(c.info.labels, labels)) out.push({ id: c.info.id, name: c.info.name, labels: { ...c.info.labels } })
    return out
  }

  async inspect(id: string): Promise<ContainerInfo> {
    await engineAnswer()
    return copy(this.get(id).info)
  }

  async imageId(ref: string): Promise<string | undefined> {
    await engineAnswer()
    return this.images.get(ref)
  }

  async pullImage(ref: string): Promise<void> {
    await engineAnswer()
    if (!(this.o.pullable ?? (() => true))(ref)) throw new ImagePullError(ref, 'simulated registry: manifest unknown')
    this.addImage(ref)
  }

  async importImage(rootfsTar: Readable, ref: string): Promise<void> {
    await engineAnswer()
    for await (const _chunk of rootfsTar) {
      // drained: the image is recorded, its content is not kept
    }
    this.addImage(ref)
  }

  async create(spec: ContainerSpec): Promise<string> {
    await engineAnswer()
    const imageId = this.images.get(spec.image)
    if (!imageId) throw new ContainerRuntimeError('create container', spec.name, { cause: new Error(`No such image: ${spec.image}`) })
    for (const c of this.containers.values()) {
      if (c.info.name === spec.name) throw new ContainerRuntimeError('create container', spec.name, { cause: new Error('Conflict: the container name is in use') })
    }
    if (spec.networkMode?.startsWith('container:')) this.resolve(spec.networkMode.slice('container:'.length))
    const id = randomBytes(32).toString('hex')
    this.containers.set(id, {
      networkMode: spec.networkMode,
      waiters: [],
      info: { id, name: spec.name, image: spec.image, imageId, labels: { ...spec.labels }, state: { status: 'created', exitCode: 0, oomKilled: false } },
    })
    this.emit(id, 'create')
    return id
  }

  async start(id: string): Promise<void> {
    await engineAnswer()
    const c = this.resolve(id)
    if (c.info.state.status === 'running') return
    const mode = c.networkMode
    if (mode?.startsWith('container:') && this.resolve(mode.slice('container:'.length)).info.state.status !== 'running') {
      throw new ContainerRuntimeError('start container', id, { cause: new Error('the container whose network it joins is not running') })
    }
    const ownNetwork = mode !== 'host' && mode !== 'none' && !mode?.startsWith('container:')
    c.info.state = { status: 'running', exitCode: 0, startedAt: new Date().toISOString(), oomKilled: false }
    if (ownNetwork) c.info.ipAddress = `${this.o.ipPrefix ?? '10.42.0'}.${this.nextIp++ % 254 || 254}`
    this.emit(c.info.id, 'start')
  }

  async stop(id: string, _graceSeconds: number): Promise<void> {
    await engineAnswer()
    const c = this.get(id)
    if (c.info.state.status !== 'running') return
    c.info.state = { ...c.info.state, status: 'exited', exitCode: 143, finishedAt: new Date().toISOString() }
    this.emit(id, 'die')
    for (const w of c.waiters.splice(0)) w({ exitCode: 143 })
  }

  async remove(id: string): Promise<void> {
    await engineAnswer()
    if (!this.containers.has(id)) return
    this.emit(id, 'destroy')
    this.containers.delete(id)
  }

  async exec(_id: string, _cmd: string[]): Promise<ExecResult> {
    await engineAnswer()
    throw new NotImplementedError('exec in a simulated container')
  }

  async logs(id: string, _options?: LogOptions): Promise<Readable> {
    await engineAnswer()
    const c = this.get(id)
    const stream = new PassThrough()
    stream.end(`simulated container ${c.info.name}: it runs no process and writes no output\n`)
    return stream
  }

  async wait(id: string): Promise<{ exitCode: number }> {
    await engineAnswer()
    const c = this.get(id)
    if (c.info.state.status !== 'running' && c.info.state.status !== 'created') return { exitCode: c.info.state.exitCode }
    return new Promise((resolve) => c.waiters.push(resolve))
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await engineAnswer()
    this.volumes.set(name, { ...labels })
  }

  async removeVolume(name: string): Promise<void> {
    await engineAnswer()
    this.volumes.delete(name)
  }

  async watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void): Promise<{ close(): void }> {
    await engineAnswer()
    const entry = { labels, fn: onEvent }
    this.listeners.add(entry)
    return { close: () => void this.listeners.delete(entry) }
  }

  private addImage(ref: string): void {
    if (!this.images.has(ref)) this.images.set(ref, `sha256:${createHash('sha256').update(ref).digest('hex')}`)
  }

  /** Events go out after the call that caused them returns, as an engine's event stream would. */
  private emit(id: string, action: string): void {
    const labels = { ...this.containers.get(id)!.info.labels }
    for (const l of this.listeners) if (matches(labels, l.labels)) queueMicrotask(() => l.fn({ id, action, labels }))
  }

  private get(id: string): SimulatedContainer {
    const c = this.containers.get(id)
    if (!c) throw new ContainerNotFoundError(id)
    return c
  }

  private resolve(idOrName: string): SimulatedContainer {
    const byId = this.containers.get(idOrName)
    if (byId) return byId
    for (const c of this.containers.values()) if (c.info.name === idOrName) return c
    throw new ContainerNotFoundError(idOrName)
  }
}

function matches(have: Record<string, string>, want: Record<string, string>): boolean {
  for (const k in want) if (have[k] !== want[k]) return false
  return true
}

function copy(info: ContainerInfo): ContainerInfo {
  return { ...info, labels: { ...info.labels }, state: { ...info.state } }
}
