// Image archives through the hub, for sites without a registry (issue 9). Shared by the client,
// the hub and the agent:
//
// 1. The client PUTs a `docker save` archive to IMAGE_ARCHIVES_PATH?id=ID&offset=N in chunks of at
//    most IMAGE_CHUNK_BYTES (admin; each chunk is one short request, so a slow link never meets the
//    API's whole-request timeout, and a failed chunk is sent again from its offset).
// 2. It POSTs an ImageLoadRequest to IMAGE_LOADS_PATH: the hub asks each node over `down/rpc`
//    (method `image-load`) to fetch the archive, and answers once every node said loaded or failed.
// 3. A node GETs the archive from NODE_IMAGE_ARCHIVES_PATH?id=ID over HTTPS, authenticating with its
//    own MQTT username and password (HTTP Basic), and only for a load it was asked to do.
// `image copy` (IMAGE_COPIES_PATH) asks the source node (method `image-save`) to PUT `docker save`
// of the image to NODE_IMAGE_ARCHIVES_PATH first, then loads it on the targets as above.

export const IMAGE_ARCHIVES_PATH = '/bramble/v1/image-archives'
export const IMAGE_LOADS_PATH = '/bramble/v1/image-loads'
export const IMAGE_COPIES_PATH = '/bramble/v1/image-copies'
export const NODE_IMAGE_ARCHIVES_PATH = '/bramble/v1/node-image-archives'

/** Bytes per PUT: small enough for a slow link to send within the API's request timeout. */
export const IMAGE_CHUNK_BYTES = 4 * 1024 * 1024

export interface ImageLoadRequest {
  /** The id the archive was uploaded under. */
  archive: string
  /** The archive's size in bytes: the hub refuses to hand out a partial upload. */
  size: number
  /** Node names; or `all` for every Ready node. */
  nodes?: string[]
  all?: boolean
}

export interface ImageCopyRequest {
  image: string
  from: string
  to: string[]
}

export interface ImageNodeResult {
  node: string
  ok: boolean
  /** The image names the archive held (`docker load`'s "Loaded image: ..."). */
  images?: string[]
  error?: string
}

export interface ImageLoadResponse {
  results: ImageNodeResult[]
}

/** Archive ids the client makes: 16 to 64 lowercase hex digits (they become file names on the hub). */
export function isArchiveId(id: unknown): id is string {
  return typeof id === 'string' && /^[0-9a-f]{16,64}$/.test(id)
}
