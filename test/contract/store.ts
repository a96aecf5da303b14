// The Store contract: one specification every Store implementation meets. Run against LMDB in
// test/hub/lmdb-store.test.ts; any other backend runs the same suite.

import type { Test } from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { StoreCompactedError, StoreConflictError, StoreExistsError, StoreNotFoundError } from '../../src/hub/errors.js'
import type { ObjectKey, Store, StoreEvent } from '../../src/hub/store.js'

export interface StoreFixture {
  store: Store
  cleanup(): Promise<void>
}

/** `retainRevisions`: how many change-log entries the store keeps before compacting on its own. */
export type MakeStore = (options?: { retainRevisions?: number }) => Promise<StoreFixture>

const pod = (namespace: string, name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace },
  spec: { containers: [{ name: 'main', image: 'busybox' }] },
  ...extra,
})
const podKey = (namespace: string, name: string): ObjectKey => ({ resource: 'pods', namespace, name })
const nsKey = (name: string): ObjectKey => ({ resource: 'namespaces', namespace: '', name })
const namespaceObject = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } })

/** Waits (turn by turn, generous deadline) until `done()` holds; fails with `what` otherwise. */
async function until(done: () => boolean, what: string, deadlineMs = 15_000): Promise<void> {
  const start = Date.now()
  while (!done()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
}

/** Lets pending callbacks run: a few turns of the event loop. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve))
}

const rv = (o: KubeObject): number => Number(o.metadata.resourceVersion)
const summary = (e: StoreEvent) => `${e.type} ${e.key.namespace}/${e.key.name}@${e.revision}`

export function storeContract(t: Test, name: string, makeStore: MakeStore): void {
  t.test(`Store contract: ${name}`, async (t) => {
    const fixture = async (t: Test, options?: { retainRevisions?: number }): Promise<Store> => {
      const f = await makeStore(options)
      t.teardown(() => f.cleanup())
      return f.store
    }

    t.test('create stamps resourceVersion, uid and creationTimestamp and returns a copy', async (t) => {
      const store = await fixture(t)
      const input = pod('default', 'web')
      const created = await store.create(podKey('default', 'web'), input)
      t.match(created.metadata.resourceVersion, /^[1-9][0-9]*$/, 'resourceVersion is a decimal string')
      t.equal(rv(created), await store.revision(), 'the new revision is the store revision')
      t.match(created.metadata.uid, /^[0-9a-f-]{36}$/)
      t.match(created.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
      t.same(input.metadata, { name: 'web', namespace: 'default' }, "the caller's object is untouched")
      // What a write returns is not changed here: read-only watchers may share it (Store.create).
      const read = await store.get(podKey('default', 'web'))
      t.strictSame(read, created, 'get returns what was stored')
      read!.metadata.name = 'mutated'
      t.equal((await store.get(podKey('default', 'web')))?.metadata.name, 'web', 'get returns a fresh copy each time')
    })

    t.test('create keeps a uid and creationTimestamp the object already carries', async (t) => {
      const store = await fixture(t)
      const given = pod('default', 'kept')
      given.metadata.uid = '00000000-0000-4000-8000-000000000001'
      given.metadata.creationTimestamp = '2026-11-29T03:00:00Z'
      const created = await store.create(podKey('default', 'kept'), given)
      t.equal(created.metadata.uid, given.metadata.uid)
      t.equal(created.metadata.creationTimestamp, '2026-11-29T03:00:00Z')
    })

    t.test('create of a taken key fails with StoreExistsError and changes nothing', async (t) => {
      const store = await fixture(t)
      const first = await store.create(podKey('default', 'web'), pod('default', 'web'))
      const revision = await store.revision()
      await t.rejects(store.create(podKey('default', 'web'), pod('default', 'web', { spec: { other: true } })), { code: 'BRAMBLE_STORE_EXISTS' })
      t.same(await store.get(podKey('default', 'web')), first)
      t.equal(await store.revision(), revision, 'no revision was spent')
    })

    t.test('every write takes a new, higher revision', async (t) => {
      const store = await fixture(t)
      const start = await store.revision()
      const a = await store.create(podKey('default', 'a'), pod('default', 'a'))
      const b = await store.create(podKey('default', 'b'), pod('default', 'b'))
      const a2 = await store.update(podKey('default', 'a'), a)
      const gone = await store.delete(podKey('default', 'b'))
      const revisions = [a, b, a2, gone].map(rv)
      t.same(revisions, [start + 1, start + 2, start + 3, start + 4])
      t.equal(await store.revision(), start + 4)
    })

    t.test('get of a missing key is undefined', async (t) => {
      const store = await fixture(t)
      t.equal(await store.get(podKey('default', 'nothing')), undefined)
    })

    t.test('update replaces the object, keeping uid and creationTimestamp', async (t) => {
      const store = await fixture(t)
      const created = await store.create(podKey('default', 'web'), pod('default', 'web'))
      const body = pod('default', 'web', { spec: { containers: [{ name: 'main', image: 'busybox:2' }] } })
      body.metadata.uid = 'someone-else'
      const updated = await store.update(podKey('default', 'web'), body, { expectedResourceVersion: created.metadata.resourceVersion })
      t.equal(updated.spec.containers[0].image, 'busybox:2')
      t.equal(updated.metadata.uid, created.metadata.uid, 'uid is set once')
      t.equal(updated.metadata.creationTimestamp, created.metadata.creationTimestamp)
      t.ok(rv(updated) > rv(created))
      t.same(await store.get(podKey('default', 'web')), updated)
    })

    t.test('update with a stale resourceVersion fails with StoreConflictError and changes nothing', async (t) => {
      const store = await fixture(t)
      const created = await store.create(podKey('default', 'web'), pod('default', 'web'))
      const current = await store.update(podKey('default', 'web'), created)
      const revision = await store.revision()
      const stale = pod('default', 'web', { spec: { lost: true } })
      await t.rejects(
        store.update(podKey('default', 'web'), stale, { expectedResourceVersion: created.metadata.resourceVersion }), { code: 'BRAMBLE_STORE_CONFLICT' }
      )
      t.same(await store.get(podKey('default', 'web')), current)
      t.equal(await store.revision(), revision)
    })

    t.test('update of a missing key fails with StoreNotFoundError', async (t) => {
      const store = await fixture(t)
      await t.rejects(store.update(podKey('default', 'ghost'), pod('default', 'ghost')), { code: 'BRAMBLE_STORE_NOT_FOUND' })
      t.equal(await store.get(podKey('default', 'ghost')), undefined, 'update never creates')
    })

    t.test('delete removes the object and returns it stamped with the deleting revision', async (t) => {
      const store = await fixture(t)
      const created = await store.create(podKey('default', 'web'), pod('default', 'web'))
      const deleted = await store.delete(podKey('default', 'web'), { expectedResourceVersion: created.metadata.resourceVersion })
      t.equal(rv(deleted), await store.revision())
      t.same(deleted.spec, created.spec)
      t.equal(deleted.metadata.uid, created.metadata.uid)
      t.equal(await store.get(podKey('default', 'web')), undefined)
      await t.rejects(store.delete(podKey('default', 'web')), { code: 'BRAMBLE_STORE_NOT_FOUND' })
    })

    t.test('delete with a stale resourceVersion fails and keeps the object', async (t) => {
      const store = await fixture(t)
      const created = await store.create(podKey('default', 'web'), pod('default', 'web'))
      const current = await store.update(podKey('default', 'web'), created)
      await t.rejects(store.delete(podKey('default', 'web'), { expectedResourceVersion: created.metadata.resourceVersion }), { code: 'BRAMBLE_STORE_CONFLICT' })
      t.same(await store.get(podKey('default', 'web')), current)
    })

    t.test('list returns one resource sorted by namespace and name, at the revision it read', async (t) => {
      const store = await fixture(t)
      for (const [ns, n] of [['prod', 'b'], ['default', 'z'], ['prod', 'a'], ['default-2', 'a'], ['default', 'a']]) {
        await store.create(podKey(ns, n), pod(ns, n))
      }
      await store.create(nsKey('default'), namespaceObject('default'))
      await store.create({ resource: 'podsx', namespace: 'default', name: 'x' }, pod('default', 'x'))
      const all = await store.list({ resource: 'pods' })
      t.same(
        all.items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        ['default/a', 'default/z', 'default-2/a', 'prod/a', 'prod/b'],
      )
      t.equal(all.revision, await store.revision())
      const prod = await store.list({ resource: 'pods', namespace: 'prod' })
      t.same(prod.items.map((o) => o.metadata.name), ['a', 'b'])
      const namespaces = await store.list({ resource: 'namespaces', namespace: '' })
      t.same(namespaces.items.map((o) => o.metadata.name), ['default'])
      t.same((await store.list({ resource: 'services' })).items, [], 'an empty resource lists nothing')
    })

    t.test('a list taken while writes land is a snapshot: its revision covers exactly its items', async (t) => {
      const store = await fixture(t)
      const writes = Array.from({ length: 40 }, (_, i) => store.create(podKey('default', `p${i}`), pod('default', `p${i}`)))
      const lists = []
      for (let i = 0; i < 10; i++) {
        lists.push(await store.list({ resource: 'pods' }))
        await new Promise((resolve) => setImmediate(resolve))
      }
      const created = await Promise.all(writes)
      for (const list of lists) {
        const expected = created.filter((o) => rv(o) <= list.revision).map((o) => o.metadata.name).sort()
        t.same(list.items.map((o) => o.metadata.name).sort(), expected, `list at revision ${list.revision}`)
      }
    })

    t.test('concurrent updates expecting the same resourceVersion: exactly one wins', async (t) => {
      const store = await fixture(t)
      const created = await store.create(podKey('default', 'web'), pod('default', 'web'))
      const attempts = Array.from({ length: 10 }, (_, i) =>
        store.update(podKey('default', 'web'), pod('default', 'web', { spec: { writer: i } }), {
          expectedResourceVersion: created.metadata.resourceVersion,
        }),
      )
      const results = await Promise.allSettled(attempts)
      const won = results.filter((r) => r.status === 'fulfilled')
      const lost = results.filter((r) => r.status === 'rejected')
      t.equal(won.length, 1)
      t.ok(lost.every((r) => (r as PromiseRejectedResult).reason instanceof StoreConflictError))
      t.same(await store.get(podKey('default', 'web')), (won[0] as PromiseFulfilledResult<KubeObject>).value)
    })

    t.test('concurrent creates of one key: exactly one wins', async (t) => {
      const store = await fixture(t)
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => store.create(podKey('default', 'web'), pod('default', 'web'))))
      t.equal(results.filter((r) => r.status === 'fulfilled').length, 1)
      t.ok(results.every((r) => r.status === 'fulfilled' || r.reason instanceof StoreExistsError))
    })

    t.test('watch replays exactly the later events in scope, then new ones, in order', async (t) => {
      const store = await fixture(t)
      const a = await store.create(podKey('default', 'a'), pod('default', 'a'))
      const from = await store.revision()
      await store.create(podKey('prod', 'b'), pod('prod', 'b'))
      await store.create(nsKey('default'), namespaceObject('default'))
      const a2 = await store.update(podKey('default', 'a'), a)
      await store.create(podKey('default', 'c'), pod('default', 'c'))
      const events: StoreEvent[] = []
      const all: StoreEvent[] = []
      const w1 = store.watch({ resource: 'pods', namespace: 'default' }, from, (e) => events.push(e))
      const w2 = store.watch({ resource: 'pods' }, from, (e) => all.push(e))
      t.teardown(() => (w1.stop(), w2.stop()))
      await until(() => events.length >= 2 && all.length >= 3, 'the replay arrives')
      const deleted = await store.delete(podKey('default', 'c'))
      await until(() => events.length >= 3, 'the live delete arrives')
      t.same(events.map(summary), [`MODIFIED default/a@${rv(a2)}`, `ADDED default/c@${from + 4}`, `DELETED default/c@${rv(deleted)}`])
      t.same(all.map(summary), [`ADDED prod/b@${from + 1}`, `MODIFIED default/a@${rv(a2)}`, `ADDED default/c@${from + 4}`, `DELETED default/c@${rv(deleted)}`])
      t.same(events[2]!.object, deleted, 'a DELETED event carries the last object stamped with the deleting revision')
      t.equal(events[0]!.object.metadata.resourceVersion, String(events[0]!.revision))
    })

    t.test('events written while a replay runs arrive exactly once, in order', async (t) => {
      const store = await fixture(t)
      for (let i = 0; i < 150; i++) await store.create(podKey('default', `old${i}`), pod('default', `old${i}`))
      const seen: number[] = []
      const w = store.watch({ resource: 'pods' }, 0, (e) => seen.push(e.revision))
      t.teardown(() => w.stop())
      const live = await Promise.all(Array.from({ length: 60 }, (_, i) => store.create(podKey('default', `new${i}`), pod('default', `new${i}`))))
      const newest = Math.max(...live.map(rv))
      await until(() => seen.at(-1) === newest, 'the newest event arrives')
      await settle()
      t.equal(seen.length, 210, 'every event, once')
      t.same(seen, [...seen].sort((x, y) => x - y), 'in revision order')
      t.equal(new Set(seen).size, seen.length, 'no duplicates')
    })

    t.test('a watch with nothing new receives nothing; writes out of scope are not delivered', async (t) => {
      const store = await fixture(t)
      await store.create(podKey('default', 'a'), pod('default', 'a'))
      const events: StoreEvent[] = []
      const w = store.watch({ resource: 'pods', namespace: 'default' }, await store.revision(), (e) => events.push(e))
      t.teardown(() => w.stop())
      await settle()
      t.same(events, [], 'nothing happened, nothing delivered')
      await store.create(podKey('prod', 'other-namespace'), pod('prod', 'other-namespace'))
      await store.create({ resource: 'services', namespace: 'default', name: 'other-resource' }, pod('default', 'x'))
      await store.create(podKey('default', 'sentinel'), pod('default', 'sentinel'))
      await until(() => events.length > 0, 'the sentinel arrives')
      await settle()
      t.same(events.map((e) => e.key.name), ['sentinel'])
    })

    t.test('each watcher gets its own copy of an event; a throwing watcher does not stop the others', async (t) => {
      const store = await fixture(t)
      const from = await store.revision()
      const first: StoreEvent[] = []
      const second: StoreEvent[] = []
      const w0 = store.watch({ resource: 'pods' }, from, () => {
        throw new Error('a broken handler')
      })
      const w1 = store.watch({ resource: 'pods' }, from, (e) => {
        e.object.metadata.name = 'mutated by the first watcher'
        first.push(e)
      })
      const w2 = store.watch({ resource: 'pods' }, from, (e) => second.push(e))
      t.teardown(() => (w0.stop(), w1.stop(), w2.stop()))
      await store.create(podKey('default', 'a'), pod('default', 'a'))
      await store.create(podKey('default', 'b'), pod('default', 'b'))
      await until(() => first.length === 2 && second.length === 2, 'both watchers receive both events')
      t.same(second.map((e) => e.object.metadata.name), ['a', 'b'])
      t.equal((await store.get(podKey('default', 'a')))?.metadata.name, 'a')
    })

    t.test('a stopped watch receives nothing more', async (t) => {
      const store = await fixture(t)
      const events: StoreEvent[] = []
      const w = store.watch({ resource: 'pods' }, await store.revision(), (e) => events.push(e))
      await store.create(podKey('default', 'a'), pod('default', 'a'))
      await until(() => events.length === 1, 'the first event arrives')
      w.stop()
      await store.create(podKey('default', 'b'), pod('default', 'b'))
      await settle()
      t.same(events.map((e) => e.key.name), ['a'])
    })

    t.test('compact drops the log up to a revision: older watches fail with StoreCompactedError', async (t) => {
      const store = await fixture(t)
      const revisions: number[] = []
      for (let i = 0; i < 6; i++) revisions.push(rv(await store.create(podKey('default', `p${i}`), pod('default', `p${i}`))))
      t.equal(await store.compactedRevision(), 0, 'nothing compacted yet')
      await store.compact(revisions[3]!)
      t.equal(await store.compactedRevision(), revisions[3])
      t.throws(() => store.watch({ resource: 'pods' }, revisions[2]!, () => {}), { code: 'BRAMBLE_STORE_COMPACTED' })
      t.throws(() => store.watch({ resource: 'pods' }, 0, () => {}), { code: 'BRAMBLE_STORE_COMPACTED' })
      const seen: number[] = []
      const w = store.watch({ resource: 'pods' }, revisions[3]!, (e) => seen.push(e.revision))
      t.teardown(() => w.stop())
      await until(() => seen.length === 2, 'the retained events arrive')
      t.same(seen, revisions.slice(4))
      t.equal((await store.list({ resource: 'pods' })).items.length, 6, 'compaction never touches objects')
    })

    t.test('compaction bounds the log on its own', async (t) => {
      const store = await fixture(t, { retainRevisions: 10 })
      for (let i = 0; i < 60; i++) await store.create(podKey('default', `p${i}`), pod('default', `p${i}`))
      const newest = await store.revision()
      let compacted = 0
      const deadline = Date.now() + 15_000
      while (Date.now() < deadline && newest - (compacted = await store.compactedRevision()) > 20) {
        await new Promise((resolve) => setTimeout(resolve, 5))
      }
      t.ok(compacted > 0, `some of the log was compacted (compacted revision ${compacted})`)
      t.ok(newest - compacted <= 20, `at most twice the retained window is kept (${newest - compacted})`)
      t.ok(newest - compacted >= 10, 'the retained window is kept')
      t.throws(() => store.watch({ resource: 'pods' }, 0, () => {}), { code: 'BRAMBLE_STORE_COMPACTED' })
    })
  })
}
