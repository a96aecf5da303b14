// Reading and decoding request bodies: JSON, YAML and Kubernetes protobuf.

import type { IncomingMessage } from 'node:http'
import { parse as parseYaml } from 'yaml'
import { decodeK8sProtobuf } from '../api/protobuf.js'
import { badRequest, tooLarge, unsupportedMediaType } from './api-errors.js'

/** Kubernetes' own request body limit. */
export const MAX_BODY_BYTES = 3 * 1024 * 1024

export const PATCH_TYPES = new Set(['application/merge-patch+json', 'application/json-patch+json', 'application/strategic-merge-patch+json'])

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > MAX_BODY_BYTES) {
    req.resume()
    throw tooLarge(MAX_BODY_BYTES)
  }
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req) {
    size += (chunk as Buffer).length
    if (size > MAX_BODY_BYTES) throw tooLarge(MAX_BODY_BYTES)
    chunks.push(chunk as Buffer)
  }
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)
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
      try {
        return parseYaml(body.toString('utf8'))
      } catch (err) {
        throw badRequest(`the request body is not valid YAML: ${(err as Error).message}`, { cause: err })
      }
    case 'application/vnd.kubernetes.protobuf':
      try {
        return decodeK8sProtobuf(body)
      } catch (err) {
        throw badRequest(`the protobuf request body could not be decoded: ${(err as Error).message}`, { cause: err })
      }
    default:
      throw unsupportedMediaType(contentType)
  }
}

export function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'))
  } catch (err) {
    throw badRequest(`the request body is not valid JSON: ${(err as Error).message}`, { cause: err })
  }
}
