// The node's side of exec and port-forward sessions opened by the hub over `down/rpc`. A session
// (the request's id) answers on `up/rpc-reply`: `{seq: 0, result: {opened: true}}` once the process
// runs or the connection is made, then output `{seq, channel, chunk}` (base64), then
// `{seq, done: true, result: {exitCode}}` or `{seq, ok: false, error}`. The hub's input comes as
// `stream` requests, put in order by their seq. Output stops being read while a window of it is
// unacknowledged (src/lib/stream-window.ts), so a slow client holds the process, not this node's memory.

import type Docker from 'dockerode'
import type { RpcReply, RpcRequest } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { AckCounter, InOrder, SendWindow, SILENCE_LIMIT_MS } from '../lib/stream-window.js'
import { LABELS, type ContainerInfo, type ContainerRuntime } from './container-runtime.js'
import { openExec, openPortForward, type StreamTarget, type TargetEvents } from './pod-stream-targets.js'
import { attemptOf } from './pod-planner.js'

/** Output bytes per message: about 43 KiB once base64, well inside the 256 KiB rpc-reply limit. */
const CHUNK_BYTES = 32 * 1024
const MAX_SESSIONS = 32

export interface PodStreamsRpcOptions {
  runtime: ContainerRuntime
  /** The engine itself, for exec's hijacked stream; absent, exec is refused (port-forward still works). */
  docker?: Docker
  clusterId: string
  clock: Clock
  logger: Logger
  /** A session the hub has not spoken to for this long ends (default SILENCE_LIMIT_MS: the hub pings every KEEPALIVE_MS). */
  silenceLimitMs?: number
  reply: (replyTopic: string, reply: RpcReply) => Promise<void>
}

interface StreamParams {
  session?: unknown
  seq?: unknown
  channel?: unknown
  data?: unknown
  eof?: unknown
  resize?: { width?: unknown; height?: unknown }
  ack?: unknown
  ping?: unknown
  close?: unknown
}

interface Session {
  id: string
  replyTopic: string
  seq: number
  target?: StreamTarget
  window: SendWindow
  acks: AckCounter
  inbox: InOrder<StreamParams>
  /** Input that came before the target was open. */
  early: StreamParams[]
  paused: boolean
  ended: boolean
  /** Ends the session when the hub stops speaking to it (restarted, cut off); re-armed by every message. */
  silence?: { cancel(): void }
}

export class PodStreamsRpc {
  private readonly sessions = new Map<string, Session>()
  private readonly log: Logger

  constructor(private readonly o: PodStreamsRpcOptions) {
    this.log = o.logger.child({ component: 'pod-streams' })
  }

  /** Serves `exec`, `port-forward` and `stream` requests; never throws. */
  async handle(req: RpcRequest): Promise<void> {
    if (req.method === 'stream') return this.input(req.params as StreamParams)
    if (this.sessions.has(req.id)) return
    if (this.sessions.size >= MAX_SESSIONS) {
      await this.o.reply(req.replyTopic, { id: req.id, ok: false, seq: 0, error: `this node already serves ${MAX_SESSIONS} exec and port-forward sessions; try again later` }).catch(() => {})
      return
    }
    const session: Session = {
      id: req.id,
      replyTopic: req.replyTopic,
      seq: 0,
      window: new SendWindow(),
      acks: new AckCounter(),
      inbox: new InOrder((m) => this.apply(session, m)),
      early: [],
      paused: false,
      ended: false,
    }
    this.sessions.set(req.id, session)
    this.armSilence(session)
    const events: TargetEvents = {
      output: (channel, data) => this.output(session, channel, data),
      end: (result) => this.finish(session, result),
    }
    try {
      session.target = req.method === 'exec' ? await this.openExec(req.params, events) : await this.openPortForward(req.params, events)
    } catch (err) {
      return this.finish(session, { error: (err as Error).message })
    }
    if (session.ended) return session.target.close()
    this.send(session, { ok: true, done: false, result: { opened: true } })
    for (const m of session.early.splice(0)) this.apply(session, m)
  }

  /** Ends every session (the agent is closing). */
  closeAll(): void {
    for (const s of this.sessions.values()) {
      s.silence?.cancel()
      s.target?.close()
    }
    this.sessions.clear()
  }

  private async openExec(params: Record<string, unknown>, events: TargetEvents): Promise<StreamTarget> {
    if (!this.o.docker) throw new Error('exec needs the Docker engine, which this node does not run')
    const command = params.command
    if (!Array.isArray(command) || command.length === 0 || !command.every((c) => typeof c === 'string')) throw new Error('exec needs params.command, a non-empty list of strings')
    const container = await this.findContainer(params)
    if (container.state.status !== 'running') throw new Error(`container ${container.labels[LABELS.containerName]} of pod ${String(params.name)} is not running (${container.state.status})`)
    return openExec(this.o.docker, { containerId: container.id, command: command as string[], stdin: params.stdin === true, tty: params.tty === true }, events)
  }

  private async openPortForward(params: Record<string, unknown>, events: TargetEvents): Promise<StreamTarget> {
    const port = params.port
    if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new Error('port-forward needs params.port, a port number from 1 to 65535')
    const all = await this.podContainers(params)
    const sandbox = all.find((c) => c.labels[LABELS.role] === 'sandbox' && c.state.status === 'running')
    const runningApp = all.find((c) => c.labels[LABELS.role] !== 'sandbox' && c.state.status === 'running')
    if (!runningApp) throw new Error(`pod ${String(params.name)} has no running container on this node`)
    // A hostNetwork pod has no sandbox: it listens on the node itself.
    const host = sandbox?.ipAddress ?? '127.0.0.1'
    return openPortForward(host, port, events)
  }

  private input(p: StreamParams): void {
    const session = typeof p.session === 'string' ? this.sessions.get(p.session) : undefined
    if (!session) return
    this.armSilence(session)
    if (p.close === true) {
      session.ended = true
      session.silence?.cancel()
      this.sessions.delete(session.id)
      session.target?.close()
      return
    }
    if (p.ping === true) return this.sendAck(session, session.acks.total)
    if (typeof p.ack === 'number') {
      session.window.acknowledged(p.ack)
      if (session.paused && session.window.open) {
        session.paused = false
        session.target?.resume()
      }
      return
    }
    if (typeof p.seq !== 'number' || !session.inbox.push(p.seq, p)) this.finish(session, { error: 'the stream from the hub lost messages' })
  }

  private apply(session: Session, m: StreamParams): void {
    const target = session.target
    if (!target) return void session.early.push(m)
    if (typeof m.data === 'string') {
      const data = Buffer.from(m.data, 'base64')
      target.write(data, () => {
        const ack = session.acks.passedOn(data.length, true)
        if (ack !== undefined && !session.ended) this.sendAck(session, ack)
      })
    } else if (m.eof === true) target.endInput()
    else if (m.resize && typeof m.resize.width === 'number' && typeof m.resize.height === 'number') target.resize(m.resize.width, m.resize.height)
  }

  private output(session: Session, channel: number, data: Buffer): void {
    for (let at = 0; at < data.length; at += CHUNK_BYTES) {
      const part = data.subarray(at, at + CHUNK_BYTES)
      session.window.sending(part.length)
      this.send(session, { ok: true, done: false, channel, chunk: part.toString('base64') })
    }
    if (!session.window.open && !session.paused) {
      session.paused = true
      session.target?.pause()
    }
  }

  private finish(session: Session, result: { exitCode?: number; error?: string }): void {
    if (!this.sessions.has(session.id)) return
    session.ended = true
    session.silence?.cancel()
    this.sessions.delete(session.id)
    if (result.error) {
      this.log.info({ session: session.id, err: result.error }, 'exec or port-forward session failed')
      this.send(session, { ok: false, error: result.error })
    } else this.send(session, { ok: true, done: true, result: result.exitCode === undefined ? {} : { exitCode: result.exitCode } })
    session.target?.close()
  }

  private armSilence(session: Session): void {
    session.silence?.cancel()
    const limit = this.o.silenceLimitMs ?? SILENCE_LIMIT_MS
    session.silence = this.o.clock.setTimeout(() => this.finish(session, { error: `the hub has not spoken to this session for ${limit / 1000}s` }), limit)
  }

  private send(session: Session, reply: Omit<RpcReply, 'id' | 'seq'>): void {
    const seq = session.seq++
    this.o.reply(session.replyTopic, { id: session.id, seq, ...reply }).catch((err) => this.log.debug({ session: session.id, err: (err as Error).message }, 'could not send a stream message to the hub'))
  }

  private sendAck(session: Session, ack: number): void {
    this.o.reply(session.replyTopic, { id: session.id, ok: true, done: false, ack }).catch(() => {})
  }

  private async podContainers(params: Record<string, unknown>): Promise<ContainerInfo[]> {
    if (typeof params.namespace !== 'string' || typeof params.name !== 'string') throw new Error('needs params.namespace and params.name')
    const all = await this.o.runtime.list({ [LABELS.cluster]: this.o.clusterId, [LABELS.podNamespace]: params.namespace, [LABELS.podName]: params.name })
    if (all.length === 0) throw new Error(`pod "${params.name}" in namespace "${params.namespace}" has no containers on this node`)
    return all
  }

  private async findContainer(params: Record<string, unknown>): Promise<ContainerInfo> {
    const apps = (await this.podContainers(params)).filter((c) => c.labels[LABELS.role] === 'app')
    const names = [...new Set(apps.map((c) => c.labels[LABELS.containerName]))].sort()
    const wanted = typeof params.container === 'string' && params.container ? params.container : names.length === 1 ? names[0] : undefined
    if (wanted === undefined) throw new Error(`a container name must be specified for pod ${String(params.name)}, choose one of: [${names.join(' ')}]`)
    const latest = apps.filter((c) => c.labels[LABELS.containerName] === wanted).sort((a, b) => attemptOf(b) - attemptOf(a))[0]
    if (!latest) throw new Error(`container ${wanted} is not valid for pod ${String(params.name)}`)
    return latest
  }
}
