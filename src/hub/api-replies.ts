// Answers the API sends outside the normal flow of a verb: JSON bodies with warnings, errors as
// Status objects, and refusals of upgrades and of requests that never became HTTP.

import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Duplex } from 'node:stream'
import type { Logger } from '../lib/logger.js'
import { closeAfterAnswer } from './api-body.js'
import { ApiError, badRequest, insufficientStorage } from './api-errors.js'
import { StoreFullError } from './errors.js'

export function sendJson(res: ServerResponse, status: number, body: unknown, warnings: string[] = []): void {
  const payload = JSON.stringify(body)
  const headers: Record<string, string | string[] | number> = { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(payload) }
  if (warnings.length > 0) headers.Warning = warnings.map((w) => `299 - "${w.replace(/["\\]/g, (c) => `\\${c}`)}"`)
  res.writeHead(status, headers).end(payload)
}

export function sendError(req: IncomingMessage, res: ServerResponse, err: unknown, log: Logger): void {
  const apiError = err instanceof ApiError ? err : err instanceof StoreFullError ? insufficientStorage(err) : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error)?.message ?? String(err)}`, {}, { cause: err })
  // A full store says so itself, once; not once per refused request.
  if (apiError.httpStatus >= 500 && !(err instanceof StoreFullError)) log.error({ err }, 'request failed')
  if (res.headersSent || !req.socket.writable) {
    res.destroy()
    return
  }
  closeAfterAnswer(req, res)
  sendJson(res, apiError.httpStatus, apiError.toStatus())
}

/** An upgrade refused before it happened: a Status answer, then the connection is closed. */
export function refuseUpgrade(socket: Duplex, err: unknown, log: Logger): void {
  const apiError = err instanceof ApiError ? err : new ApiError(500, 'InternalError', `Internal error occurred: ${(err as Error)?.message ?? String(err)}`, {}, { cause: err })
  if (apiError.httpStatus >= 500) log.error({ err }, 'exec or port-forward request failed')
  if (!socket.writable) return void socket.destroy()
  const body = JSON.stringify(apiError.toStatus())
  socket.end(`HTTP/1.1 ${apiError.httpStatus} ${STATUS_CODES[apiError.httpStatus]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
}

/**
 * A request that never became one: headers or body too slow (408), headers too large (431), or not
 * HTTP (400). Answered with a Status when nothing of a response went out yet, then the connection
 * is closed.
 */
export function answerClientError(err: NodeJS.ErrnoException, socket: Duplex, log: Logger): void {
  const timedOut = err.code === 'ERR_HTTP_REQUEST_TIMEOUT'
  log.debug({ code: err.code }, timedOut ? 'closed a connection whose request did not arrive in time' : 'closed a connection that did not speak HTTP')
  // Node removed its own error listener before calling this one; a late write must not throw.
  socket.on('error', () => {})
  const answered = (socket as Duplex & { _httpMessage?: ServerResponse })._httpMessage?.headersSent === true
  if (socket.writable && !answered && err.code !== 'ECONNRESET') {
    const status = timedOut
      ? new ApiError(408, 'Timeout', 'the request did not arrive in time')
      : err.code === 'HPE_HEADER_OVERFLOW'
        ? new ApiError(431, 'RequestHeaderFieldsTooLarge', 'the request headers are too large')
        : badRequest(`the request is not valid HTTP: ${err.code ?? err.message}`)
    const body = JSON.stringify(status.toStatus())
    socket.end(`HTTP/1.1 ${status.httpStatus} ${STATUS_CODES[status.httpStatus]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`)
  }
  setTimeout(() => socket.destroy(), 1_000).unref()
}
