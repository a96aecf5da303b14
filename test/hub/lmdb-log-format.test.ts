// The store's change log holds a create's or update's object as the bytes of its objects entry
// (encoded once for both); a data dir written before, whose log holds the objects themselves,
// still replays the same events, and the objects database's bytes are what lmdb-js makes itself.

import t from 'tap'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import type { KubeObject } from '../../src/api/types.js'
import { openLmdbStore, type StoredLogEntry } from '../../src/hub/lmdb-store.js'
import type { StoreEvent } from '../../src/hub/store.js'

const pod = (name: string, image = 'busybox'): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', labels: { app: name } },
  spec: { containers: [{ name: 'main', image, ports: [{ containerPort: 80 }] }] },
})
const key = (name: string) => ({ resource: 'pods', namespace: 'default', name })

async function replay(path: string): Promise<StoreEvent[]> {
  const store = await openLmdbStore({ path })
  const events: StoreEvent[] = []
  const watch = store.watch({ resource: 'pods' }, 0, (e) => events.push(e))
  for (let i = 0; i < 200 && events.length < 4; i++) await new Promise((r) => setTimeout(r, 10))
  watch.stop()
  await store.close()
  return events
}

/** Opens the raw log of a closed store, as a hub that wrote it before would have left it. */
async function withRawLog(path: string, fn: (objects: ReturnType<ReturnType<typeof open>['openDB']>, log: ReturnType<ReturnType<typeof open>['openDB']>) => void | Promise<void>): Promise<void> {
  const env = open({ path, maxDbs: 4 })
  try {
    await fn(env.openDB({ name: 'objects' }), env.openDB({ name: 'log' }))
    await env.flushed
  } finally {
    await env.close()
  }
}

t.test('creates and updates log the bytes of their objects entry; deletes and older entries log the object; all replay alike', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-logfmt-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'store')
  const store = await openLmdbStore({ path })
  const a = await store.create(key('a'), pod('a'))
  const a2 = await store.update(key('a'), { ...a, spec: { containers: [{ name: 'main', image: 'busybox:2' }] } })
  await store.create(key('b'), pod('b'))
  await store.delete(key('b'))
  await store.close()

  const before = await replay(path)
  t.same(before.map((e) => `${e.type} ${e.key.name} ${e.revision}`), ['ADDED a 1', 'MODIFIED a 2', 'ADDED b 3', 'DELETED b 4'])
  t.same(before[1]!.object, a2, 'the update replays as written')

  await withRawLog(path, (objects, log) => {
    const kinds = [1, 2, 3, 4].map((rev) => (log.get(rev) as StoredLogEntry).object instanceof Uint8Array)
    t.same(kinds, [true, true, true, false], 'bytes for writes, the object for the delete')
    const entry = log.get(2) as StoredLogEntry
    t.same(Buffer.from(entry.object as Uint8Array), objects.getBinary('pods\0default\0a'), "the update's bytes are the objects entry's")
    t.same(objects.getBinary('pods\0default\0a'), (objects as any).encoder.encode(a2), 'which are what lmdb-js encodes for the object')
  })

  // The format a hub wrote before: every log entry holds the object itself.
  await withRawLog(path, async (objects, log) => {
    await log.transaction(() => {
      for (const rev of [1, 2, 3]) {
        const entry = log.get(rev) as StoredLogEntry
        log.putSync(rev, { ...entry, object: (objects as any).decoder.decode(entry.object) })
      }
    })
  })
  await withRawLog(path, (_objects, log) => {
    t.notOk([1, 2, 3, 4].some((rev) => (log.get(rev) as StoredLogEntry).object instanceof Uint8Array), 'the log is in the old form')
  })
  const after = await replay(path)
  t.same(after, before, 'an old log replays the same events')
})
