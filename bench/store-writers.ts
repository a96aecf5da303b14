// The write load bench/store-raw and bench/etcd-store share: `writers` concurrent loops, each
// creating ConfigMaps and awaiting each create, for `seconds`; the result is creates per second.

import { performance } from 'node:perf_hooks'
import type { Store } from '../src/hub/store.js'

export async function createsPerSecond(store: Store, writers: number, seconds: number): Promise<number> {
  let done = 0
  const start = performance.now()
  const deadline = start + seconds * 1000
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
}
