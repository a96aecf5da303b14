// `bramble port-forward POD [LOCAL:]REMOTE ...`: listens on local ports and carries each accepted
// connection to the pod's port through the hub (relayed by the pod's node), one WebSocket per
// connection (`v4.channel.k8s.io`: channel 0 data, 1 errors, each first carrying the port; a
// `[255, 0]` message half-closes, so request-then-EOF clients work).

import { createServer, type Server, type Socket } from 'node:net'
import type { ClientContext } from './client-context.js'
import { CommandError, UsageError } from './errors.js'
import { podNameOf } from './exec-command.js'
import { channelMessage, openPodWebSocket } from './pod-websocket.js'

const DATA = 0
const ERROR = 1
const CLOSE = 255

export interface PortPair {
  /** 0 picks a free port. */
  local: number
  remote: number
}

export interface PortForwardOptions {
  address?: string
}

export interface RunningPortForward {
  /** The local ports, in the order given (a 0 replaced by the port picked). */
  ports: PortPair[]
  close(): Promise<void>
}

/** `8080`, `9090:8080` or `:8080` (a free local port). */
export function parsePortPair(spec: string): PortPair {
  const m = /^(\d*):(\d+)$/.exec(spec) ?? /^()(\d+)$/.exec(spec)
  const check = (text: string, what: string) => {
    const n = Number(text)
    if (!Number.isInteger(n) || n < 0 || n > 65535 || (what === 'remote' && n === 0)) throw new UsageError(`port-forward: the ${what} port in "${spec}" must be a number from ${what === 'remote' ? 1 : 0} to 65535`)
    return n
  }
  if (!m) throw new UsageError(`port-forward takes ports as LOCAL:REMOTE, REMOTE or :REMOTE, got "${spec}"`)
  const remote = check(m[2], 'remote')
  const local = m[1] === '' ? (spec.startsWith(':') ? 0 : remote) : check(m[1], 'local')
  return { local, remote }
}

export async function runPortForward(ctx: ClientContext, target: string, specs: string[], options: PortForwardOptions = {}): Promise<RunningPortForward> {
  const name = podNameOf(target, 'port-forward')
  if (specs.length === 0) throw new UsageError('port-forward needs at least one port: bramble port-forward POD [LOCAL:]REMOTE ...')
  const pairs = specs.map(parsePortPair)
  const podPath = `/api/v1/namespaces/${encodeURIComponent(ctx.namespace)}/pods/${encodeURIComponent(name)}`
  const pod = (await ctx.client.request('GET', podPath)).json
  const phase = pod?.status?.phase
  if (phase !== 'Running') throw new CommandError(`unable to forward ports because pod ${name} is not running (phase ${phase ?? 'unknown'})`)
  const address = options.address ?? '127.0.0.1'
  const servers: Server[] = []
  const sockets = new Set<Socket>()
  const ports: PortPair[] = []
  try {
    for (const pair of pairs) {
      const server = createServer({ allowHalfOpen: true }, (socket) => {
        sockets.add(socket)
        socket.on('close', () => sockets.delete(socket))
        forward(ctx, podPath, pair.remote, socket).catch((err) => {
          ctx.io.err(`error forwarding port ${pair.remote} of pod ${name}: ${(err as Error).message}\n`)
          socket.destroy()
        })
      })
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(pair.local, address, () => resolve())
      })
      servers.push(server)
      const local = (server.address() as { port: number }).port
      ports.push({ local, remote: pair.remote })
      ctx.io.out(`Forwarding from ${address}:${local} -> ${pair.remote}\n`)
    }
  } catch (err) {
    for (const s of servers) s.close()
    throw err
  }
  return {
    ports,
    close: async () => {
      for (const s of sockets) s.destroy()
      await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
    },
  }
}

async function forward(ctx: ClientContext, podPath: string, port: number, socket: Socket): Promise<void> {
  socket.pause()
  const ws = await openPodWebSocket(ctx.client.config, `${podPath}/portforward`, new URLSearchParams({ ports: String(port) }), ['v4.channel.k8s.io'])
  // The first message on each channel is the port it serves.
  const prefixed = new Set<number>()
  ws.on('message', (data: Buffer) => {
    if (data.length === 0) return
    const channel = data[0]
    let body = data.subarray(1)
    if (!prefixed.has(channel)) {
      prefixed.add(channel)
      body = body.subarray(2)
    }
    if (body.length === 0) return
    if (channel === DATA) {
      if (!socket.write(body)) {
        ws.pause()
        socket.once('drain', () => ws.resume())
      }
    } else if (channel === ERROR) ctx.io.err(`error forwarding port ${port}: ${body.toString('utf8')}\n`)
  })
  ws.on('close', () => socket.end())
  ws.on('error', () => socket.destroy())
  socket.on('data', (data: Buffer) => {
    socket.pause()
    ws.send(channelMessage(DATA, data), () => socket.resume())
  })
  socket.on('end', () => ws.send(channelMessage(CLOSE, Buffer.from([DATA]))))
  socket.on('close', () => ws.close())
  socket.on('error', () => ws.close())
  socket.resume()
}
