// bench/store-raw: Store create throughput on LMDB alone (no HTTP), with N concurrent writers
// against a baseline of one writer awaiting each create. Every create is durable (fdatasync'ed)
// before it resolves, so the ratio is what group commit buys.
//
//   npm run build && node dist/bench/store-raw.js      (BENCH_SECONDS, BENCH_WRITERS tune it)

import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { openLmdbStore } from '../src/hub/lmdb-store.js'

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3)
const WRITERS = Number(process.env.BENCH_WRITERS ?? 64)

async function createsPerSecond(writers: number): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-bench-store-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  try {
    let done = 0
    const start = performance.now()
    const deadline = start + SECONDS * 1000
    await Promise.all(
      Array.from({ length: writers }, async (_, w) => {
        for (let i = 0; performance.now() < deadline; i++) {
          const name = `w${w}-${i}`
          await store.create(
            { resource: 'configmaps', namespace: 'default', name },
            { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', labels: { app: 'bench' } }, data: { key: 'value'.repeat(20) } },
          )
          done++
        }
      }),
    )
    return done / ((performance.now() - start) / 1000)
  } finally {
    await store.close()
    await rm(dir, { recursive: true, force: true })
  }
}

const baseline = await createsPerSecond(1)
const concurrent = await createsPerSecond(WRITERS)
console.log(`store creates/s, 1 writer awaiting each (baseline): ${baseline.toFixed(0)}`)
console.log(`store creates/s, ${WRITERS} concurrent writers:        ${concurrent.toFixed(0)}`)
console.log(`ratio to baseline: ${(concurrent / baseline).toFixed(1)}x`)
