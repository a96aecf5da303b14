// Reading and decoding request bodies: JSON, YAML and Kubernetes protobuf.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { parse as parseYaml } from 'yaml'
import { checkNesting, parseJsonText } from '../api/json-text.js'
import { decodeK8sProtobuf } from '../api/protobuf.js'
import { ApiError, badRequest, tooLarge, unsupportedMediaType } from './api-errors.js'

/** Kubernetes' own request body limit. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024

export const PATCH_TYPES = new Set(['application/merge-patch+json', 'application/json-patch+json', 'application/strategic-merge-patch+json'])

/**
 * Reads a whole body of at most `limitBytes`. A larger one is refused as soon as it is known (the
 * declared Content-Length, or the bytes so far): reading stops there and nothing more is buffered
 * or drained; the connection is closed after the answer (see closeAfterAnswer).
 */
export function readBody(req: IncomingMessage, limitBytes = MAX_BODY_BYTES): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > limitBytes) return Promise.reject(refuse(req, limitBytes))
  if (req.readableEnded) return Promise.resolve(Buffer.alloc(0))
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = () => {
      req.off('data', onData).off('end', onEnd).off('error', onError).off('close', onClose)
    }
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size <= limitBytes) return void chunks.push(chunk)
      done()
      reject(refuse(req, limitBytes))
    }
    const onEnd = () => {
      done()
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size))
    }
    const onError = (err: Error) => {
      done()
      reject(badRequest(`the request body could not be read: ${err.message}`, { cause: err }))
    }
    const onClose = () => {
      done()
      reject(badRequest('the client closed the connection before the whole request body arrived'))
    }
    req.on('data', onData).once('end', onEnd).once('error', onError).once('close', onClose)
  })
}

function refuse(req: IncomingMessage, limitBytes: number) {
  req.pause()
  return tooLarge(limitBytes)
}

/** How long a connection whose request body was left unread stays open once answered. */
export const LINGER_MS = 2_000

/**
 * Answers with `Connection: close` when the request's body was left unread (too large, or refused
 * before it was read), and closes the connection a while after the answer rather than at once:
 * closed with unread data, a socket sends a reset that can reach a client still sending before it
 * has read the answer (the lingering close of Go's server). Meanwhile nothing more is buffered.
 */
export function closeAfterAnswer(req: IncomingMessage, res: ServerResponse): void {
  if (req.complete) return
  const socket = req.socket
  res.setHeader('Connection', 'close')
  // Node ends such a connection with destroySoon() once the answer is out: end our side only.
  socket.destroySoon = () => socket.end()
  res.once('finish', () => setTimeout(() => socket.destroy(), LINGER_MS).unref())
}

export function mediaType(req: IncomingMessage): string {
  return (req.headers['content-type'] ?? 'application/json').split(';')[0].trim().toLowerCase()
}

/** Decodes an object body (create, update) by its content type. */
export function decodeObject(body: Buffer, contentType: string): unknown {
  if (body.length === 0) throw badRequest('the request body is empty')
  switch (contentType) {
    case 'application/json':
    case '*/*':
      return parseJson(body)
    case 'application/yaml':
    case 'application/x-yaml':
      return checkedNesting(parseYamlBody(body))
    case 'application/vnd.kubernetes.protobuf':
      try {
        return checkedNesting(decodeK8sProtobuf(body))
      } catch (err) {
        if (err instanceof ApiError) throw err
        throw badRequest(`the protobuf request body could not be decoded: ${(err as Error).message}`, { cause: err })
      }
    default:
      throw unsupportedMediaType(contentType)
  }
}

/** JSON with the place of a syntax error in the 400, and nothing nested past MAX_NESTING_DEPTH. */
export function parseJson(body: Buffer): unknown {
  try {
    return parseJsonText(body.toString('utf8'))
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}

function parseYamlBody(body: Buffer): unknown {
  try {
    // The yaml package's message names the line and column and quotes the line.
    return parseYaml(body.toString('utf8'))
  } catch (err) {
    throw badRequest(`the request body is not valid YAML: ${(err as Error).message}`, { cause: err })
  }
}

function checkedNesting(value: unknown): unknown {
  try {
    checkNesting(value)
  } catch (err) {
    throw badRequest(`the request body is refused: ${(err as Error).message}`, { cause: err })
  }
  return value
}
