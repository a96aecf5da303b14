// Typed errors of the hub. Each has a stable code; the API maps them to Kubernetes Status objects.

import type { FieldError } from '../api/types.js'
import type { ObjectKey } from './store.js'

export abstract class HubError extends Error {
  abstract readonly code: string
}

export class StoreNotFoundError extends HubError {
  readonly code = 'BRAMBLE_STORE_NOT_FOUND'
  constructor(readonly key: ObjectKey) {
    super(`${key.resource} "${key.name}" not found${key.namespace ? ` in namespace ${key.namespace}` : ''}`)
  }
}

export class StoreExistsError extends HubError {
  readonly code = 'BRAMBLE_STORE_EXISTS'
  constructor(readonly key: ObjectKey) {
    super(`${key.resource} "${key.name}" already exists${key.namespace ? ` in namespace ${key.namespace}` : ''}`)
  }
}

export class StoreConflictError extends HubError {
  readonly code = 'BRAMBLE_STORE_CONFLICT'
  constructor(readonly key: ObjectKey, readonly expected: string, readonly actual: string) {
    super(
      `Operation cannot be fulfilled on ${key.resource} "${key.name}": the object has been modified (resourceVersion ${actual}, request had ${expected}); please apply your changes to the latest version and try again`,
    )
  }
}

export class StoreCompactedError extends HubError {
  readonly code = 'BRAMBLE_STORE_COMPACTED'
  constructor(readonly requested: number, readonly oldest: number) {
    super(`too old resource version: ${requested} (${oldest})`)
  }
}

export class StoreFullError extends HubError {
  readonly code = 'BRAMBLE_STORE_FULL'
  /** `freeBytes`: the disk itself is full (else the store reached --store-map-size); `advice`: what to do, when not that. */
  constructor(readonly path: string, options?: { cause?: unknown; freeBytes?: number; advice?: string }) {
    super(
      options?.freeBytes === undefined
        ? `the store at ${path} is full; ${options?.advice ?? 'raise --store-map-size or delete objects'}`
        : `the store at ${path} cannot grow: its disk has ${options.freeBytes} bytes free; free space on that disk (nothing was written)`,
      options,
    )
  }
}

/** An external store (etcd) that does not answer: none of its members could be reached. */
export class StoreUnavailableError extends HubError {
  readonly code = 'BRAMBLE_STORE_UNAVAILABLE'
  constructor(readonly where: string, options?: { cause?: unknown }) {
    const why = options?.cause instanceof Error ? options.cause.message : ''
    // A TLS handshake that failed is a matter of certificates, not of members being down.
    const advice = /certificate|SSL|TLS|handshake/i.test(why)
      ? "the TLS handshake failed: give --store-ca the CA that signed etcd's certificates, and --store-cert/--store-key a client certificate etcd trusts"
      : 'check that its members run and are reachable'
    super(`the store at ${where} does not answer${why ? ` (${why})` : ''}; ${advice}`, options)
  }
}

/** A leader's write refused by etcd because the election key no longer holds this leader's term. */
export class StoreFencedError extends HubError {
  readonly code = 'BRAMBLE_STORE_FENCED'
  constructor(readonly where: string, readonly electionKey: string) {
    super(`the write was refused: this hub no longer leads (${electionKey} in ${where} names another term); the new leader carries the work on`)
  }
}

export class StoreClosedError extends HubError {
  readonly code = 'BRAMBLE_STORE_CLOSED'
  constructor(readonly path: string) {
    super(`the store at ${path} is closed; the hub is shutting down`)
  }
}

export class InvalidObjectError extends HubError {
  readonly code = 'BRAMBLE_API_INVALID'
  constructor(readonly kind: string, readonly objectName: string, readonly causes: FieldError[]) {
    super(`${kind} "${objectName}" is invalid: ${causes.map((c) => `${c.field}: ${c.message}`).join(', ')}`)
  }
}
