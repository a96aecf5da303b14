// bench/store-raw: Store create throughput on LMDB alone (no HTTP), with N concurrent writers
// against a baseline of one writer awaiting each create. Every create is durable (fdatasync'ed)
// before it resolves, so the ratio is what group commit buys.
//
//   npm run build && node dist/bench/store-raw.js      (BENCH_SECONDS, BENCH_WRITERS tune it)

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openLmdbStore } from '../src/hub/lmdb-store.js'
import { createsPerSecond } from './store-writers.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const WRITERS = Number(process.env.BENCH_WRITERS ?? 64)

async function storeCreatesPerSecond(writers: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-bench-store-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  try {
    return await createsPerSecond(store, writers, SECONDS)
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const baseline = await storeCreatesPerSecond(1)
const concurrent = await storeCreatesPerSecond(WRITERS)
console.log(`store creates/s, 1 writer awaiting each (baseline): ${baseline.toFixed(0)}`)
console.log(`store creates/s, ${WRITERS} concurrent writers:        ${concurrent.toFixed(0)}`)
console.log(`ratio to baseline: ${(concurrent / baseline).toFixed(1)}x`)
