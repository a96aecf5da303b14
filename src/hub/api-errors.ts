// Errors of the HTTP API, each carrying the Kubernetes Status it is answered with.

import type { FieldError, Status } from '../api/types.js'
import { HubError } from './errors.js'

export interface StatusDetails {
  name?: string
  group?: string
  kind?: string
}

/** An error the API answers with a Kubernetes Status object. */
export class ApiError extends HubError {
  readonly code: string
  constructor(
    readonly httpStatus: number,
    readonly reason: string,
    message: string,
    readonly details: StatusDetails & { causes?: FieldError[] } = {},
    options?: { cause?: unknown },
  ) {
    super(message, options)
    this.code = `BRAMBLE_API_${reason.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase()}`
  }

  toStatus(): Status {
    const { causes, ...rest } = this.details
    const details: Status['details'] = { ...rest }
    if (causes) details.causes = causes.map((c) => ({ reason: c.type, message: c.message, field: c.field }))
    const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: this.message, reason: this.reason, code: this.httpStatus }
    if (Object.keys(details).length > 0) status.details = details
    return status
  }
}

export const badRequest = (message: string, options?: { cause?: unknown }) => new ApiError(400, 'BadRequest', message, {}, options)
export const unauthorized = () => new ApiError(401, 'Unauthorized', 'Unauthorized')
export const forbidden = (message: string) => new ApiError(403, 'Forbidden', message)
export const notFoundPath = (path: string) => new ApiError(404, 'NotFound', `the server could not find the requested resource (${path})`)
export const methodNotAllowed = (method: string, path: string) =>
  new ApiError(405, 'MethodNotAllowed', `the server does not allow this method on the requested resource (${method} ${path})`)
export const unsupportedMediaType = (contentType: string) =>
  new ApiError(415, 'UnsupportedMediaType', `the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf (got "${contentType}")`)
/** The store refused a write for want of room (StoreFullError): 507, its message saying what to do. */
export const insufficientStorage = (err: Error) => new ApiError(507, 'InsufficientStorage', err.message, {}, { cause: err })
export const tooLarge = (limitBytes: number) => new ApiError(413, 'RequestEntityTooLarge', `the request body is larger than ${limitBytes} bytes`)

/** `deployments.apps`: how Kubernetes names a resource in messages. */
export function qualifiedResource(group: string, plural: string): string {
  return group === '' ? plural : `${plural}.${group}`
}

export function notFound(group: string, plural: string, name: string): ApiError {
  return new ApiError(404, 'NotFound', `${qualifiedResource(group, plural)} "${name}" not found`, { name, group, kind: plural })
}

export function alreadyExists(group: string, plural: string, name: string): ApiError {
  return new ApiError(409, 'AlreadyExists', `${qualifiedResource(group, plural)} "${name}" already exists`, { name, group, kind: plural })
}

export function conflict(group: string, plural: string, name: string): ApiError {
  return new ApiError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualifiedResource(group, plural)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group, kind: plural },
  )
}

export function invalid(group: string, kind: string, name: string, causes: FieldError[]): ApiError {
  const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ')
  const message = `${kind}${group ? `.${group}` : ''} "${name}" is invalid: ${causes.length > 1 ? `[${summary}]` : summary}`
  return new ApiError(422, 'Invalid', message, { name, group, kind, causes })
}

export function gone(message: string): ApiError {
  return new ApiError(410, 'Expired', message)
}

/** A patch that could not be applied: malformed → 400, unsupported type → 415, a failed test or path → 422. */
export function patchFailed(err: unknown, group: string, kind: string, name: string): ApiError {
  const code = (err as { code?: string })?.code
  const message = `the patch could not be applied: ${(err as Error)?.message ?? String(err)}`
  if (code === 'BRAMBLE_PATCH_UNSUPPORTED_TYPE') return new ApiError(415, 'UnsupportedMediaType', message, {}, { cause: err })
  if (code === 'BRAMBLE_PATCH_TEST_FAILED' || code === 'BRAMBLE_PATCH_CONFLICT') return new ApiError(422, 'Invalid', message, { name, group, kind }, { cause: err })
  return new ApiError(400, 'BadRequest', message, {}, { cause: err })
}
