// exec over SPDY/3.1 (spdy-connection.ts), as kubectl before 1.30 speaks it (`v4.channel.k8s.io`):
// kubectl opens one stream per part, named by its `streamtype` header (error, stdin, stdout,
// stderr, resize); the command starts once every stream the query asked for is open. stdin's FIN
// closes the command's stdin, resize carries JSON `{"Width":W,"Height":H}` objects one after
// another, and the error stream gets the final Status (the same as over WebSocket) before every
// stream is finished.

import type { KubeObject } from '../api/types.js'
import type { Logger } from '../lib/logger.js'
import type { PodStreams, StreamSession } from './pod-streams.js'
import { execStatus, type ExecOptions } from './pod-stream-requests.js'
import { SpdyServerConnection, type SpdyTransport } from './spdy-connection.js'

type StreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize'

export function serveSpdyExec(transport: SpdyTransport, pod: KubeObject, options: ExecOptions, streams: PodStreams, log: Logger): void {
  const expected: StreamType[] = ['error']
  if (options.stdin) expected.push('stdin')
  if (options.stdout) expected.push('stdout')
  if (options.stderr && !options.tty) expected.push('stderr')
  if (options.tty) expected.push('resize')
  const ids = new Map<StreamType, number>()
  let session: StreamSession | undefined
  let resizeText = ''
  let ended = false

  const end = (result: { exitCode?: number; error?: string }) => {
    if (ended) return
    ended = true
    const error = ids.get('error')
    if (error !== undefined) connection.write(error, execStatus(result, options.command))
    for (const id of ids.values()) connection.finish(id)
  }

  const start = () => {
    if (session || ended || !expected.every((type) => ids.has(type))) return
    try {
      session = streams.open(pod, 'exec', { container: options.container, command: options.command, stdin: options.stdin, tty: options.tty }, {
        output: (channel, data, passedOn) => {
          const id = ids.get(channel === 2 ? 'stderr' : 'stdout')
          if (id === undefined) return passedOn()
          connection.write(id, data, passedOn)
        },
        end,
      })
    } catch (err) {
      end({ error: (err as Error).message })
    }
  }

  /** Sizes arrive as JSON objects back to back; whole ones are applied, the rest waits. */
  const resize = (text: string) => {
    resizeText += text
    for (let close = resizeText.indexOf('}'); close >= 0; close = resizeText.indexOf('}')) {
      const one = resizeText.slice(0, close + 1)
      resizeText = resizeText.slice(close + 1)
      try {
        const size = JSON.parse(one) as { Width?: unknown; Height?: unknown }
        const open = session
        if (open && typeof size.Width === 'number' && typeof size.Height === 'number') connection.input.push(async () => open.resize(size.Width as number, size.Height as number))
      } catch {}
    }
  }

  const connection: SpdyServerConnection = new SpdyServerConnection(
    transport,
    {
      stream: (id, headers) => {
        const type = headers.streamtype as StreamType
        if (!expected.includes(type) || ids.has(type)) return connection.reset(id)
        ids.set(type, id)
        start()
      },
      data: (id, payload, fin) => {
        const open = session
        if (!open) return
        if (id === ids.get('stdin')) {
          if (payload.length > 0) connection.input.push(() => open.send(0, payload))
          if (fin) connection.input.push(async () => open.endInput())
        } else if (id === ids.get('resize') && payload.length > 0) resize(payload.toString('utf8'))
      },
      reset: () => {},
      closed: () => {
        ended = true
        if (session) streams.cancel(session)
      },
    },
    log.child({ pod: pod.metadata.name }),
  )
}
