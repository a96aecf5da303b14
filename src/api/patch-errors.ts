// Typed errors of patching and of decoding request bodies. The API maps them to Status objects:
// BRAMBLE_PATCH_UNSUPPORTED_TYPE → 415, BRAMBLE_PATCH_TEST_FAILED / BRAMBLE_PATCH_CONFLICT → 422,
// the rest → 400 BadRequest.

export type PatchErrorCode =
  /** The body is not valid JSON, or not the shape the patch type needs (an object, an array of ops). */
  | 'BRAMBLE_PATCH_MALFORMED'
  /** The content type is not one of the three patch types Kubernetes accepts. */
  | 'BRAMBLE_PATCH_UNSUPPORTED_TYPE'
  /** A JSON patch `test` operation did not match. */
  | 'BRAMBLE_PATCH_TEST_FAILED'
  /** A JSON patch operation could not be applied (missing path, bad index). */
  | 'BRAMBLE_PATCH_CONFLICT'
  /** A strategic merge patch directive is unknown or misplaced. */
  | 'BRAMBLE_PATCH_BAD_DIRECTIVE'

export class PatchError extends Error {
  override readonly name = 'PatchError'
  constructor(
    readonly code: PatchErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

export type ProtobufDecodeErrorCode =
  /** The body does not start with the `k8s\0` magic of Kubernetes protobuf. */
  | 'BRAMBLE_PROTOBUF_BAD_MAGIC'
  /** The envelope names an apiVersion/kind Bramble has no protobuf schema for. */
  | 'BRAMBLE_PROTOBUF_UNKNOWN_KIND'
  /** The bytes are not a valid message of the expected type. */
  | 'BRAMBLE_PROTOBUF_MALFORMED'
  /** The message sets a field Bramble does not decode from protobuf; the client should send JSON. */
  | 'BRAMBLE_PROTOBUF_UNSUPPORTED_FIELD'

export class ProtobufDecodeError extends Error {
  override readonly name = 'ProtobufDecodeError'
  constructor(
    readonly code: ProtobufDecodeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}
