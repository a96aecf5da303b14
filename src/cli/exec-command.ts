// `bramble exec POD [-c C] [-i] [-t] -- CMD ...`: runs a command in a pod's container through the
// hub (which relays it to the pod's node), as `kubectl exec` does over `v5.channel.k8s.io`.
// Resolves with the command's exit code, which the process exits with.

import type { Readable, Writable } from 'node:stream'
import type { ClientContext } from './client-context.js'
import { ServerError, UsageError } from './errors.js'
import { channelMessage, openPodWebSocket } from './pod-websocket.js'

const STDIN = 0
const STDOUT = 1
const STDERR = 2
const STATUS = 3
const RESIZE = 4
const CLOSE = 255

export interface ExecOptions {
  container?: string
  stdin?: boolean
  tty?: boolean
}

export interface ExecStreams {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown }
  stdout: Writable & { columns?: number; rows?: number; on(event: 'resize', fn: () => void): unknown }
  stderr: Writable
}

export function podNameOf(target: string, verb: string): string {
  const name = target.startsWith('pod/') ? target.slice(4) : target.startsWith('pods/') ? target.slice(5) : target
  if (!name || name.includes('/')) throw new UsageError(`${verb} takes a pod name (or pod/NAME), got "${target}"`)
  return name
}

export async function runExec(ctx: ClientContext, target: string, command: string[], options: ExecOptions, io: ExecStreams): Promise<number> {
  const name = podNameOf(target, 'exec')
  if (command.length === 0) throw new UsageError('exec needs a command after the pod: bramble exec POD -- COMMAND [ARG...]')
  const tty = options.tty === true
  if (tty && !options.stdin) ctx.io.err('Unable to use a TTY - input is not attached (use -i as well)\n')
  const useTty = tty && options.stdin === true
  const query = new URLSearchParams()
  for (const c of command) query.append('command', c)
  if (options.container) query.set('container', options.container)
  query.set('stdout', 'true')
  query.set('stderr', useTty ? 'false' : 'true')
  query.set('stdin', options.stdin ? 'true' : 'false')
  query.set('tty', useTty ? 'true' : 'false')
  const path = `/api/v1/namespaces/${encodeURIComponent(ctx.namespace)}/pods/${encodeURIComponent(name)}/exec`
  const ws = await openPodWebSocket(ctx.client.config, path, query, ['v5.channel.k8s.io'])

  const raw = useTty && io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function'
  if (raw) io.stdin.setRawMode!(true)
  const sendSize = () => {
    if (io.stdout.columns && io.stdout.rows) ws.send(channelMessage(RESIZE, Buffer.from(JSON.stringify({ Width: io.stdout.columns, Height: io.stdout.rows }))))
  }
  if (useTty) {
    sendSize()
    io.stdout.on('resize', sendSize)
  }
  const onInput = (data: Buffer) => {
    io.stdin.pause()
    ws.send(channelMessage(STDIN, data), () => io.stdin.resume())
  }
  const onInputEnd = () => ws.send(channelMessage(CLOSE, Buffer.from([STDIN])))
  if (options.stdin) {
    io.stdin.on('data', onInput)
    io.stdin.once('end', onInputEnd)
  }

  let status: { status?: string; message?: string; reason?: string; details?: { causes?: Array<{ reason?: string; message?: string }> } } | undefined
  try {
    await new Promise<void>((resolve, reject) => {
      ws.on('message', (data: Buffer) => {
        if (data.length === 0) return
        const body = data.subarray(1)
        if (data[0] === STDOUT) io.stdout.write(body)
        else if (data[0] === STDERR) io.stderr.write(body)
        else if (data[0] === STATUS) {
          try {
            status = JSON.parse(body.toString('utf8'))
          } catch {
            status = { status: 'Failure', message: body.toString('utf8') }
          }
        }
      })
      ws.once('close', () => resolve())
      ws.once('error', reject)
    })
  } finally {
    if (options.stdin) {
      io.stdin.off('data', onInput)
      io.stdin.off('end', onInputEnd)
      io.stdin.pause()
    }
    if (raw) io.stdin.setRawMode!(false)
  }
  if (!status) throw new ServerError(`the connection to pod ${name} closed before the command's exit status came`, 0, '')
  if (status.status === 'Success') return 0
  const exitCode = Number(status.details?.causes?.find((c) => c.reason === 'ExitCode')?.message)
  if (status.reason === 'NonZeroExitCode' && Number.isInteger(exitCode)) return exitCode
  throw new ServerError(status.message ?? `exec in pod ${name} failed`, 500, status.reason ?? '')
}
