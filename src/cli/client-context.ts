// What every client command works with: a hub client made from the kubeconfig, the namespace
// to use, and where its output goes.

import { PartialFailureError, type ServerError } from './errors.js'
import { HubClient } from './http-client.js'
import { loadClientConfig, resolveKubeconfigPath } from './kubeconfig.js'

export interface Output {
  out(text: string): void
  err(text: string): void
  /** Whether stderr is a terminal (progress bars are drawn only there). */
  errIsTTY?: boolean
}

export const processOutput: Output = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  errIsTTY: process.stderr.isTTY === true,
}

export interface ClientContext {
  client: HubClient
  /** `-n` when given, else the kubeconfig context's namespace (else `default`). */
  namespace: string
  /** Whether `-n` was given explicitly. */
  namespaceFlag: boolean
  io: Output
}

export interface GlobalClientOptions {
  kubeconfig?: string
  namespace?: string
}

/**
 * Opens the client for one command. `env` is the process environment, read here only for
 * KUBECONFIG and the default data dir.
 */
export function openClientContext(options: GlobalClientOptions, env: NodeJS.ProcessEnv = process.env, io: Output = processOutput): ClientContext {
  const config = loadClientConfig(resolveKubeconfigPath(options.kubeconfig, env))
  const client = new HubClient(config, (text) => io.err(`Warning: ${text}\n`))
  return { client, namespace: options.namespace || config.namespace, namespaceFlag: Boolean(options.namespace), io }
}

/** Runs a command body with a context and closes its connections afterwards, so the process can exit. */
export async function withClient<T>(options: GlobalClientOptions, body: (ctx: ClientContext) => Promise<T>, env: NodeJS.ProcessEnv = process.env): Promise<T> {
  const ctx = openClientContext(options, env)
  try {
    return await body(ctx)
  } finally {
    ctx.client.close()
  }
}

/**
 * Ends a command that worked through several objects: one failure out of one object is thrown
 * as it is (main prints it); otherwise each failure is printed as kubectl prints it, and a
 * summary is thrown.
 */
export function finishBatch(io: Output, failures: readonly ServerError[], total: number, verb: string, alreadyReported = 0): void {
  const failed = failures.length + alreadyReported
  if (failed === 0) return
  if (failures.length === 1 && failed === 1 && total <= 1) throw failures[0]
  for (const err of failures) io.err(`Error from server (${err.reason || err.status}): ${err.message}\n`)
  throw new PartialFailureError(failed, Math.max(total, failed), verb)
}
