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

// ---- Joining and the agent's own state ------------------------------------------------------

/** The token's CA hash does not match the certificate the hub serves: someone else may be answering. */
export class JoinCaMismatchError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_JOIN_CA_MISMATCH'
  constructor(readonly hub: string, readonly expected: string, readonly actual: string) {
    super(`the hub's CA does not match the join token: refusing to join ${hub} (token expects sha256 ${expected}, the hub serves ${actual})`)
  }
}

export type JoinRefusal = 'expired' | 'revoked' | 'unknown-token' | 'invalid-node-name' | 'malformed-token' | 'other'

/** The hub refused the join; `reason` says why in a form code can act on. */
export class JoinRefusedError extends AgentError {
  readonly code: string
  constructor(readonly hub: string, readonly reason: JoinRefusal, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = `BRAMBLE_AGENT_JOIN_${reason.replace(/-/g, '_').toUpperCase()}`
  }
}

/** The hub could not be reached or answered something that is not a join answer. */
export class JoinFailedError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_JOIN_FAILED'
  constructor(readonly hub: string, detail: string, options?: { cause?: unknown }) {
    super(`could not join the hub at ${hub}: ${detail}`, options)
  }
}

/** No identity on disk and no token to get one with. */
export class AgentIdentityMissingError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_NO_IDENTITY'
  constructor(readonly path: string) {
    super(`this node has not joined a hub yet (no ${path}); run \`bramble agent --hub HOST --token TOKEN\` once`)
  }
}

/** identity.json exists but cannot be used. */
export class AgentIdentityCorruptError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_IDENTITY_CORRUPT'
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`cannot read this node's identity at ${path}; move it away and join again with a new token`, options)
  }
}

// ---- The WireGuard overlay ------------------------------------------------------------------

/** An `ip` or `wg` command (or wireguard-go) failed; `command` is what ran, never a key. */
export class WireGuardError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_WIREGUARD'
  constructor(readonly command: string, detail: string, options?: { cause?: unknown }) {
    super(`WireGuard: \`${command}\` failed: ${detail}`, options)
  }
}

/** An iptables command of the service proxy failed; the detail is the command's own message. */
export class IptablesError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_IPTABLES'
  constructor(readonly command: string, detail: string, options?: { cause?: unknown }) {
    super(`${command} failed: ${detail}; the node's service rules are not up to date (is iptables installed and is the agent root?)`, options)
  }
}

// ---- The pod network -------------------------------------------------------------------------

/** A command the pod network runs (iptables) failed; `exitCode` and `stderr` are the command's own. */
export class HostCommandError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_HOST_COMMAND'
  constructor(readonly command: string, readonly exitCode: number, readonly stderr: string, options?: { cause?: unknown }) {
    super(`\`${command}\` failed (exit ${exitCode}): ${stderr || 'no message'}; pods on this node may not reach other nodes (is iptables installed and is the agent root?)`, options)
  }
}

/** A desired message could not be stored in the replica; nothing of it was written. */
export class ReplicaWriteError extends AgentError {
  readonly code = 'BRAMBLE_AGENT_REPLICA_WRITE'
  readonly noSpace: boolean
  readonly freeBytes: number | undefined
  constructor(readonly path: string, readonly revision: number, failure: { cause: Error; noSpace: boolean; freeBytes?: number }) {
    super(
      failure.noSpace
        ? `could not store desired state (revision ${revision}) in the replica at ${path}: its disk is full (${failure.freeBytes ?? 'unknown'} bytes free); free space there, the agent retries`
        : `could not store desired state (revision ${revision}) in the replica at ${path}: ${failure.cause.message}`,
      { cause: failure.cause },
    )
    this.noSpace = failure.noSpace
    this.freeBytes = failure.freeBytes
  }
}
