// Errors of the client commands. Each says, in one sentence, what went wrong and, where it can,
// what to do; main.ts prints `error: <message>` on stderr and exits with exitCodeOf(err).

import { CommanderError } from 'commander'

export abstract class CliError extends Error {
  abstract readonly code: string
  /** The process exit code DESIGN.md assigns: 1 for what the server reported, 2 for usage. */
  abstract readonly exitCode: number
  override get name(): string {
    return this.constructor.name
  }
}

/** The command line itself is wrong: a bad flag, an unknown resource type, a missing argument (exit 2). */
export class UsageError extends CliError {
  readonly code = 'BRAMBLE_CLI_USAGE'
  readonly exitCode = 2
}

/** No kubeconfig could be found or read, or it lacks what a client needs (exit 2: the invocation must change). */
export class KubeconfigError extends CliError {
  readonly code = 'BRAMBLE_CLI_KUBECONFIG'
  readonly exitCode = 2
}

/** The hub answered with an error Status; `message` is the Status message (exit 1). */
export class ServerError extends CliError {
  readonly code = 'BRAMBLE_CLI_SERVER'
  readonly exitCode = 1
  constructor(
    message: string,
    /** HTTP status code, e.g. 404. */
    readonly status: number,
    /** Kubernetes Status reason, e.g. `NotFound`, `Invalid`, `AlreadyExists`. */
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** The hub could not be reached at all (exit 1). */
export class ConnectionError extends CliError {
  readonly code = 'BRAMBLE_CLI_CONNECTION'
  readonly exitCode = 1
  constructor(
    readonly server: string,
    readonly detail: string,
    options?: ErrorOptions,
  ) {
    super(`cannot reach the hub at ${server}: ${detail}`, options)
  }
}

/**
 * The cluster is not in a state that allows what was asked (no earlier revision to roll back to,
 * pods a drain may not evict); the message says what to change (exit 1).
 */
export class CommandError extends CliError {
  readonly code = 'BRAMBLE_CLI_REFUSED'
  readonly exitCode = 1
}

/** A wait (`rollout status --timeout`, `drain --timeout`) ran out of time (exit 1). */
export class WaitTimeoutError extends CliError {
  readonly code = 'BRAMBLE_CLI_TIMEOUT'
  readonly exitCode = 1
}

/**
 * Some items of a batch (apply -f, delete NAME...) failed; each failure was already printed on
 * stderr, so this only sums up (exit 1).
 */
export class PartialFailureError extends CliError {
  readonly code = 'BRAMBLE_CLI_PARTIAL_FAILURE'
  readonly exitCode = 1
  constructor(
    readonly failed: number,
    readonly total: number,
    verb: string,
  ) {
    super(`${failed} of ${total} ${total === 1 ? 'object' : 'objects'} could not be ${verb}`)
  }
}

/**
 * The exit code for an error thrown by a command: 2 for usage errors (commander's included),
 * 0 for commander's help and version exits, 1 for everything else.
 */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode
  if (err instanceof CommanderError) {
    if (err.code === 'commander.helpDisplayed' || err.code === 'commander.help' || err.code === 'commander.version') return 0
    return 2
  }
  return 1
}
