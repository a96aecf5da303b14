// bench/api: the hub's API throughput, from a real `bramble hub` process over HTTPS with several
// concurrent clients: ConfigMap creates, updates (PUT with the resourceVersion read), lists and
// watch events per second. Each operation runs twice, through a plain HTTPS client (node:https,
// kept-alive connections, the admin token the hub writes) and through @kubernetes/client-node as a
// real client would use it (a KubeConfig loaded from the hub's kubeconfig.yaml; it opens a new
// TLS connection for every request). Baselines measured in the same run:
//   - GET /version/s on the plain clients: the HTTPS round trip, touching neither validation nor store;
//   - LMDB store creates/s in this process, the same number of concurrent writers, each durable.
// Printed ratios: plain creates and updates to the store's creates; plain lists and watch events to
// GET /version; every client-node figure to the plain client's.
//
// Watch events/s: the bench writes BENCH_WATCH_EVENTS ConfigMaps first, then BENCH_WATCHERS watchers
// start together from the revision before them and read until each has all of them (the hub reads
// its change log and streams it); rounds of fresh watchers repeat that for BENCH_SECONDS, and the
// figure is events delivered per second, all watchers together.
//
//   npm run bench:api      (BENCH_SECONDS per figure, default 5; BENCH_CLIENTS, 4; BENCH_LIST_SIZE, 100;
//                           BENCH_WATCHERS, 4; BENCH_WATCH_EVENTS, 5000, at most 9000: the hub keeps 10,000 changes for watches)

import { mkdtemp, rm } from 'node:fs/promises'
import { Agent, request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { CoreV1Api, KubeConfig, Watch, type V1ConfigMap } from '@kubernetes/client-node'
import type { KubeObject } from '../src/api/types.js'
import { openLmdbStore } from '../src/hub/lmdb-store.js'
import { startHubProcess, type HubProcess } from '../test/helpers/hub-process.js'

export interface ApiBenchOptions {
  /** Length of each timed figure. */
  seconds: number
  clients: number
  /** ConfigMaps in the listed namespace. */
  listSize: number
  watchers: number
  /** ConfigMaps written before the watchers start; each watcher receives all of them. */
  watchEvents: number
}

export interface Rate {
  count: number
  seconds: number
  perSecond: number
}

export interface ClientFigures {
  creates: Rate
  updates: Rate
  lists: Rate
  watchEvents: Rate
  /** Where this client's creates went (one ConfigMap per create), and its watched objects. */
  namespace: string
  watchNamespace: string
}

export interface ApiBenchResult {
  options: ApiBenchOptions
  versionBaseline: Rate
  storeBaseline: Rate
  plain: ClientFigures
  clientNode: ClientFigures
  /** The namespace every lister read, holding listSize ConfigMaps. */
  listNamespace: string
}

/** What one client does; the plain client and client-node each implement it. */
interface Client {
  /** Creates a ConfigMap; returns its resourceVersion. */
  create(namespace: string, name: string): Promise<string>
  /** Replaces a ConfigMap as read at `resourceVersion`; returns the new one. */
  update(namespace: string, name: string, resourceVersion: string, value: string): Promise<string>
  /** Lists a namespace's ConfigMaps; returns how many. */
  list(namespace: string): Promise<number>
  /** Watches a namespace's ConfigMaps from a revision; resolves once the stream is open, with a stop function. */
  watch(namespace: string, fromRevision: string, onAdded: (name: string) => void, onEnd: (err?: unknown) => void): Promise<() => void>
  close(): void
}

/** No timed figure runs more operations than this, however fast the machine. */
const MAX_OPERATIONS = 200_000
/** How long the watchers may take to receive every event before the bench gives up. */
const WATCH_DEADLINE_MS = 120_000

function configMap(namespace: string, name: string, value: string, resourceVersion?: string): V1ConfigMap {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels: { bench: 'api' }, ...(resourceVersion ? { resourceVersion } : {}) }, data: { key: value } }
}

interface PlainClient extends Client {
  call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }>
}

/** node:https on one kept-alive connection per client, the admin bearer token. */
function plainClient(hub: HubProcess): PlainClient {
  const agent = new Agent({ ca: hub.ca, keepAlive: true, maxSockets: 1 })
  const call = (method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> =>
    new Promise((resolve, reject) => {
      const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
      const req = request(
        new URL(path, hub.server),
        { method, agent, headers: { Authorization: `Bearer ${hub.token}`, ...(payload ? { 'Content-Type': 'application/json', 'Content-Length': payload.length } : {}) } },
        (res) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(Buffer.concat(chunks).toString('utf8')) }))
          res.on('error', reject)
        },
      )
      req.on('error', reject)
      if (payload) req.write(payload)
      req.end()
    })
  const expect = async (what: string, want: number, reply: Promise<{ status: number; json: any }>) => {
    const { status, json } = await reply
    if (status !== want) throw new Error(`${what} answered ${status}: ${json?.message ?? JSON.stringify(json)}`)
    return json
  }
  const path = (namespace: string, name = '') => `/api/v1/namespaces/${namespace}/configmaps${name ? `/${name}` : ''}`
  return {
    call,
    async create(namespace, name) {
      return (await expect(`POST ${path(namespace)}`, 201, call('POST', path(namespace), configMap(namespace, name, 'v0')))).metadata.resourceVersion
    },
    async update(namespace, name, resourceVersion, value) {
      return (await expect(`PUT ${path(namespace, name)}`, 200, call('PUT', path(namespace, name), configMap(namespace, name, value, resourceVersion)))).metadata.resourceVersion
    },
    async list(namespace) {
      return (await expect(`GET ${path(namespace)}`, 200, call('GET', path(namespace)))).items.length
    },
    async watch(namespace, fromRevision, onAdded, onEnd) {
      const watchAgent = new Agent({ ca: hub.ca })
      return new Promise((resolve, reject) => {
        const req = request(new URL(`${path(namespace)}?watch=true&resourceVersion=${fromRevision}`, hub.server), { agent: watchAgent, headers: { Authorization: `Bearer ${hub.token}` } }, (res) => {
          if (res.statusCode !== 200) return reject(new Error(`watch of ${path(namespace)} answered ${res.statusCode}`))
          let buffer = ''
          res.setEncoding('utf8')
          res.on('data', (chunk: string) => {
            buffer += chunk
            let from = 0
            for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n', from)) {
              const event = JSON.parse(buffer.slice(from, nl))
              from = nl + 1
              if (event.type === 'ADDED') onAdded(event.object.metadata.name)
            }
            buffer = buffer.slice(from)
          })
          res.on('end', () => onEnd())
          res.on('error', onEnd)
          resolve(() => {
            req.destroy()
            watchAgent.destroy()
          })
        })
        req.on('error', reject)
        req.end()
      })
    },
    close() {
      agent.destroy()
    },
  }
}

/** @kubernetes/client-node 1.x, used as its README shows: a KubeConfig, CoreV1Api, Watch. */
function clientNodeClient(hub: HubProcess): Client {
  const kc = new KubeConfig()
  kc.loadFromFile(hub.kubeconfig)
  const core = kc.makeApiClient(CoreV1Api)
  return {
    async create(namespace, name) {
      return (await core.createNamespacedConfigMap({ namespace, body: configMap(namespace, name, 'v0') })).metadata!.resourceVersion!
    },
    async update(namespace, name, resourceVersion, value) {
      return (await core.replaceNamespacedConfigMap({ namespace, name, body: configMap(namespace, name, value, resourceVersion) })).metadata!.resourceVersion!
    },
    async list(namespace) {
      return (await core.listNamespacedConfigMap({ namespace })).items.length
    },
    async watch(namespace, fromRevision, onAdded, onEnd) {
      const controller = await new Watch(kc).watch(
        `/api/v1/namespaces/${namespace}/configmaps`,
        { resourceVersion: fromRevision },
        (type, object) => {
          if (type === 'ADDED') onAdded(object.metadata.name)
        },
        (err) => onEnd(err ?? undefined),
      )
      return () => controller.abort()
    },
    close() {},
  }
}

/** Runs `op` on every client at once for `seconds` (and at most MAX_OPERATIONS in all). */
async function rate<C>(clients: C[], seconds: number, op: (client: C, index: number, i: number) => Promise<void>): Promise<Rate> {
  const start = performance.now()
  const deadline = start + seconds * 1000
  let count = 0
  await Promise.all(
    clients.map(async (client, index) => {
      for (let i = 0; performance.now() < deadline && count < MAX_OPERATIONS; i++) {
        await op(client, index, i)
        count++
      }
    }),
  )
  const elapsed = (performance.now() - start) / 1000
  return { count, seconds: elapsed, perSecond: count / elapsed }
}

/** Durable creates straight into an LMDB store in this process: what the hub's writes cost at the bottom. */
async function storeCreates(writers: number, seconds: number): Promise<Rate> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-bench-api-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  try {
    return await rate(Array.from({ length: writers }), seconds, async (_, w, i) => {
      const name = `w${w}-${i}`
      await store.create({ resource: 'configmaps', namespace: 'default', name }, configMap('default', name, 'v0') as KubeObject)
    })
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

/** Writes `count` ConfigMaps with the given clients, at most `clients.length` at a time. */
async function fill(clients: Client[], namespace: string, count: number): Promise<void> {
  let next = 0
  await Promise.all(
    clients.map(async (client) => {
      for (let i = next++; i < count; i = next++) await client.create(namespace, `cm-${i}`)
    }),
  )
}

async function createNamespace(client: PlainClient, name: string): Promise<void> {
  const { status } = await client.call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } })
  if (status !== 201) throw new Error(`creating namespace ${name} answered ${status}`)
}

/** The namespace's list revision, from which a watch sees every later write. */
async function listRevision(client: PlainClient, namespace: string): Promise<string> {
  return (await client.call('GET', `/api/v1/namespaces/${namespace}/configmaps`)).json.metadata.resourceVersion
}

/** Fresh watchers from `fromRevision`, all at once, until each has received every event; returns how many they received. */
async function watchRound(makeClient: () => Client, namespace: string, fromRevision: string, options: ApiBenchOptions): Promise<number> {
  const watchers = Array.from({ length: options.watchers }, makeClient)
  const stops: Array<() => void> = []
  let received = 0
  try {
    await Promise.all(
      watchers.map(
        (client, w) =>
          new Promise<void>((resolve, reject) => {
            const seen = new Set<string>()
            const timer = setTimeout(() => reject(new Error(`watcher ${w} received ${seen.size} of ${options.watchEvents} events in ${WATCH_DEADLINE_MS / 1000} s`)), WATCH_DEADLINE_MS)
            const done = (err?: Error) => {
              clearTimeout(timer)
              if (err) reject(err)
              else resolve()
            }
            client
              .watch(
                namespace,
                fromRevision,
                (name) => {
                  if (seen.has(name)) return
                  seen.add(name)
                  received++
                  if (seen.size === options.watchEvents) done()
                },
                (err) => {
                  if (seen.size < options.watchEvents) done(new Error(`watcher ${w}'s stream ended after ${seen.size} of ${options.watchEvents} events`, { cause: err }))
                },
              )
              .then((stop) => stops.push(stop), done)
          }),
      ),
    )
  } finally {
    for (const stop of stops) stop()
    for (const client of watchers) client.close()
  }
  return received
}

async function watchEvents(makeClient: () => Client, writers: PlainClient[], namespace: string, options: ApiBenchOptions): Promise<Rate> {
  const fromRevision = await listRevision(writers[0]!, namespace)
  await fill(writers, namespace, options.watchEvents)
  // One round takes about a second here, too short to time on a busy machine: rounds of fresh
  // watchers replay the same events until the figure's time is up.
  const start = performance.now()
  const deadline = start + options.seconds * 1000
  let received = 0
  do received += await watchRound(makeClient, namespace, fromRevision, options)
  while (performance.now() < deadline)
  const elapsed = (performance.now() - start) / 1000
  return { count: received, seconds: elapsed, perSecond: received / elapsed }
}

async function measureClient(label: string, makeClient: () => Client, writers: PlainClient[], listNamespace: string, options: ApiBenchOptions): Promise<ClientFigures> {
  const namespace = `api-${label}`
  const watchNamespace = `api-${label}-watch`
  await createNamespace(writers[0]!, namespace)
  await createNamespace(writers[0]!, watchNamespace)
  const clients = Array.from({ length: options.clients }, makeClient)
  try {
    const created: Array<Array<{ name: string; resourceVersion: string }>> = clients.map(() => [])
    const creates = await rate(clients, options.seconds, async (client, c, i) => {
      const name = `c${c}-${i}`
      created[c]!.push({ name, resourceVersion: await client.create(namespace, name) })
    })
    // Each client replaces the objects it created, round and round, with the version it last read.
    const updates = await rate(clients, options.seconds, async (client, c, i) => {
      const mine = created[c]!
      if (mine.length === 0) throw new Error(`client ${c} created nothing to update`)
      const object = mine[i % mine.length]!
      object.resourceVersion = await client.update(namespace, object.name, object.resourceVersion, `v${i + 1}`)
    })
    const lists = await rate(clients, options.seconds, async (client) => {
      const items = await client.list(listNamespace)
      if (items !== options.listSize) throw new Error(`a list of ${listNamespace} held ${items} ConfigMaps, not ${options.listSize}`)
    })
    const listed = await clients[0]!.list(namespace)
    if (listed !== creates.count) throw new Error(`${namespace} holds ${listed} ConfigMaps after ${creates.count} acknowledged creates`)
    const watched = await watchEvents(makeClient, writers, watchNamespace, options)
    return { creates, updates, lists, watchEvents: watched, namespace, watchNamespace }
  } finally {
    for (const client of clients) client.close()
  }
}

/** Runs every figure against `hub` (a `bramble hub` process the caller started and stops). */
export async function runApiBench(hub: HubProcess, options: ApiBenchOptions): Promise<ApiBenchResult> {
  const writers = Array.from({ length: options.clients }, () => plainClient(hub))
  try {
    const listNamespace = 'api-list'
    await createNamespace(writers[0]!, listNamespace)
    await fill(writers, listNamespace, options.listSize)
    const storeBaseline = await storeCreates(options.clients, options.seconds)
    const versionBaseline = await rate(writers, options.seconds, async (client) => {
      const { status } = await client.call('GET', '/version')
      if (status !== 200) throw new Error(`GET /version answered ${status}`)
    })
    const plain = await measureClient('https', () => plainClient(hub), writers, listNamespace, options)
    const clientNode = await measureClient('client-node', () => clientNodeClient(hub), writers, listNamespace, options)
    return { options, versionBaseline, storeBaseline, plain, clientNode, listNamespace }
  } finally {
    for (const w of writers) w.close()
  }
}

export function formatApiBench(r: ApiBenchResult): string {
  const o = r.options
  const n = (v: number) => v.toFixed(0).padStart(7)
  const ratio = (v: number, base: number) => (v / base).toFixed(2)
  const lines = [
    `hub API over HTTPS, one hub process, ${o.clients} concurrent clients, ${o.seconds} s per figure; lists of ${o.listSize} ConfigMaps; ${o.watchers} watchers replaying ${o.watchEvents} events per round`,
    `baseline GET /version/s (plain HTTPS, kept-alive):          ${n(r.versionBaseline.perSecond)}`,
    `baseline store creates/s (LMDB alone, ${o.clients} writers, durable): ${n(r.storeBaseline.perSecond)}`,
  ]
  const p = r.plain
  lines.push(
    `plain HTTPS  creates/s:      ${n(p.creates.perSecond)}  ratio to store creates: ${ratio(p.creates.perSecond, r.storeBaseline.perSecond)}`,
    `plain HTTPS  updates/s:      ${n(p.updates.perSecond)}  ratio to store creates: ${ratio(p.updates.perSecond, r.storeBaseline.perSecond)}`,
    `plain HTTPS  lists/s:        ${n(p.lists.perSecond)}  ratio to GET /version: ${ratio(p.lists.perSecond, r.versionBaseline.perSecond)}  (${n(p.lists.perSecond * o.listSize).trim()} objects/s)`,
    `plain HTTPS  watch events/s: ${n(p.watchEvents.perSecond)}  ratio to GET /version: ${ratio(p.watchEvents.perSecond, r.versionBaseline.perSecond)}`,
  )
  const c = r.clientNode
  for (const [label, figure, base] of [
    ['creates/s:     ', c.creates, p.creates],
    ['updates/s:     ', c.updates, p.updates],
    ['lists/s:       ', c.lists, p.lists],
    ['watch events/s:', c.watchEvents, p.watchEvents],
  ] as const) {
    lines.push(`client-node  ${label} ${n(figure.perSecond)}  ratio to plain HTTPS: ${ratio(figure.perSecond, base.perSecond)}`)
  }
  lines.push(
    `operations: plain ${p.creates.count} creates, ${p.updates.count} updates, ${p.lists.count} lists, ${p.watchEvents.count} events; ` +
      `client-node ${c.creates.count} creates, ${c.updates.count} updates, ${c.lists.count} lists, ${c.watchEvents.count} events`,
  )
  return lines.join('\n')
}

function positiveInt(name: string, fallback: number, max: number): number {
  const raw = process.env[name]
  const value = raw === undefined || raw === '' ? fallback : Number(raw)
  if (!Number.isInteger(value) || value < 1 || value > max) throw new Error(`${name} must be a whole number from 1 to ${max}, got "${raw}"`)
  return value
}

export function apiBenchOptionsFromEnv(): ApiBenchOptions {
  return {
    seconds: positiveInt('BENCH_SECONDS', 5, 300),
    clients: positiveInt('BENCH_CLIENTS', 4, 64),
    listSize: positiveInt('BENCH_LIST_SIZE', 100, 5_000),
    watchers: positiveInt('BENCH_WATCHERS', 4, 64),
    watchEvents: positiveInt('BENCH_WATCH_EVENTS', 5_000, 9_000),
  }
}

async function main(): Promise<void> {
  let options: ApiBenchOptions
  try {
    options = apiBenchOptionsFromEnv()
  } catch (err) {
    console.error((err as Error).message)
    process.exit(2)
  }
  const hub = await startHubProcess()
  try {
    console.log(formatApiBench(await runApiBench(hub, options)))
  } finally {
    await hub.cleanup()
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((err) => {
    console.error(err)
    process.exit(1)
  })
}
