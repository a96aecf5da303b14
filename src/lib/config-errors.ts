// Typed errors of start-up configuration. main maps them to exit code 2 (a usage error).

export class ConfigError extends Error {
  override readonly name = 'ConfigError'
  readonly code = 'BRAMBLE_CONFIG_INVALID'
  /** The flag as a person types it (`--api-port`), or the environment variable that set it. */
  readonly flag: string
  readonly reason: string
  constructor(flag: string, reason: string, options?: { cause?: unknown }) {
    super(`${flag} ${reason}`, options)
    this.flag = flag
    this.reason = reason
  }
}
