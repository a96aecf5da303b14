// A bare HTTPS client for tests that speak to the hub's API directly.

import { Agent, request as httpsRequest } from 'node:https'

export interface ApiTarget {
  server: string
  ca: string
  token?: string
}

export interface ApiResponse {
  status: number
  headers: Record<string, string | string[] | undefined>
  text: string
  json: any
}

const agents = new Map<string, Agent>()

export function apiRequest(target: ApiTarget, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  let agent = agents.get(target.ca)
  if (!agent) agents.set(target.ca, (agent = new Agent({ ca: target.ca, keepAlive: true })))
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body))
  const url = new URL(path, target.server)
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      url,
      {
        method,
        agent,
        headers: {
          ...(target.token ? { Authorization: `Bearer ${target.token}` } : {}),
          ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: any
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json })
        })
        res.on('error', reject)
      },
    )
    req.on('error', reject)
    if (payload) req.write(payload)
    req.end()
  })
}

export function closeApiAgents(): void {
  for (const a of agents.values()) a.destroy()
  agents.clear()
}
