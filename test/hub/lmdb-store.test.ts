// The LMDB store: the Store contract on real files, plus what only LMDB has (reopening, a cap).

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { KubeObject } from '../../src/api/types.js'
import { StoreFullError } from '../../src/hub/errors.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import type { Clock } from '../../src/lib/clock.js'
import type { StoreEvent } from '../../src/hub/store.js'
import { storeContract } from '../contract/store.js'

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'bramble-lmdb-'))
}

storeContract(t, 'LMDB', async (options) => {
  const dir = await tempDir()
  const store = await openLmdbStore({ path: join(dir, 'store'), ...options })
  return {
    store,
    async cleanup() {
      await store.close()
      await rm(dir, { recursive: true, force: true })
    },
  }
})

const pod = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: { containers: [{ name: 'main', image: 'busybox' }] },
  ...extra,
})
const key = (name: string) => ({ resource: 'pods', namespace: 'default', name })

t.test('a reopened store keeps every object and continues the revision', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'store')
  const first = await openLmdbStore({ path })
  await first.create(key('a'), pod('a'))
  const b = await first.create(key('b'), pod('b'))
  await first.delete(key('a'))
  await first.compact(1)
  const revision = await first.revision()
  await first.close()

  const again = await openLmdbStore({ path })
  t.teardown(() => again.close())
  t.equal(await again.revision(), revision)
  t.equal(await again.compactedRevision(), 1)
  t.same((await again.list({ resource: 'pods' })).items, [b])
  const c = await again.create(key('c'), pod('c'))
  t.equal(Number(c.metadata.resourceVersion), revision + 1, 'the revision goes on from where it was')
  const events: StoreEvent[] = []
  const w = again.watch({ resource: 'pods' }, 1, (e) => events.push(e))
  t.teardown(() => w.stop())
  while (events.length < 3) await new Promise((resolve) => setTimeout(resolve, 2))
  t.same(events.map((e) => `${e.type} ${e.key.name}`), ['ADDED b', 'DELETED a', 'ADDED c'], 'the change log survives too')
})

t.test('creationTimestamp comes from the injected clock, at second precision', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const clock: Clock = { now: () => Date.parse('2026-11-29T03:00:00.789Z'), monotonic: () => 0, setTimeout: () => ({ cancel() {} }) }
  const store = await openLmdbStore({ path: join(dir, 'store'), clock })
  t.teardown(() => store.close())
  const created = await store.create(key('a'), pod('a'))
  t.equal(created.metadata.creationTimestamp, '2026-11-29T03:00:00Z')
})

t.test('a store past its size cap refuses creates and updates with StoreFullError, and still reads and deletes', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = await openLmdbStore({ path: join(dir, 'store'), mapSizeBytes: 256 * 1024 })
  t.teardown(() => store.close())
  const big = 'x'.repeat(8 * 1024)
  let error: unknown
  let stored = 0
  for (let i = 0; i < 1000 && !error; i++) {
    try {
      await store.create(key(`p${i}`), pod(`p${i}`, { data: big }))
      stored++
    } catch (e) {
      error = e
    }
    // Usage is measured once per burst of commits.
    await new Promise((resolve) => setImmediate(resolve))
  }
  t.ok(error instanceof StoreFullError, 'the error is a StoreFullError')
  t.equal((error as StoreFullError).code, 'BRAMBLE_STORE_FULL')
  t.ok(stored > 5, `it stored ${stored} objects first`)
  t.equal((await store.list({ resource: 'pods' })).items.length, stored, 'nothing stored was damaged')
  await t.rejects(store.update(key('p0'), pod('p0')), { code: 'BRAMBLE_STORE_FULL' })
  const removed = await Promise.all(Array.from({ length: stored }, (_, i) => store.delete(key(`p${i}`))))
  t.equal(removed.length, stored, 'deletes still work')
  await store.compact(await store.revision())
  await new Promise((resolve) => setImmediate(resolve))
  await t.resolves(store.create(key('after'), pod('after')), 'deleting frees room again')
})

t.test('close waits for writes in flight, then every call fails with StoreClosedError', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'store')
  const store = await openLmdbStore({ path })
  const pending = Array.from({ length: 20 }, (_, i) => store.create(key(`p${i}`), pod(`p${i}`)))
  const events: StoreEvent[] = []
  store.watch({ resource: 'pods' }, 0, (e) => events.push(e))
  await store.close()
  t.equal((await Promise.allSettled(pending)).filter((r) => r.status === 'fulfilled').length, 20, 'writes in flight completed')
  await t.rejects(store.get(key('p0')), { code: 'BRAMBLE_STORE_CLOSED' })
  await t.rejects(store.create(key('late'), pod('late')), { code: 'BRAMBLE_STORE_CLOSED' })
  t.throws(() => store.watch({ resource: 'pods' }, 0, () => {}), { code: 'BRAMBLE_STORE_CLOSED' })
  await t.resolves(store.close(), 'closing twice is harmless')
  const reopened = await openLmdbStore({ path })
  t.teardown(() => reopened.close())
  t.equal((await reopened.list({ resource: 'pods' })).items.length, 20)
})

t.test('automatic compaction never drops what a running watch has yet to receive', async (t) => {
  const dir = await tempDir()
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const store = await openLmdbStore({ path: join(dir, 'store'), retainRevisions: 3 })
  t.teardown(() => store.close())
  const seen: number[] = []
  const w = store.watch({ resource: 'pods' }, 0, (e) => seen.push(e.revision))
  t.teardown(() => w.stop())
  // Bursts of concurrent writes, so compaction runs while the watch has events pending.
  for (let burst = 0; burst < 10; burst++) {
    await Promise.all(Array.from({ length: 20 }, (_, i) => store.create(key(`b${burst}-${i}`), pod(`b${burst}-${i}`))))
  }
  while (seen.length < 200) await new Promise((resolve) => setTimeout(resolve, 2))
  t.same(seen, Array.from({ length: 200 }, (_, i) => i + 1), 'every revision, once, in order')
  t.ok((await store.compactedRevision()) > 150, 'and the log was still compacted behind it')
})
