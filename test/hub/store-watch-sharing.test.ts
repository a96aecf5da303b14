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

t.test("a write of this process reaches read-only watchers as the object the write returned, never a watcher that may change it", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sch-watch-own-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const from = await store.revision()
  const readOnly: StoreEvent[] = []
  const plain: StoreEvent[] = []
  const watches = [store.watch({ resource: 'configmaps' }, from, (e) => void readOnly.push(e), { readOnly: true })]
  t.teardown(() => watches.forEach((w) => w.stop()))
  const written = await store.create({ resource: 'configmaps', namespace: 'default', name: 'c' }, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, data: { k: 'v' } })
  const deadline = Date.now() + 10_000
  while (readOnly.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.equal(readOnly[0]?.object, written, 'the read-only watcher shares the written object: nothing read back from the log')
  t.equal(readOnly[0]?.object.metadata.resourceVersion, String(from + 1), 'stamped with its revision')

  // A plain watcher alone, on a new write: its copy is its own, the writer's object is untouched.
  watches.push(store.watch({ resource: 'configmaps' }, await store.revision(), (e) => void plain.push(e)))
  watches[0]!.stop()
  const updated = await store.update({ resource: 'configmaps', namespace: 'default', name: 'c' }, { ...written, data: { k: 'w' } })
  while (plain.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10))
  t.not(plain[0]?.object, updated, 'the plain watcher gets a copy')
  t.same(plain[0]?.object, updated, 'equal to what was written')
  plain[0]!.object.data = { k: 'changed' }
  t.same(updated.data, { k: 'w' }, "the plain watcher's change does not reach the writer's object")
})
