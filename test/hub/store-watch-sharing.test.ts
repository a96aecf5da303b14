// Watch delivery and copies on the LMDB store: read-only watchers (informers) share each event's
// object, a watcher that may change its object gets its own copy, so a change made by one is never
// seen by another; writes no watcher wants are passed over unread, and a watch started later from
// an older revision still replays them.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import type { StoreEvent } from '../../src/hub/store.js'

t.test('read-only watchers share the object; a plain watcher gets a copy of its own', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-watch-sharing-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const from = await store.revision()
  const seen: Record<string, KubeObject[]> = { a: [], b: [], plain: [] }
  const got = (name: string) => (e: StoreEvent) => void seen[name]!.push(e.object)
  const watches = [
    store.watch({ resource: 'configmaps' }, from, got('plain')),
    store.watch({ resource: 'configmaps' }, from, got('a'), { readOnly: true }),
    store.watch({ resource: 'configmaps' }, from, got('b'), { readOnly: true }),
  ]
  t.teardown(() => watches.forEach((w) => w.stop()))
  await store.create({ resource: 'configmaps', namespace: 'default', name: 'c' }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: { k: 'v' } })
  const deadline = Date.now() + 10_000
  while (Object.values(seen).some((s) => s.length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.ok(seen.a![0], 'the first read-only watcher got the event')
  t.equal(seen.a![0], seen.b![0], 'read-only watchers share one object')
  t.not(seen.plain![0], seen.a![0], 'the plain watcher has its own copy')
  seen.plain![0]!.data = { k: 'changed' }
  t.same(seen.a![0]!.data, { k: 'v' }, "the plain watcher's change is not seen by the others")
})

t.test('writes no watch wants are passed over, and a later watch from before them still gets them', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-watch-skip-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const from = await store.revision()
  const pods: string[] = []
  const podWatch = store.watch({ resource: 'pods' }, from, (e) => void pods.push(e.object.metadata.name!), { readOnly: true })
  t.teardown(() => podWatch.stop())
  for (let i = 0; i < 5; i++) {
    await store.create({ resource: 'events', namespace: 'default', name: `e${i}` }, { apiVersion: 'v1', kind: 'Event', metadata: { name: `e${i}`, namespace: 'default' } })
    await store.create({ resource: 'pods', namespace: 'default', name: `p${i}` }, { apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'default' } })
  }
  const until = async (done: () => boolean) => {
    const deadline = Date.now() + 10_000
    while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  }
  await until(() => pods.length === 5)
  t.same(pods, ['p0', 'p1', 'p2', 'p3', 'p4'], 'the pod watch got the pods, in order, and nothing else')
  const events: string[] = []
  const eventWatch = store.watch({ resource: 'events' }, from, (e) => void events.push(e.object.metadata.name!))
  t.teardown(() => eventWatch.stop())
  await until(() => events.length === 5)
  t.same(events, ['e0', 'e1', 'e2', 'e3', 'e4'], 'a watch from the same revision replays the events passed over before')
})
