// What an exec or port-forward request asks for (its query, checked against the pod, each error
// naming the parameter), and the Status that ends an exec, shared by the WebSocket and SPDY servers.

import type { KubeObject } from '../api/types.js'
import { badRequest } from './api-errors.js'

export interface ExecOptions {
  container: string
  command: string[]
  stdin: boolean
  stdout: boolean
  stderr: boolean
  tty: boolean
}

/** The exec query (`command` repeated, `container`, `stdin`, `stdout`, `stderr`, `tty`), checked against the pod; errors name the parameter. */
export function parseExecQuery(q: URLSearchParams, pod: KubeObject): ExecOptions {
  const command = q.getAll('command')
  if (command.length === 0) throw badRequest('command: Required value: you must specify at least 1 command')
  const containers = ((pod.spec?.containers ?? []) as Array<{ name: string }>).map((c) => c.name)
  const container = q.get('container') || containers[0]
  if (!containers.includes(container)) throw badRequest(`container: Invalid value: "${container}": container ${container} is not valid for pod ${pod.metadata.name}; choose one of: [${containers.join(' ')}]`)
  const flag = (name: string) => {
    const v = q.get(name)
    if (v === null || v === '' || v === 'false' || v === '0') return false
    if (v === 'true' || v === '1') return true
    throw badRequest(`${name}: Invalid value: "${v}": must be true or false`)
  }
  const options = { container, command, stdin: flag('stdin'), stdout: flag('stdout'), stderr: flag('stderr'), tty: flag('tty') }
  if (!options.stdin && !options.stdout && !options.stderr) throw badRequest('stdin, stdout, stderr: Required value: you must specify at least one of stdin, stdout, stderr')
  return options
}

/** The Status that ends an exec (v4 and later): Success, or Failure with the exit code as an ExitCode cause, as kubectl reads it. */
export function execStatus(result: { exitCode?: number; error?: string }, command: string[]): Buffer {
  const status =
    result.error !== undefined
      ? { metadata: {}, status: 'Failure', message: result.error, reason: 'InternalError', code: 500 }
      : result.exitCode
        ? {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${command.join(' ')}], exit code ${result.exitCode}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(result.exitCode) }] },
          }
        : { metadata: {}, status: 'Success' }
  return Buffer.from(JSON.stringify(status))
}

/** The `ports` query (repeated or comma-separated), each 1-65535. */
export function parsePorts(q: URLSearchParams): number[] {
  const raw = q.getAll('ports').flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean)
  if (raw.length === 0) throw badRequest('ports: Required value: at least one port to forward')
  return raw.map((p) => {
    const port = Number(p)
    if (!/^\d+$/.test(p) || port < 1 || port > 65535) throw badRequest(`ports: Invalid value: "${p}": must be a port number from 1 to 65535`)
    return port
  })
}

