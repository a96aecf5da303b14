// The ContainerRuntime port on the Docker Engine API, through dockerode.

import type Docker from 'dockerode'
import { Agent } from 'node:http'
import { inspect } from 'node:util'
import { loadDockerode } from './dockerode-loader.js'
import { engineExec, type EngineEndpoint } from './engine-exec.js'
import { PassThrough, type Readable } from 'node:stream'
import type {
  ContainerInfo,
  ContainerRuntime,
  ContainerSpec,
  ContainerStatus,
  ExecResult,
  LogOptions,
  PullProgress,
  RunningContainer,
  RuntimeEvent,
} from './container-runtime.js'
import { ContainerNotFoundError, ContainerRuntimeError, ImagePullError } from './errors.js'
import type { RegistryAuth } from './registry-auth.js'

/** Containers of one list inspected at once: a resync lists every pod's, and the engine is not flooded. */
const INSPECTS_AT_ONCE = 8

export interface DockerRuntimeOptions {
  /** `unix:///var/run/docker.sock` (default), `tcp://host:2375`, or a socket path. */
  host?: string
}

/**
 * Keeps connections to the engine alive: probes and resyncs make several requests a second, and a
 * new connection for each costs the agent CPU. docker-modem formats every request's options with
 * `util.inspect` (for its debug log, even when that is off): this agent prints as one word.
 */
class EngineAgent extends Agent {
  [inspect.custom](): string {
    return 'EngineAgent'
  }
}

/** Dockerode options for a DOCKER_HOST-style address. */
export function dockerConnection(host?: string): Docker.DockerOptions & { agent: Agent } {
  const agent = new EngineAgent({ keepAlive: true, maxFreeSockets: 16 })
  if (!host) return { socketPath: '/var/run/docker.sock', agent }
  if (host.startsWith('unix://')) return { socketPath: host.slice('unix://'.length), agent }
  if (host.startsWith('/')) return { socketPath: host, agent }
  const url = new URL(host.replace(/^tcp:/, 'http:'))
  return { host: url.hostname, port: Number(url.port || 2375), protocol: 'http', agent }
}

/** A spec's securityContext and devices as HostConfig fields; absent ones are left out, so the engine's defaults hold. */
function securityConfig(spec: ContainerSpec): Docker.HostConfig {
  return {
    ...(spec.privileged ? { Privileged: true } : {}),
    ...(spec.capAdd?.length ? { CapAdd: spec.capAdd } : {}),
    ...(spec.capDrop?.length ? { CapDrop: spec.capDrop } : {}),
    ...(spec.groupAdd?.length ? { GroupAdd: spec.groupAdd } : {}),
    ...(spec.readonlyRootfs ? { ReadonlyRootfs: true } : {}),
    ...(spec.noNewPrivileges ? { SecurityOpt: ['no-new-privileges'] } : {}),
    ...(spec.pidMode ? { PidMode: spec.pidMode } : {}),
    ...(spec.ipcMode ? { IpcMode: spec.ipcMode } : {}),
    ...(spec.devices?.length ? { Devices: spec.devices.map((d) => ({ PathOnHost: d.hostPath, PathInContainer: d.containerPath, CgroupPermissions: d.permissions })) } : {}),
  }
}

export class DockerRuntime implements ContainerRuntime {
  readonly docker: Docker
  /** The same engine and connections, for the requests made without dockerode (exec). */
  private readonly engine: EngineEndpoint

  constructor(options: DockerRuntimeOptions | Docker = {}) {
    const Dockerode = loadDockerode()
    this.docker = options instanceof Dockerode ? options : new Dockerode(dockerConnection(options.host))
    const modem = this.docker.modem as { socketPath?: string; host?: string; port?: number; agent?: Agent }
    this.engine = { socketPath: modem.socketPath, host: modem.host, port: modem.port, agent: modem.agent ?? new EngineAgent({ keepAlive: true, maxFreeSockets: 16 }) }
  }

  async list(labels: Record<string, string>): Promise<ContainerInfo[]> {
    const summaries = await this.call('list containers', 'by labels', () =>
      this.docker.listContainers({ all: true, filters: { label: labelFilters(labels) } }),
    )
    // Inspected side by side: one after another, a busy engine's wait for each added up on every pod pass.
    const infos: Array<ContainerInfo | undefined> = []
    let next = 0
    const inspectNext = async (): Promise<void> => {
      for (let i = next++; i < summaries.length; i = next++) {
        try {
          infos[i] = await this.inspect(summaries[i]!.Id)
        } catch (e) {
          if (!(e instanceof ContainerNotFoundError)) throw e // removed between list and inspect
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(INSPECTS_AT_ONCE, summaries.length) }, inspectNext))
    return infos.filter((c): c is ContainerInfo => c !== undefined)
  }

  async listRunning(labels: Record<string, string>): Promise<RunningContainer[]> {
    const summaries = await this.call('list containers', 'running, by labels', () =>
      this.docker.listContainers({ filters: { label: labelFilters(labels), status: ['running'] } }),
    )
    return summaries.map((s) => ({ id: s.Id, name: (s.Names[0] ?? s.Id).replace(/^\//, ''), labels: s.Labels ?? {} }))
  }

  async inspect(id: string): Promise<ContainerInfo> {
    let c: Docker.ContainerInspectInfo
    try {
      c = await this.docker.getContainer(id).inspect()
    } catch (e) {
      throw notFoundOr(e, id, 'inspect container')
    }
    const networks = Object.values(c.NetworkSettings?.Networks ?? {})
    const ip = (c.NetworkSettings as { IPAddress?: string })?.IPAddress || networks.find((n) => n.IPAddress)?.IPAddress || undefined
    return {
      id: c.Id,
      name: c.Name.replace(/^\//, ''),
      image: c.Config.Image,
      imageId: c.Image,
      labels: c.Config.Labels ?? {},
      state: {
        status: c.State.Status as ContainerStatus,
        exitCode: c.State.ExitCode,
        startedAt: dockerTime(c.State.StartedAt),
        finishedAt: dockerTime(c.State.FinishedAt),
        oomKilled: c.State.OOMKilled,
        error: c.State.Error || undefined,
      },
      ipAddress: ip,
    }
  }

  async imageId(ref: string): Promise<string | undefined> {
    try {
      return (await this.docker.getImage(ref).inspect()).Id
    } catch (e) {
      if (statusOf(e) === 404) return undefined
      throw new ContainerRuntimeError('inspect image', ref, { cause: e })
    }
  }

  async pullImage(ref: string, onProgress?: (p: PullProgress) => void, auth?: RegistryAuth): Promise<void> {
    try {
      const stream = await this.docker.pull(ref, auth ? { authconfig: auth } : {})
      await new Promise<void>((resolve, reject) => {
        this.docker.modem.followProgress(
          stream,
          (err: Error | null) => (err ? reject(err) : resolve()),
          (event: any) => {
            if (event?.error) return // followProgress reports it at the end
            onProgress?.({ status: event.status, id: event.id, current: event.progressDetail?.current, total: event.progressDetail?.total })
          },
        )
      })
    } catch (e) {
      throw new ImagePullError(ref, messageOf(e), { cause: e })
    }
    if (!(await this.imageId(ref))) throw new ImagePullError(ref, 'the engine finished the pull without the image')
  }

  async importImage(rootfsTar: Readable, ref: string): Promise<void> {
    const { repo, tag } = splitRef(ref)
    await this.call('import image', ref, async () => {
      const stream = await this.docker.importImage(rootfsTar, { repo, tag })
      await new Promise<void>((resolve, reject) =>
        this.docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve())),
      )
    })
  }

  async create(spec: ContainerSpec): Promise<string> {
    const exposed: Record<string, {}> = {}
    const bindings: Record<string, Array<{ HostPort: string; HostIp?: string }>> = {}
    for (const p of spec.ports ?? []) {
      const key = `${p.containerPort}/${p.protocol}`
      exposed[key] = {}
      if (p.hostPort) (bindings[key] ??= []).push({ HostPort: String(p.hostPort), ...(p.hostIp ? { HostIp: p.hostIp } : {}) })
    }
    const sharesNetwork = spec.networkMode?.startsWith('container:') ?? false
    const c = await this.call('create container', spec.name, () =>
      this.docker.createContainer({
        name: spec.name,
        Image: spec.image,
        Entrypoint: spec.entrypoint,
        Cmd: spec.cmd,
        Env: spec.env,
        WorkingDir: spec.workingDir,
        ...(spec.user ? { User: spec.user } : {}),
        Labels: spec.labels,
        Hostname: sharesNetwork ? undefined : spec.hostname,
        ExposedPorts: sharesNetwork ? undefined : exposed,
        HostConfig: {
          NetworkMode: spec.networkMode,
          ...(spec.dns ? { Dns: spec.dns.servers, DnsSearch: spec.dns.search, DnsOptions: spec.dns.options } : {}),
          PortBindings: sharesNetwork ? undefined : bindings,
          NanoCpus: spec.nanoCpus,
          Memory: spec.memoryBytes,
          Mounts: spec.mounts?.map((m) => ({
            Type: m.type,
            Source: m.source ?? '',
            Target: m.target,
            ReadOnly: m.readOnly ?? false,
          })),
          RestartPolicy: { Name: 'no' },
          ...securityConfig(spec),
          LogConfig: spec.log
            ? { Type: 'json-file', Config: { 'max-size': spec.log.maxSize, 'max-file': String(spec.log.maxFile) } }
            : undefined,
        },
      }),
    )
    return c.id
  }

  async start(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start()
    } catch (e) {
      if (statusOf(e) === 304) return // already started
      throw notFoundOr(e, id, 'start container')
    }
  }

  async stop(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.round(graceSeconds)) })
    } catch (e) {
      if (statusOf(e) === 304) return // already stopped
      throw notFoundOr(e, id, 'stop container')
    }
  }

  async remove(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true })
    } catch (e) {
      if (statusOf(e) === 404) return
      if (statusOf(e) === 409 && /already in progress/.test(messageOf(e))) return
      throw new ContainerRuntimeError('remove container', id, { cause: e })
    }
  }

  async exec(id: string, cmd: string[], options: { timeoutMs?: number } = {}): Promise<ExecResult> {
    return engineExec(this.engine, id, cmd, options.timeoutMs)
  }

  async logs(id: string, options: LogOptions = {}): Promise<Readable> {
    const container = this.docker.getContainer(id)
    const base = { stdout: true, stderr: true, timestamps: options.timestamps ?? false, tail: options.tail ?? ('all' as any) }
    const out = new PassThrough()
    try {
      if (options.follow) {
        const stream = await container.logs({ ...base, follow: true })
        this.docker.modem.demuxStream(stream, out, out)
        stream.on('end', () => out.end())
        stream.on('error', (e) => out.destroy(e))
        out.on('close', () => (stream as any).destroy?.())
      } else {
        const buf = (await container.logs({ ...base, follow: false })) as unknown as Buffer
        out.end(demuxBuffer(buf))
      }
    } catch (e) {
      throw notFoundOr(e, id, 'read logs of container')
    }
    return out
  }

  async wait(id: string): Promise<{ exitCode: number }> {
    try {
      const r = await this.docker.getContainer(id).wait()
      return { exitCode: r.StatusCode }
    } catch (e) {
      throw notFoundOr(e, id, 'wait for container')
    }
  }

  async createVolume(name: string, labels: Record<string, string>): Promise<void> {
    await this.call('create volume', name, () => this.docker.createVolume({ Name: name, Labels: labels }))
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove()
    } catch (e) {
      if (statusOf(e) === 404) return
      throw new ContainerRuntimeError('remove volume', name, { cause: e })
    }
  }

  async watchEvents(labels: Record<string, string>, onEvent: (e: RuntimeEvent) => void, onEnd?: (err?: Error) => void): Promise<{ close(): void }> {
    const stream = (await this.call('watch events', 'of containers', () =>
      this.docker.getEvents({ filters: { type: ['container'], label: labelFilters(labels) } as any }),
    )) as Readable
    let buffer = ''
    stream.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8')
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (!line) continue
        try {
          const e = JSON.parse(line)
          onEvent({ id: e.id ?? e.Actor?.ID, action: String(e.Action ?? e.status).split(':')[0], labels: e.Actor?.Attributes ?? {} })
        } catch {
          // a malformed line from the engine: skip it, the next resync catches up
        }
      }
    })
    let ended = false
    const end = (err?: Error) => {
      if (ended) return
      ended = true
      onEnd?.(err)
    }
    stream.on('error', (err) => end(err))
    stream.on('end', () => end())
    stream.on('close', () => end())
    return {
      close: () => {
        ended = true // closed by us: nothing to report
        stream.destroy()
      },
    }
  }

  private async call<T>(operation: string, target: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (e) {
      throw new ContainerRuntimeError(operation, target, { cause: e })
    }
  }
}

function labelFilters(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`)
}

function statusOf(e: unknown): number | undefined {
  return (e as { statusCode?: number })?.statusCode
}

function messageOf(e: unknown): string {
  const json = (e as { json?: { message?: string } })?.json
  return json?.message ?? (e instanceof Error ? e.message : String(e))
}

function notFoundOr(e: unknown, id: string, operation: string): Error {
  if (statusOf(e) === 404) return new ContainerNotFoundError(id, { cause: e })
  return new ContainerRuntimeError(operation, id, { cause: e })
}

/** Docker reports "never" as the zero time. */
function dockerTime(t: string | undefined): string | undefined {
  if (!t || t.startsWith('0001-01-01')) return undefined
  return new Date(t).toISOString()
}

/** `host:5000/repo/name:tag` → repo `host:5000/repo/name`, tag `tag` (default `latest`). */
export function splitRef(ref: string): { repo: string; tag: string } {
  const slash = ref.lastIndexOf('/')
  const colon = ref.lastIndexOf(':')
  if (colon > slash) return { repo: ref.slice(0, colon), tag: ref.slice(colon + 1) }
  return { repo: ref, tag: 'latest' }
}

/** Docker's multiplexed log format: 8-byte headers (stream, 0, 0, 0, size) before each frame. */
function demuxBuffer(buf: Buffer): Buffer {
  if (!Buffer.isBuffer(buf)) return Buffer.from(String(buf))
  const parts: Buffer[] = []
  let i = 0
  while (i + 8 <= buf.length) {
    const type = buf[i]
    if (type > 2 || buf[i + 1] !== 0 || buf[i + 2] !== 0 || buf[i + 3] !== 0) return buf // not multiplexed (TTY)
    const size = buf.readUInt32BE(i + 4)
    parts.push(buf.subarray(i + 8, i + 8 + size))
    i += 8 + size
  }
  return Buffer.concat(parts)
}
