// The agent's /metrics over plain HTTP, on loopback by default (--metrics-address): a Prometheus
// on the node, or one reaching it through a tunnel, scrapes it. It serves nothing else.

import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface MetricsListener {
  port: number
  close(): Promise<void>
}

export async function startMetricsListener(options: { host: string; port: number; scrape(): Promise<{ contentType: string; body: string }> }): Promise<MetricsListener> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]
    if (path !== '/metrics') return void res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only /metrics is served here\n')
    if (req.method !== 'GET' && req.method !== 'HEAD') return void res.writeHead(405, { Allow: 'GET, HEAD' }).end()
    options.scrape().then(
      ({ contentType, body }) => res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body) }).end(req.method === 'HEAD' ? undefined : body),
      (err) => res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`could not collect the metrics: ${(err as Error).message}\n`),
    )
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(options.port, options.host, () => {
      server.off('error', reject)
      resolve()
    })
  })
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  }
}
