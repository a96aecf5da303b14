// The replica spares the SD card between desired messages: each LMDB read transaction writes its
// reader slot in lock.mdb, a page the kernel then writes back to disk, so what the agent asks every
// resync (revision, Node, desired pods) is answered from memory. Seen through the write_bytes this
// thread dirties (/proc/thread-self/io) after lock.mdb was synced clean.

import t from 'tap'
import { closeSync, fsyncSync, openSync, readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openReplica } from '../../src/agent/replica.js'

const dirtied = (): number => Number(/^write_bytes: (\d+)$/m.exec(readFileSync('/proc/thread-self/io', 'utf8'))?.[1])

/** Writes lock.mdb's dirty pages back, so the next write to one of them counts again. */
function syncLockFile(path: string): void {
  const fd = openSync(join(path, 'lock.mdb'), 'r+')
  try {
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
}

const turn = () => new Promise((r) => setTimeout(r, 20))

t.test('between desired messages, revision, Node and desired pods dirty no page of the replica', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-replica-wear-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const path = join(dir, 'replica')
  const replica = await openReplica(path)
  t.teardown(() => replica.close())
  const node = { apiVersion: 'v1', kind: 'Node' as const, metadata: { name: 'n1', namespace: '', uid: 'n' }, spec: { podCIDR: '10.42.1.0/24' } }
  const pod = { apiVersion: 'v1', kind: 'Pod' as const, metadata: { name: 'p1', namespace: 'default', uid: 'u1' }, spec: { nodeName: 'n1' } }
  await replica.applyDesired({ revision: 7, since: 0, full: true, upserts: [node, pod], deletes: [] })

  // The first reads after a message go to LMDB (and so to lock.mdb): the measure can see them.
  await turn()
  syncLockFile(path)
  let before = dirtied()
  t.equal(replica.revision(), 7)
  t.ok(dirtied() - before > 0, 'reading the replica after a message dirties lock.mdb')

  await turn()
  syncLockFile(path)
  before = dirtied()
  for (let i = 0; i < 50; i++) {
    t.equal(replica.revision(), 7)
    t.equal(replica.node()?.spec?.podCIDR, '10.42.1.0/24')
    t.equal(replica.desiredPods().length, 1)
    t.equal(replica.pods()[0]?.metadata.name, 'p1')
    await turn()
  }
  t.equal(dirtied() - before, 0, 'no byte dirtied while nothing changed')

  await replica.applyDesired({ revision: 8, since: 7, full: false, upserts: [], deletes: [{ kind: 'Pod', namespace: 'default', name: 'p1', uid: 'u1' }] })
  t.equal(replica.revision(), 8, 'a new message is read again')
  t.equal(replica.pods().length, 0)
  t.equal(replica.node()?.metadata.name, 'n1')
})
