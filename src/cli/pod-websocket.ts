// Opens a WebSocket to a pod subresource (exec, portforward) of the hub, with the kubeconfig's CA
// pinned and its bearer token, as kubectl does. A refused upgrade becomes the ServerError its
// Status names. Given several hubs, one that cannot be reached or does not lead (503) passes it on.

import WebSocket from 'ws'
import type { ClientConfig } from './kubeconfig.js'
import { ConnectionError, ServerError } from './errors.js'

export async function openPodWebSocket(config: ClientConfig, path: string, query: URLSearchParams, protocols: string[]): Promise<WebSocket> {
  const servers = config.servers?.length ? config.servers : [config.server]
  for (const [index, server] of servers.entries()) {
    try {
      return await openOn(server, config, path, query, protocols)
    } catch (err) {
      const passOn = err instanceof ConnectionError || (err instanceof ServerError && err.status === 503)
      if (!passOn || index === servers.length - 1) throw err
    }
  }
  throw new ConnectionError(config.server, 'no server in the kubeconfig')
}

function openOn(server: string, config: ClientConfig, path: string, query: URLSearchParams, protocols: string[]): Promise<WebSocket> {
  const url = new URL(path, server.replace(/^http/, 'ws') + '/')
  url.search = query.toString()
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, {
      ca: config.ca,
      rejectUnauthorized: !config.insecureSkipTlsVerify,
      headers: config.token ? { Authorization: `Bearer ${config.token}` } : {},
      perMessageDeflate: false,
    })
    ws.once('open', () => resolve(ws))
    ws.once('unexpected-response', (_req, res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d: string) => (text += d))
      res.on('end', () => {
        let status: { message?: string; reason?: string } | undefined
        try {
          status = JSON.parse(text)
        } catch {}
        reject(new ServerError(status?.message ?? `the server answered ${res.statusCode}: ${text.trim()}`, res.statusCode ?? 0, status?.reason ?? ''))
      })
    })
    ws.once('error', (err: NodeJS.ErrnoException) => reject(new ConnectionError(server, err.message, { cause: err })))
  })
}

/** One message of the channel protocol: the channel byte, then the data. */
export function channelMessage(channel: number, data: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([Buffer.from([channel]), data])
}
