// The web dashboard's routes on the API port. The page, its script and its style are public: they
// hold no cluster data. Everything shown comes from calls carrying the user's bearer token: the
// Kubernetes list and watch endpoints (nodes, pods, events) and /dashboard/api/node-history here,
// the in-memory heartbeat history the API has no resource for. No token, no data.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { gzipSync } from 'node:zlib'
import type { Clock } from '../lib/clock.js'
import type { ExtraRoute } from './api-server.js'
import { DASHBOARD_CSS } from './dashboard/app-css.js'
import { DASHBOARD_HTML, DASHBOARD_ICON } from './dashboard/index-html.js'
import { DASHBOARD_JS } from './dashboard/app-js.js'
import type { Heartbeats } from './heartbeats.js'
import type { NodeHistory } from './node-history.js'

export const DASHBOARD_PATH = '/dashboard'
export const NODE_HISTORY_PATH = '/dashboard/api/node-history'

export interface DashboardOptions {
  history: NodeHistory
  heartbeats: Heartbeats
  clock: Clock
}

/** One sample on the wire: [seconds ago, CPU fraction 0..1, memory bytes in use, °C or null]. */
export type WireSample = [number, number, number, number | null]

export interface NodeHistoryResponse {
  windowSeconds: number
  nodes: Record<string, { lastHeartbeatSecondsAgo: number | null; samples: WireSample[] }>
}

// The page loads nothing from elsewhere (offline sites) and runs no inline script.
const PAGE_HEADERS = {
  'Content-Security-Policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cache-Control': 'no-cache',
}

export function dashboardRoutes(o: DashboardOptions): ExtraRoute[] {
  const asset = (path: string, contentType: string, body: string): ExtraRoute => ({
    method: 'GET',
    path,
    public: true,
    handle: async (req, res) => send(req, res, 200, contentType, body),
  })
  return [
    asset(DASHBOARD_PATH, 'text/html; charset=utf-8', DASHBOARD_HTML),
    asset(`${DASHBOARD_PATH}/app.js`, 'text/javascript; charset=utf-8', DASHBOARD_JS),
    asset(`${DASHBOARD_PATH}/app.css`, 'text/css; charset=utf-8', DASHBOARD_CSS),
    asset(`${DASHBOARD_PATH}/icon.svg`, 'image/svg+xml', DASHBOARD_ICON),
    {
      method: 'GET',
      path: NODE_HISTORY_PATH,
      public: false,
      verb: 'list',
      handle: async (req, res) => send(req, res, 200, 'application/json', JSON.stringify(nodeHistoryResponse(o))),
    },
  ]
}

/** Every node's samples, newest last, with times as seconds before now (the hub's monotonic clock). */
export function nodeHistoryResponse(o: DashboardOptions): NodeHistoryResponse {
  const nowMs = o.clock.monotonic()
  const nodes: NodeHistoryResponse['nodes'] = {}
  const names = new Set([...o.history.nodeNames(), ...o.heartbeats.nodeNames()])
  for (const name of [...names].sort()) {
    const received = o.heartbeats.get(name)?.heartbeat?.receivedMs
    nodes[name] = {
      lastHeartbeatSecondsAgo: received === undefined ? null : round((nowMs - received) / 1000, 1),
      samples: o.history.samples(name, nowMs).map((s) => [round((nowMs - s.atMs) / 1000, 0), round(s.cpu, 4), Math.round(s.memory), s.temperature === undefined ? null : round(s.temperature, 1)]),
    }
  }
  return { windowSeconds: o.history.windowMs / 1000, nodes }
}

function round(value: number, digits: number): number {
  const f = 10 ** digits
  return Math.round(value * f) / f
}

/** An hour of samples for many nodes is mostly repeated digits: gzip it when the browser takes it. */
function send(req: IncomingMessage, res: ServerResponse, status: number, contentType: string, body: string): void {
  const gzip = /\bgzip\b/.test(String(req.headers['accept-encoding'] ?? '')) && body.length > 1024
  const payload = gzip ? gzipSync(body) : Buffer.from(body)
  res
    .writeHead(status, {
      ...PAGE_HEADERS,
      'Content-Type': contentType,
      'Content-Length': payload.length,
      Vary: 'Accept-Encoding',
      ...(gzip ? { 'Content-Encoding': 'gzip' } : {}),
    })
    .end(payload)
}
