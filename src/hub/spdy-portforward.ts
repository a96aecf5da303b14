// kubectl port-forward over SPDY/3.1 (spdy-connection.ts): since kubectl 1.31 tunneled in a
// WebSocket (the subprotocol `SPDY/3.1+portforward.k8s.io` carries the connection's bytes as
// binary messages), before that (and in 1.30 by default) on the HTTP connection itself upgraded to
// `SPDY/3.1`. Per forwarded connection kubectl opens two streams with the headers `streamtype`
// (error or data), `port` and `requestid`; the data stream is the connection, the error stream
// carries a failure's text. Each is one port-forward session through the pod's node.

import type { KubeObject } from '../api/types.js'
import type { Logger } from '../lib/logger.js'
import type { PodStreams, StreamSession } from './pod-streams.js'
import { SpdyServerConnection, type SpdyTransport } from './spdy-connection.js'

export const SPDY_TUNNEL_PROTOCOL = 'SPDY/3.1+portforward.k8s.io'

interface Forward {
  port: number
  dataStream?: number
  errorStream?: number
  session?: StreamSession
  finished: boolean
}

/** Serves one SPDY connection: each request id's stream pair is one connection to the pod's port. */
export function serveSpdyPortForward(transport: SpdyTransport, pod: KubeObject, streams: PodStreams, log: Logger): void {
  const forwards = new Map<string, Forward>()
  const byStream = new Map<number, { forward: Forward; type: string }>()

  const finish = (forward: Forward, error?: string) => {
    if (forward.finished) return
    forward.finished = true
    if (forward.errorStream !== undefined) {
      if (error) connection.write(forward.errorStream, Buffer.from(error))
      connection.finish(forward.errorStream)
    }
    if (forward.dataStream !== undefined) connection.finish(forward.dataStream)
  }

  const start = (forward: Forward) => {
    if (forward.session || forward.dataStream === undefined) return
    const dataStream = forward.dataStream
    try {
      forward.session = streams.open(pod, 'port-forward', { port: forward.port }, {
        output: (_channel, data, passedOn) => connection.write(dataStream, data, passedOn),
        end: (result) => finish(forward, result.error),
      })
    } catch (err) {
      finish(forward, (err as Error).message)
    }
  }

  const connection: SpdyServerConnection = new SpdyServerConnection(
    transport,
    {
      stream: (id, headers) => {
        const port = Number(headers.port)
        const type = headers.streamtype
        const requestId = headers.requestid ?? String(id)
        if (!Number.isInteger(port) || port < 1 || port > 65535 || (type !== 'data' && type !== 'error')) return connection.reset(id)
        const forward = forwards.get(requestId) ?? { port, finished: false }
        forwards.set(requestId, forward)
        byStream.set(id, { forward, type })
        if (type === 'data') forward.dataStream = id
        else forward.errorStream = id
        start(forward)
      },
      data: (id, payload, fin) => {
        const stream = byStream.get(id)
        const session = stream?.type === 'data' ? stream.forward.session : undefined
        if (!session) return
        if (payload.length > 0) connection.input.push(() => session.send(1, payload))
        if (fin) connection.input.push(async () => session.endInput())
      },
      reset: (id) => {
        const stream = byStream.get(id)
        if (stream?.type === 'data' && stream.forward.session) streams.cancel(stream.forward.session)
        if (stream) stream.forward.finished = true
      },
      closed: () => {
        for (const forward of forwards.values()) if (forward.session) streams.cancel(forward.session)
      },
    },
    log.child({ pod: pod.metadata.name }),
  )
}
