// The CLI's only way to the hub: HTTPS with the kubeconfig's CA pinned and its bearer token, the
// way kubectl speaks to an API server. With several hubs (highly available, on one etcd store) a
// request that cannot reach one goes to the next, and the one that answered is used from then on. Error Statuses become ServerError, Warning headers are
// printed on stderr as kubectl prints them.

import type { IncomingMessage } from 'node:http'
import { Agent, request as httpsRequest } from 'node:https'
import type { Status, WatchEvent } from '../api/types.js'
import { tlsFailureKind } from '../lib/tls-failure.js'
import { ConnectionError, ServerError } from './errors.js'
import type { ClientConfig } from './kubeconfig.js'

export interface RequestOptions {
  /** JSON-encoded, unless a string or a Buffer (sent as it is). */
  body?: unknown
  contentType?: string
  accept?: string
  query?: Record<string, string | undefined>
  /** Ends a watch or stream early (a deadline): the response is closed and iteration stops. */
  signal?: AbortSignal
}

export interface Response {
  status: number
  headers: IncomingMessage['headers']
  json: any
}

export type WarningSink = (text: string) => void

/** Errors of reaching a server at all: the request never got to it, so another hub may take it. */
const UNREACHABLE = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'ETIMEDOUT', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'EPIPE'])

export class HubClient {
  private readonly agent: Agent
  /** Index in config.servers of the hub that answered last. */
  private current = 0

  constructor(
    readonly config: ClientConfig,
    /** Where `Warning` header texts go; kubectl prints them as `Warning: <text>` on stderr. */
    private readonly onWarning: WarningSink = (text) => process.stderr.write(`Warning: ${text}\n`),
  ) {
    this.agent = new Agent({ keepAlive: true, ca: config.ca, rejectUnauthorized: !config.insecureSkipTlsVerify })
  }

  /** Sends one request; a non-2xx answer throws ServerError with the Status message. */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const res = await this.send(method, path, options)
    const text = await readAll(res)
    let json: any
    try {
      json = text ? JSON.parse(text) : undefined
    } catch {
      json = undefined
    }
    const status = res.statusCode ?? 0
    if (status < 200 || status > 299) throw serverErrorOf(status, json, text)
    return { status, headers: res.headers, json }
  }

  /**
   * Opens `path?watch=true` and yields its newline-delimited events until the server ends the
   * stream or the caller stops iterating.
   */
  async *watch(path: string, options: Omit<RequestOptions, 'body' | 'contentType'> = {}): AsyncGenerator<WatchEvent<any>> {
    const res = await this.send('GET', path, { ...options, query: { ...options.query, watch: 'true' } })
    const status = res.statusCode ?? 0
    if (status < 200 || status > 299) throw await errorOf(res)
    const abort = () => res.destroy()
    if (options.signal?.aborted) abort()
    options.signal?.addEventListener('abort', abort)
    res.setEncoding('utf8')
    let buffer = ''
    try {
      for await (const chunk of res) {
        buffer += chunk
        let nl: number
        while ((nl = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, nl).trim()
          buffer = buffer.slice(nl + 1)
          if (line) yield JSON.parse(line) as WatchEvent<any>
        }
      }
      if (buffer.trim()) yield JSON.parse(buffer) as WatchEvent<any>
    } catch (err) {
      // A watch closed on purpose ends quietly; the caller checks its signal.
      if (!options.signal?.aborted) throw err
    } finally {
      options.signal?.removeEventListener('abort', abort)
      res.destroy()
    }
  }

  /** Opens a streamed GET (a pod's log) and hands back the response once its status is good. */
  async stream(path: string, options: Omit<RequestOptions, 'body' | 'contentType'> = {}): Promise<IncomingMessage> {
    const res = await this.send('GET', path, options)
    const status = res.statusCode ?? 0
    if (status >= 200 && status <= 299) return res
    throw await errorOf(res)
  }

  /** Lets the process exit: closes the keep-alive sockets. */
  close(): void {
    this.agent.destroy()
  }

  private async send(method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const servers = this.config.servers?.length ? this.config.servers : [this.config.server]
    let failure: ConnectionError | undefined
    for (let tried = 0; tried < servers.length; tried++) {
      const index = (this.current + tried) % servers.length
      try {
        const res = await this.sendTo(servers[index]!, method, path, options)
        // A hub that does not lead answers 503 to what only the leader serves (logs): ask the next.
        if (res.statusCode === 503 && tried < servers.length - 1) {
          failure = await errorOf(res).then((err) => new ConnectionError(servers[index]!, err.message))
          continue
        }
        this.current = index
        return res
      } catch (err) {
        const code = ((err as Error).cause as NodeJS.ErrnoException | undefined)?.code
        if (!(err instanceof ConnectionError) || code === undefined || !UNREACHABLE.has(code)) throw err
        failure = err
      }
    }
    throw failure!
  }

  private sendTo(server: string, method: string, path: string, options: RequestOptions): Promise<IncomingMessage> {
    const url = new URL(path, server + '/')
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) url.searchParams.set(k, v)
    const payload = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(typeof options.body === 'string' ? options.body : JSON.stringify(options.body))
    const headers: Record<string, string | number> = { Accept: options.accept ?? 'application/json', 'User-Agent': 'bramble' }
    if (this.config.token) headers.Authorization = `Bearer ${this.config.token}`
    if (payload) {
      headers['Content-Type'] = options.contentType ?? 'application/json'
      headers['Content-Length'] = payload.length
    }
    return new Promise((resolve, reject) => {
      const req = httpsRequest(url, { method, agent: this.agent, headers }, (res) => {
        for (const text of warningsOf(res.headers.warning)) this.onWarning(text)
        resolve(res)
      })
      req.on('error', (err: NodeJS.ErrnoException) => reject(new ConnectionError(server, connectionReason(err), { cause: err })))
      if (payload) req.write(payload)
      req.end()
    })
  }
}

function readAll(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    res.on('data', (c: Buffer) => chunks.push(c))
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    res.on('error', reject)
  })
}

/** The ServerError an error answer (a Status body, or plain text) stands for. */
async function errorOf(res: IncomingMessage): Promise<ServerError> {
  const text = await readAll(res)
  let json: any
  try {
    json = JSON.parse(text)
  } catch {
    json = undefined
  }
  return serverErrorOf(res.statusCode ?? 0, json, text)
}

function serverErrorOf(status: number, json: any, text: string): ServerError {
  const s = json as Partial<Status> | undefined
  if (s && s.kind === 'Status' && typeof s.message === 'string') return new ServerError(s.message, status, s.reason ?? '')
  const body = text.trim().split('\n')[0]
  return new ServerError(`the server answered ${status}${body ? `: ${body}` : ''}`, status, '')
}

function connectionReason(err: NodeJS.ErrnoException): string {
  if (err.code === 'ECONNREFUSED') return 'connection refused (is the hub running?)'
  if (err.code === 'ENOTFOUND') return 'host not found'
  if (err.code === 'ETIMEDOUT') return 'connection timed out'
  const kind = tlsFailureKind(err)
  if (kind === 'not-yet-valid' || kind === 'expired') {
    // Usually this machine's clock (a Pi without a real-time clock), not the certificate.
    return `its certificate is ${kind === 'expired' ? 'expired' : 'not yet valid'} by this machine's clock (${new Date().toISOString()}); check the time here (\`bramble check\`), or restart the hub to renew its certificate`
  }
  if (kind === 'wrong-name') return "its certificate does not name the kubeconfig's server address; use the hub's advertised address"
  if (kind || (err.code && /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(err.code))) return `its certificate is not trusted by the kubeconfig's CA (${err.code}): it is not this cluster's hub, or the hub's CA was replaced`
  return err.message
}

/**
 * The texts of `Warning` headers (`299 - "text"`, RFC 7234 form, possibly several per header
 * line, comma-separated).
 */
export function warningsOf(header: string | string[] | undefined): string[] {
  if (header === undefined) return []
  const lines = Array.isArray(header) ? header : [header]
  const out: string[] = []
  for (const line of lines) {
    const re = /\d{3}\s+\S+\s+"((?:[^"\\]|\\.)*)"(?:\s+"[^"]*")?/g
    let matched = false
    for (const m of line.matchAll(re)) {
      matched = true
      out.push(m[1].replace(/\\(.)/g, '$1'))
    }
    if (!matched && line.trim()) out.push(line.trim())
  }
  return out
}
