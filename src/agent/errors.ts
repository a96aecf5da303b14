// Typed errors of the agent's pod runtime. Each has a stable code; the agent turns them into
// container states (ErrImagePull) and Events people read.

export abstract class AgentError extends Error {
  abstract readonly code: string
}

export class ImagePullError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_IMAGE_PULL'
  constructor(readonly image: string, detail: string, options?: { cause?: unknown }) {
    super(`could not pull image "${image}": ${detail}; check the image name and that the node can reach its registry`, options)
  }
}

export class ContainerNotFoundError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_CONTAINER_NOT_FOUND'
  constructor(readonly id: string, options?: { cause?: unknown }) {
    super(`container ${id} not found`, options)
  }
}

export class ContainerRuntimeError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_RUNTIME'
  constructor(readonly operation: string, readonly target: string, options?: { cause?: unknown }) {
    super(`container runtime failed to ${operation} ${target}${detailOf(options?.cause)}`, options)
  }
}

/** A fake runtime met a call it does not implement: tests must never pass silently over it. */
export class NotImplementedError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_NOT_IMPLEMENTED'
  constructor(readonly operation: string) {
    super(`${operation} is not implemented by this container runtime`)
  }
}

/** A desired pod refers to a ConfigMap, Secret or key that is not there (and is not optional). */
export class PodConfigError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_POD_CONFIG'
  constructor(readonly pod: string, readonly reason: 'CreateContainerConfigError', message: string) {
    super(message)
  }
}

function detailOf(cause: unknown): string {
  if (cause instanceof Error) return `: ${cause.message}`
  return ''
}
