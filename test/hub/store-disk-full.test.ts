// The hub's store on a disk that fills (a real tmpfs): writes past the room there is fail with a
// StoreFullError naming the free bytes, nothing half-written, no crash (lmdb-js's commit error is
// handled); reads go on; once space is back writes work again without a restart; the store
// reopens with every acknowledged write.

import t from 'tap'
import { join } from 'node:path'
import type { KubeObject } from '../../src/api/types.js'
import { StoreFullError } from '../../src/hub/errors.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { mountSmallFilesystem, smallFilesystemUnavailable } from '../helpers/small-filesystem.js'

const configMap = (name: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { blob: 'x'.repeat(8 * 1024) } }) as KubeObject
const key = (name: string) => ({ resource: 'configmaps', namespace: 'default', name })

const unavailable = smallFilesystemUnavailable()
if (unavailable) t.plan(0, unavailable)
else {
  t.test('a store whose disk fills refuses writes cleanly, keeps every acknowledged one, and writes again once there is room', async (t) => {
    const fs = await mountSmallFilesystem('f2', 16 * 1024 * 1024)
    t.teardown(() => fs.unmount())
    const path = join(fs.dir, 'store')
    let store = await openLmdbStore({ path })
    t.teardown(() => store.close())
    await store.create(key('before'), configMap('before'))
    // Something else on the disk takes all but a little of the room.
    fs.fill(256 * 1024)
    const acked: string[] = []
    let refusal: unknown
    for (let i = 0; i < 500 && !refusal; i++) {
      try {
        await store.create(key(`c${i}`), configMap(`c${i}`))
        acked.push(`c${i}`)
      } catch (err) {
        refusal = err
      }
    }
    t.ok(refusal instanceof StoreFullError, `a StoreFullError after ${acked.length} writes: ${(refusal as Error)?.message}`)
    t.equal((refusal as StoreFullError).code, 'BRAMBLE_STORE_FULL')
    t.match((refusal as Error).message, /cannot grow: its disk has \d+ bytes free; free space on that disk/, 'the message says the disk is full and how much is free')
    // Concurrent writes into a full disk: each refused, none crashes the process.
    const burst = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => store.create(key(`burst${i}`), configMap(`burst${i}`))))
    t.ok(burst.every((r) => r.status === 'rejected' && r.reason instanceof StoreFullError), 'a burst of writes is refused too, each with StoreFullError')
    const listed = (await store.list({ resource: 'configmaps' })).items.map((o) => o.metadata.name)
    t.same(listed.sort(), ['before', ...acked].sort(), 'reads go on and show exactly the acknowledged writes')

    fs.empty()
    await t.resolves(store.create(key('after'), configMap('after')), 'with room again, a write succeeds without a restart')
    const revision = await store.revision()
    await store.close()
    store = await openLmdbStore({ path })
    const reopened = (await store.list({ resource: 'configmaps' })).items.map((o) => o.metadata.name)
    t.same(reopened.sort(), ['after', 'before', ...acked].sort(), 'the store reopens with every acknowledged write, and nothing else')
    t.equal(await store.revision(), revision, 'at the revision it had')
  })
}
