// Liveness, readiness and startup probes (exec, httpGet, tcpSocket) with Kubernetes' timing
// fields. A ProbeWorker runs one container's probes on the injected clock and reports when a
// probe's outcome changes after its thresholds.

import http from 'node:http'
import net from 'node:net'
import type { Clock } from '../lib/clock.js'
import type { ContainerRuntime } from './container-runtime.js'

export interface ProbeSpec {
  liveness?: any
  readiness?: any
  startup?: any
}

export type ProbeKind = 'liveness' | 'readiness' | 'startup'

export interface ProbeTarget {
  containerId: string
  /** Where httpGet and tcpSocket probes connect: the pod IP, or 127.0.0.1 with host networking. */
  host: string
}

export interface ProbeOutcome {
  ok: boolean
  message?: string
}

export interface ProbeTiming {
  initialDelayMs: number
  periodMs: number
  timeoutMs: number
  successThreshold: number
  failureThreshold: number
}

export function probeTiming(probe: any): ProbeTiming {
  return {
    initialDelayMs: (probe.initialDelaySeconds ?? 0) * 1000,
    periodMs: Math.max(1, probe.periodSeconds ?? 10) * 1000,
    timeoutMs: Math.max(1, probe.timeoutSeconds ?? 1) * 1000,
    successThreshold: Math.max(1, probe.successThreshold ?? 1),
    failureThreshold: Math.max(1, probe.failureThreshold ?? 3),
  }
}

/** Runs one probe attempt. */
export async function runProbe(runtime: ContainerRuntime, probe: any, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  try {
    if (probe.exec) {
      const r = await runtime.exec(target.containerId, (probe.exec.command ?? []).map(String), { timeoutMs })
      return r.exitCode === 0 ? { ok: true } : { ok: false, message: `exec probe exited ${r.exitCode}: ${r.output.trim().slice(0, 200)}` }
    }
    if (probe.httpGet) return await httpProbe(probe.httpGet, target, timeoutMs)
    if (probe.tcpSocket) return await tcpProbe(probe.tcpSocket, target, timeoutMs)
    return { ok: false, message: 'probe has no handler (exec, httpGet or tcpSocket)' }
  } catch (e) {
    return { ok: false, message: (e as Error).message }
  }
}

function portOf(port: unknown): number {
  const n = Number(port)
  return Number.isInteger(n) ? n : NaN // named ports are resolved by the caller (not yet)
}

function httpProbe(get: any, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  const headers: Record<string, string> = { 'User-Agent': 'bramble-probe/1' }
  for (const h of get.httpHeaders ?? []) headers[h.name] = h.value
  return new Promise((resolve) => {
    const req = http.get(
      { host: get.host ?? target.host, port: portOf(get.port), path: get.path ?? '/', headers, timeout: timeoutMs, agent: false },
      (res) => {
        res.resume()
        const code = res.statusCode ?? 0
        resolve(code >= 200 && code < 400 ? { ok: true } : { ok: false, message: `HTTP probe failed with statuscode: ${code}` })
      },
    )
    req.on('timeout', () => req.destroy(new Error(`HTTP probe timed out after ${timeoutMs} ms`)))
    req.on('error', (e) => resolve({ ok: false, message: `Get "http://${target.host}:${get.port}${get.path ?? '/'}": ${e.message}` }))
  })
}

function tcpProbe(tcp: any, target: ProbeTarget, timeoutMs: number): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: tcp.host ?? target.host, port: portOf(tcp.port) })
    const timer = setTimeout(() => {
      socket.destroy()
      resolve({ ok: false, message: `dial tcp ${target.host}:${tcp.port}: i/o timeout` })
    }, timeoutMs)
    socket.on('connect', () => {
      clearTimeout(timer)
      socket.destroy()
      resolve({ ok: true })
    })
    socket.on('error', (e) => {
      clearTimeout(timer)
      resolve({ ok: false, message: `dial tcp ${target.host}:${tcp.port}: ${e.message}` })
    })
  })
}

export interface ProbeResults {
  /** undefined until the first verdict; true once the readiness probe passes (no probe: true). */
  ready: boolean
  /** Startup probe passed (no probe: true). */
  started: boolean
}

/**
 * One container's probes. The startup probe runs first; liveness and readiness begin once it has
 * passed. `onChange` is called when readiness or startedness changes; `onUnhealthy` once liveness
 * (or startup) fails `failureThreshold` times in a row.
 */
export class ProbeWorker {
  readonly results: ProbeResults
  private timers: Array<{ cancel(): void }> = []
  private stopped = false
  private counts: Record<ProbeKind, { ok: number; fail: number }> = {
    liveness: { ok: 0, fail: 0 },
    readiness: { ok: 0, fail: 0 },
    startup: { ok: 0, fail: 0 },
  }

  constructor(
    private readonly runtime: ContainerRuntime,
    private readonly clock: Clock,
    private readonly spec: ProbeSpec,
    private readonly target: ProbeTarget,
    private readonly handlers: {
      onChange: (results: ProbeResults) => void
      onUnhealthy: (kind: ProbeKind, message: string) => void
      onFailure?: (kind: ProbeKind, message: string) => void
    },
  ) {
    this.results = { ready: !spec.readiness, started: !spec.startup }
  }

  start(): void {
    if (this.spec.startup) this.schedule('startup', probeTiming(this.spec.startup).initialDelayMs)
    else this.startMain()
  }

  stop(): void {
    this.stopped = true
    for (const t of this.timers) t.cancel()
    this.timers = []
  }

  private startMain(): void {
    if (this.spec.liveness) this.schedule('liveness', probeTiming(this.spec.liveness).initialDelayMs)
    if (this.spec.readiness) this.schedule('readiness', probeTiming(this.spec.readiness).initialDelayMs)
  }

  private schedule(kind: ProbeKind, delayMs: number): void {
    if (this.stopped) return
    const timer = this.clock.setTimeout(() => {
      this.timers = this.timers.filter((t) => t !== timer)
      void this.tick(kind)
    }, delayMs)
    this.timers.push(timer)
  }

  private async tick(kind: ProbeKind): Promise<void> {
    const probe = this.spec[kind]
    const timing = probeTiming(probe)
    const outcome = await runProbe(this.runtime, probe, this.target, timing.timeoutMs)
    if (this.stopped) return
    const c = this.counts[kind]
    if (outcome.ok) {
      c.ok++
      c.fail = 0
    } else {
      c.fail++
      c.ok = 0
      this.handlers.onFailure?.(kind, outcome.message ?? 'probe failed')
    }
    if (kind === 'startup') {
      if (c.ok >= 1) {
        this.results.started = true
        this.handlers.onChange({ ...this.results })
        this.startMain()
        return
      }
      if (c.fail >= timing.failureThreshold) return this.handlers.onUnhealthy(kind, outcome.message ?? 'startup probe failed')
    } else if (kind === 'liveness') {
      if (c.fail >= timing.failureThreshold) return this.handlers.onUnhealthy(kind, outcome.message ?? 'liveness probe failed')
    } else {
      if (!this.results.ready && c.ok >= timing.successThreshold) {
        this.results.ready = true
        this.handlers.onChange({ ...this.results })
      } else if (this.results.ready && c.fail >= timing.failureThreshold) {
        this.results.ready = false
        this.handlers.onChange({ ...this.results })
      }
    }
    this.schedule(kind, timing.periodMs)
  }
}
