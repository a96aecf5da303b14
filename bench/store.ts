// bench/store: API create throughput through HTTPS (4 concurrent clients) and watch fan-out
// latency, each printed with its ratio to a baseline measured in the same run against the same hub.
//
//   npm run bench:store            (BENCH_SECONDS, BENCH_WATCHERS and BENCH_EVENTS tune it)

import { performance } from 'node:perf_hooks'
import { Agent, request } from 'node:https'
import { startHubProcess, type HubProcess } from '../test/helpers/hub-process.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5)
const CLIENTS = 4
const WATCHERS = Number(process.env.BENCH_WATCHERS ?? 20)
const EVENTS = Number(process.env.BENCH_EVENTS ?? 200)

type Call = (method: string, path: string, body?: unknown) => Promise<number>

function client(hub: HubProcess, authenticated = true): Call {
  const agent = new Agent({ ca: hub.ca, keepAlive: true, maxSockets: 1 })
  return (method, path, body) =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
      const req = request(
        new URL(path, hub.server),
        {
          method,
          agent,
          headers: {
            ...(authenticated ? { Authorization: `Bearer ${hub.token}` } : {}),
            ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}),
          },
        },
        (res) => {
          res.resume()
          res.on('end', () => resolve(res.statusCode ?? 0))
        },
      )
      req.on('error', reject)
      if (payload) req.write(payload)
      req.end()
    })
}

/** Runs `op` on CLIENTS concurrent clients for SECONDS and returns operations per second. */
async function throughput(hub: HubProcess, op: (call: Call, client: number, i: number) => Promise<void>): Promise<number> {
  const deadline = performance.now() + SECONDS * 1000
  let done = 0
  const start = performance.now()
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, c) => {
      const call = client(hub)
      for (let i = 0; performance.now() < deadline && i < 1_000_000; i++) {
        await op(call, c, i)
        done++
      }
    }),
  )
  return done / ((performance.now() - start) / 1000)
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]
}

async function watchFanOut(hub: HubProcess): Promise<{ p50: number; p99: number; createP50: number }> {
  const call = client(hub)
  await call('POST', '/api/v1/namespaces', { metadata: { name: 'bench-watch' } })
  const sentAt = new Map<string, number>()
  const latencies: number[] = []
  const agent = new Agent({ ca: hub.ca, keepAlive: true })
  const streams = await Promise.all(
    Array.from(
      { length: WATCHERS },
      () =>
        new Promise<import('node:http').IncomingMessage>((resolve, reject) => {
          const req = request(new URL('/api/v1/namespaces/bench-watch/configmaps?watch=true&resourceVersion=0', hub.server), { agent, headers: { Authorization: `Bearer ${hub.token}` } }, (res) => {
            let buffer = ''
            res.on('data', (chunk) => {
              buffer += chunk
              let nl
              while ((nl = buffer.indexOf('\n')) >= 0) {
                const line = buffer.slice(0, nl)
                buffer = buffer.slice(nl + 1)
                const name = JSON.parse(line).object.metadata.name
                const t0 = sentAt.get(name)
                if (t0 !== undefined) latencies.push(performance.now() - t0)
              }
            })
            resolve(res)
          })
          req.on('error', reject)
          req.end()
        }),
    ),
  )
  const createLatencies: number[] = []
  for (let i = 0; i < EVENTS; i++) {
    const name = `cm-${i}`
    const t0 = performance.now()
    sentAt.set(name, t0)
    await call('POST', '/api/v1/namespaces/bench-watch/configmaps', { metadata: { name }, data: { i: String(i) } })
    createLatencies.push(performance.now() - t0)
  }
  const deadline = performance.now() + 10_000
  while (latencies.length < EVENTS * WATCHERS && performance.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  for (const s of streams) s.destroy()
  agent.destroy()
  latencies.sort((a, b) => a - b)
  createLatencies.sort((a, b) => a - b)
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), createP50: percentile(createLatencies, 50) }
}

async function main(): Promise<void> {
  const hub = await startHubProcess()
  try {
    // Baseline: the same clients, same TLS connections, asking for /version (no store, no validation).
    const baseline = await throughput(hub, (call) => call('GET', '/version').then(() => undefined))
    const creates = await throughput(hub, async (call, c, i) => {
      const status = await call('POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: `bench-${c}-${i}` }, data: { key: 'value' } })
      if (status !== 201) throw new Error(`create answered ${status}`)
    })
    console.log(`api creates/s (${CLIENTS} HTTPS clients, durable): ${creates.toFixed(0)}  baseline GET /version/s: ${baseline.toFixed(0)}  ratio: ${(creates / baseline).toFixed(2)}`)
    const fan = await watchFanOut(hub)
    console.log(
      `watch fan-out latency (${WATCHERS} watchers, ${EVENTS} events): p50 ${fan.p50.toFixed(1)} ms, p99 ${fan.p99.toFixed(1)} ms  baseline create round trip p50: ${fan.createP50.toFixed(1)} ms  ratio p50: ${(fan.p50 / fan.createP50).toFixed(2)}`,
    )
  } finally {
    await hub.cleanup()
  }
}

main().catch((err) => {
  console.error(err)
  process.exit(1)
})
