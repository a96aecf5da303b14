// The LMDB store's values name their object shapes by number (msgpackr shared structures, kept in
// the database): a store written before, with every shape spelled out in each value, opens and
// reads as it was; and a shape first met in a commit that failed (a full disk) is not named by
// later values, which would not decode once the store is opened again. A write encodes its object
// once: the change log holds the same bytes as the objects database.

import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import type { KubeObject } from '../../src/api/types.js'
import { StoreFullError } from '../../src/hub/errors.js'
import { DATABASES, logEntryOf, type StoredLogEntry } from '../../src/hub/lmdb-layout.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import type { StoreEvent } from '../../src/hub/store.js'
import { mountSmallFilesystem, smallFilesystemUnavailable } from '../helpers/small-filesystem.js'

const pod = (name: string, rv: string): KubeObject =>
  ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: rv, creationTimestamp: '2026-01-01T00:00:00Z', labels: { app: name } },
    spec: { containers: [{ name: 'app', image: 'busybox', resources: { requests: { cpu: '100m' } } }], tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }] },
    status: { phase: 'Pending' },
  }) as KubeObject

t.test('a store written with every shape inline (before shared structures) opens, reads, watches and takes writes', async (t) => {
  const path = mkdtempSync(join(tmpdir(), 'sch-structures-'))
  t.teardown(() => rmSync(path, { recursive: true, force: true }))
  // The layout as the store wrote it before: plain msgpack databases.
  const old = open({ path, maxDbs: 4 })
  const objects = old.openDB<KubeObject, string>({ name: 'objects' })
  const log = old.openDB<unknown, number>({ name: 'log' })
  const meta = old.openDB<number, string>({ name: 'meta' })
  const written = [pod('a', '1'), pod('b', '2')]
  await old.transaction(() => {
    written.forEach((p, i) => {
      objects.putSync(`pods\0default\0${p.metadata.name}`, p)
      log.putSync(i + 1, { type: 'ADDED', key: { resource: 'pods', namespace: 'default', name: p.metadata.name }, object: p })
    })
    meta.putSync('revision', 2)
  })
  await old.close()

  let store = await openLmdbStore({ path })
  t.same((await store.list({ resource: 'pods' })).items, written, 'every object reads back as written')
  const events: StoreEvent[] = []
  const watch = store.watch({ resource: 'pods' }, 0, (e) => events.push(e))
  await store.update({ resource: 'pods', namespace: 'default', name: 'a' }, { ...written[0]!, status: { phase: 'Running' } })
  await store.create({ resource: 'pods', namespace: 'default', name: 'c' }, pod('c', ''))
  for (let i = 0; i < 100 && events.length < 4; i++) await new Promise((r) => setTimeout(r, 10))
  watch.stop()
  t.same(
    events.map((e) => [e.type, e.object.metadata.name, e.object.status?.phase]),
    [['ADDED', 'a', 'Pending'], ['ADDED', 'b', 'Pending'], ['MODIFIED', 'a', 'Running'], ['ADDED', 'c', 'Pending']],
    'a watch from revision 0 replays the old change log, then the new writes',
  )
  await store.close()
  store = await openLmdbStore({ path })
  t.teardown(() => store.close())
  const items = (await store.list({ resource: 'pods' })).items
  t.same(items.map((p) => [p.metadata.name, p.status?.phase, p.spec?.tolerations?.[0]?.tolerationSeconds]), [['a', 'Running', 300], ['b', 'Pending', 300], ['c', 'Pending', 300]], 'old and new values read back after reopening')
})

const unavailable = smallFilesystemUnavailable()
t.test('a shape first met in a write refused by a full disk is stored with the next write that uses it', { skip: unavailable }, async (t) => {
  const fs = await mountSmallFilesystem('sch', 16 * 1024 * 1024)
  t.teardown(() => fs.unmount())
  const path = join(fs.dir, 'store')
  let store = await openLmdbStore({ path })
  t.teardown(() => store.close())
  // Each ConfigMap's data has a key of its own: a new shape, saved with the write that first uses it.
  const configMap = (name: string, key: string, size: number): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { [key]: 'x'.repeat(size) } }) as KubeObject
  const key = (name: string) => ({ resource: 'configmaps', namespace: 'default', name })
  await store.create(key('before'), configMap('before', 'before', 16))
  fs.fill(256 * 1024)
  let refused: string | undefined
  for (let i = 0; i < 500 && refused === undefined; i++) {
    try {
      await store.create(key(`c${i}`), configMap(`c${i}`, `shape${i}`, 8 * 1024))
    } catch (err) {
      if (!(err instanceof StoreFullError)) throw err
      refused = `shape${i}`
    }
  }
  t.ok(refused, `a write was refused: ${refused}`)
  fs.empty()
  const after = configMap('after', refused!, 16)
  await store.create(key('after'), after)
  await store.close()
  store = await openLmdbStore({ path })
  const read = await store.get(key('after'))
  t.same(read?.data, after.data, 'the value written with the refused shape decodes after reopening, its key intact')
  t.same((await store.get(key('before')))?.data, { before: 'x'.repeat(16) }, 'and so does one from before')
})

t.test('a write encodes its object once: its change-log entry holds the bytes the objects database holds, and replays after reopening', async (t) => {
  const path = mkdtempSync(join(tmpdir(), 'sch-encoded-once-'))
  t.teardown(() => rmSync(path, { recursive: true, force: true }))
  let store = await openLmdbStore({ path })
  const key = { resource: 'pods', namespace: 'default', name: 'a' }
  await store.create(key, pod('a', ''))
  const updated = await store.update(key, { ...pod('a', ''), status: { phase: 'Running' } })
  await store.delete(key)
  await store.close()

  const env = open({ path, maxDbs: 4 })
  const objects = env.openDB<KubeObject, string>(DATABASES.objects)
  const log = env.openDB<StoredLogEntry, number>(DATABASES.log)
  const entries = [...log.getRange()].map(({ value }) => value)
  t.same(entries.map((e) => [e.type, e.object]), [['ADDED', undefined], ['MODIFIED', undefined], ['DELETED', undefined]], 'every entry carries bytes, no object of its own')
  t.ok(entries.every((e) => e.encoded instanceof Uint8Array && e.encoded.length > 0), 'the bytes are there')
  t.same(logEntryOf(objects, entries[1]!).object, updated, "the bytes decode with the objects database's structures to what was written")
  await env.close()

  store = await openLmdbStore({ path })
  t.teardown(() => store.close())
  const events: StoreEvent[] = []
  const watch = store.watch({ resource: 'pods' }, 0, (e) => events.push(e))
  for (let i = 0; i < 100 && events.length < 3; i++) await new Promise((r) => setTimeout(r, 10))
  watch.stop()
  t.same(
    events.map((e) => [e.type, e.object.metadata.name, e.object.status?.phase, e.object.metadata.resourceVersion]),
    [['ADDED', 'a', 'Pending', '1'], ['MODIFIED', 'a', 'Running', '2'], ['DELETED', 'a', 'Running', '3']],
    'a watch from revision 0 on the reopened store replays them',
  )
})
