// Typed errors of the api layer. Each has a stable code; callers map them to Kubernetes Status
// objects (a bad manifest or selector is the client's fault: 400/422).

export abstract class ApiError extends Error {
  abstract readonly code: string
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
  }
}

/** A string that is not a Kubernetes resource quantity (`500m`, `1.5`, `128Mi`, `1e3`). */
export class QuantityError extends ApiError {
  readonly code = 'BRAMBLE_API_QUANTITY'
  constructor(readonly input: string, readonly reason: string) {
    super(`quantity "${input}" is invalid: ${reason}; write a number with an optional suffix such as 500m, 1.5, 128Mi, 1G or 1e3`)
  }
}

/** A label or field selector string that does not parse. */
export class SelectorParseError extends ApiError {
  readonly code = 'BRAMBLE_API_SELECTOR'
  constructor(readonly selector: string, readonly reason: string) {
    super(`unable to parse selector "${selector}": ${reason}`)
  }
}

/** A field selector naming a field the kind does not support selecting on. */
export class UnsupportedFieldSelectorError extends ApiError {
  readonly code = 'BRAMBLE_API_FIELD_SELECTOR_UNSUPPORTED'
  constructor(readonly field: string, readonly kind: string | undefined, readonly supported: readonly string[]) {
    super(`field label not supported: ${field}${kind ? ` (${kind} supports ${supported.join(', ')})` : ''}`)
  }
}

/** A manifest (YAML or JSON) that does not parse, or parses to something that is not an object. */
export class ManifestParseError extends ApiError {
  readonly code = 'BRAMBLE_API_MANIFEST_PARSE'
  constructor(
    readonly source: string,
    readonly documentIndex: number,
    readonly line: number | undefined,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${source}: document ${documentIndex + 1}${line !== undefined ? `, line ${line}` : ''}: ${reason}`, options)
  }
}
