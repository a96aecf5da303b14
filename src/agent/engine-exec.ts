// Exec in a container through the Engine API directly: exec probes are the agent's hottest path
// (three requests per probe, every few seconds per pod), and going through dockerode costs a third
// more CPU per request (docker-modem formats every request's options for its debug log).
// Create, start (output as a plain response body, so the kept-alive connection is reused), inspect.

import { request, type Agent } from 'node:http'
import { ContainerNotFoundError, ContainerRuntimeError } from './errors.js'

/** Where the engine listens, as DockerRuntime was given it. */
export interface EngineEndpoint {
  socketPath?: string
  host?: string
  port?: number
  agent: Agent
}

export interface EngineExecResult {
  exitCode: number
  output: string
}

/** Kubernetes keeps at most this much of a probe's output; the rest is read and dropped. */
const MAX_OUTPUT_BYTES = 10 * 1024

class EngineHttpError extends Error {
  constructor(readonly statusCode: number, message: string) {
    super(`engine answered ${statusCode}: ${message}`)
  }
}

export async function engineExec(endpoint: EngineEndpoint, id: string, cmd: string[], timeoutMs?: number): Promise<EngineExecResult> {
  let execId: string
  try {
    execId = (JSON.parse(await engineCall(endpoint, 'POST', `/containers/${encodeURIComponent(id)}/exec`, { AttachStdout: true, AttachStderr: true, Cmd: cmd })) as { Id: string }).Id
  } catch (e) {
    if ((e as EngineHttpError).statusCode === 404) throw new ContainerNotFoundError(id, { cause: e })
    throw new ContainerRuntimeError('exec in container', id, { cause: e })
  }
  let output: string
  try {
    output = await engineCall(endpoint, 'POST', `/exec/${execId}/start`, { Detach: false, Tty: false }, { demux: true, timeoutMs })
  } catch (e) {
    throw new ContainerRuntimeError('exec in container', id, { cause: e })
  }
  try {
    const info = JSON.parse(await engineCall(endpoint, 'GET', `/exec/${execId}/json`)) as { ExitCode?: number | null }
    return { exitCode: info.ExitCode ?? -1, output }
  } catch (e) {
    throw new ContainerRuntimeError('inspect exec in', id, { cause: e })
  }
}

/**
 * One request; resolves with the body as text. With `demux`, the body is the engine's
 * multiplexed stream (8-byte frame headers before stdout and stderr chunks) and the frames'
 * payloads are returned, stdout and stderr interleaved as they came.
 */
function engineCall(endpoint: EngineEndpoint, method: string, path: string, body?: unknown, options: { demux?: boolean; timeoutMs?: number } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer)
      reject(e)
    }
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
    const req = request(
      {
        socketPath: endpoint.socketPath,
        host: endpoint.socketPath ? undefined : endpoint.host,
        port: endpoint.socketPath ? undefined : endpoint.port,
        agent: endpoint.agent,
        method,
        path,
        headers: payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {},
      },
      (res) => {
        const chunks: Buffer[] = []
        let kept = 0
        res.on('data', (chunk: Buffer) => {
          if (kept >= MAX_OUTPUT_BYTES * 2) return
          chunks.push(chunk)
          kept += chunk.length
        })
        res.on('end', () => {
          clearTimeout(timer)
          const raw = Buffer.concat(chunks)
          const status = res.statusCode ?? 0
          if (status >= 300) return fail(new EngineHttpError(status, messageOf(raw)))
          resolve(options.demux && res.headers['content-type']?.includes('stream') ? demux(raw) : raw.toString('utf8'))
        })
        res.on('error', fail)
      },
    )
    const timer = options.timeoutMs
      ? setTimeout(() => {
          fail(new Error(`timed out after ${options.timeoutMs} ms`))
          req.destroy()
        }, options.timeoutMs)
      : undefined
    req.on('error', fail)
    req.end(payload)
  })
}

/** The payloads of a multiplexed stream's frames, up to MAX_OUTPUT_BYTES. */
function demux(raw: Buffer): string {
  const parts: Buffer[] = []
  let size = 0
  for (let at = 0; at + 8 <= raw.length && size < MAX_OUTPUT_BYTES; ) {
    const length = raw.readUInt32BE(at + 4)
    const part = raw.subarray(at + 8, Math.min(at + 8 + length, raw.length))
    parts.push(part)
    size += part.length
    at += 8 + length
  }
  return Buffer.concat(parts).subarray(0, MAX_OUTPUT_BYTES).toString('utf8')
}

function messageOf(raw: Buffer): string {
  try {
    return (JSON.parse(raw.toString('utf8')) as { message?: string }).message ?? raw.toString('utf8')
  } catch {
    return raw.toString('utf8').trim()
  }
}
