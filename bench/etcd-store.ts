// bench/etcd-store: the etcd store against the LMDB store (the baseline), both through the Store
// port with no HTTP: durable creates per second with one writer awaiting each and with N concurrent
// writers, and how long a create takes from being issued to reaching a watch (median, p99). etcd is
// one local member (fsync on, as deployed); on a real cluster each write also crosses the network
// to a quorum.
//
//   npm run build && node dist/bench/etcd-store.js      (BENCH_SECONDS, BENCH_WRITERS tune it)

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { openEtcdStore } from '../src/hub/etcd-store.js'
import { openLmdbStore } from '../src/hub/lmdb-store.js'
import type { Store } from '../src/hub/store.js'
import { startEtcd } from '../test/helpers/etcd.js'
import { createsPerSecond } from './store-writers.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const WRITERS = Number(process.env.BENCH_WRITERS ?? 64)
const WATCHED_CREATES = 200

interface Figures {
  serial: number
  concurrent: number
  watchMedianMs: number
  watchP99Ms: number
}

async function measure(open: () => Promise<{ store: Store; close(): Promise<void> }>): Promise<Figures> {
  const storeCreatesPerSecond = async (writers: number): Promise<number> => {
    const { store, close } = await open()
    try {
      return await createsPerSecond(store, writers, SECONDS)
    } finally {
      await close()
    }
  }
  const serial = await storeCreatesPerSecond(1)
  const concurrent = await storeCreatesPerSecond(WRITERS)

  const { store, close } = await open()
  try {
    const issuedAt = new Map<string, number>()
    const delays: number[] = []
    const w = store.watch({ resource: 'configmaps' }, await store.revision(), (e) => {
      const at = issuedAt.get(e.key.name)
      if (at !== undefined) delays.push(performance.now() - at)
    })
    for (let i = 0; i < WATCHED_CREATES; i++) {
      const name = `watched-${i}`
      issuedAt.set(name, performance.now())
      await store.create({ resource: 'configmaps', namespace: 'default', name }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } })
    }
    const deadline = performance.now() + 30_000
    while (delays.length < WATCHED_CREATES && performance.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    w.stop()
    delays.sort((a, b) => a - b)
    const at = (q: number) => delays[Math.min(delays.length - 1, Math.floor(q * delays.length))] ?? NaN
    return { serial, concurrent, watchMedianMs: at(0.5), watchP99Ms: at(0.99) }
  } finally {
    await close()
  }
}

const lmdb = await measure(async () => {
  const dir = await mkdtemp(join(tmpdir(), 'etc-bench-lmdb-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  return { store, close: async () => (await store.close(), await rm(dir, { recursive: true, force: true })) }
})
const etcd = await measure(async () => {
  const cluster = await startEtcd()
  const store = await openEtcdStore({ endpoints: cluster.endpoints })
  return { store, close: async () => (await store.close(), await cluster.stop()) }
})

const row = (what: string, f: (x: Figures) => number, digits = 0) => console.log(`${what.padEnd(44)} LMDB ${f(lmdb).toFixed(digits).padStart(7)}   etcd ${f(etcd).toFixed(digits).padStart(7)}   etcd/LMDB ${(f(etcd) / f(lmdb)).toFixed(2)}x`)
row('creates/s, 1 writer awaiting each', (x) => x.serial)
row(`creates/s, ${WRITERS} concurrent writers`, (x) => x.concurrent)
row('create issued → watch event, median ms', (x) => x.watchMedianMs, 1)
row('create issued → watch event, p99 ms', (x) => x.watchP99Ms, 1)
