// The agent's replica on a disk that fills (a real tmpfs): a desired message that finds no room
// fails with a ReplicaWriteError naming the free bytes, nothing of it stored and no crash; the
// replica stays at its revision and readable; with room again the same message applies; the
// replica reopens with every message it reported applied.

import t from 'tap'
import { join } from 'node:path'
import { ReplicaWriteError } from '../../src/agent/errors.js'
import { openReplica } from '../../src/agent/replica.js'
import type { DesiredMessage } from '../../src/api/protocol.js'
import { mountSmallFilesystem, smallFilesystemUnavailable } from '../helpers/small-filesystem.js'

/** Revision `revision`: one pod with a big annotation, so a few messages fill a small disk. */
function message(revision: number): DesiredMessage {
  const pod = { apiVersion: 'v1', kind: 'Pod' as const, metadata: { name: `p${revision}`, namespace: 'default', uid: `u${revision}`, annotations: { blob: 'x'.repeat(32 * 1024) } }, spec: {} }
  return { revision, since: revision - 1, full: false, upserts: [pod], deletes: [] }
}

const unavailable = smallFilesystemUnavailable()
if (unavailable) t.plan(0, unavailable)
else {
  t.test('a replica whose disk fills refuses the message cleanly and takes it once there is room', async (t) => {
    const fs = await mountSmallFilesystem('f2', 16 * 1024 * 1024)
    t.teardown(() => fs.unmount())
    const path = join(fs.dir, 'agent', 'replica')
    let replica = await openReplica(path)
    t.teardown(() => replica.close())
    t.equal((await replica.applyDesired(message(1))).outcome, 'applied')
    fs.fill(256 * 1024)
    let revision = 1
    let refusal: unknown
    while (revision < 200 && !refusal) {
      try {
        await replica.applyDesired(message(revision + 1))
        revision++
      } catch (err) {
        refusal = err
      }
    }
    t.ok(refusal instanceof ReplicaWriteError, `refused after revision ${revision}: ${(refusal as Error)?.message}`)
    const err = refusal as ReplicaWriteError
    t.equal(err.code, 'BRAMBLE_AGENT_REPLICA_WRITE')
    t.ok(err.noSpace, 'put down to a full disk')
    t.match(err.message, /its disk is full \(\d+ bytes free\)/, 'the message names the free bytes')
    t.equal(replica.revision(), revision, 'the replica stays at the last revision it stored')
    t.equal(replica.pods().length, revision, 'and holds exactly the pods of the messages it stored')
    await t.rejects(replica.applyDesired(message(revision + 1)), { code: 'BRAMBLE_AGENT_REPLICA_WRITE' }, 'the same message is refused again while the disk is full')

    fs.empty()
    t.equal((await replica.applyDesired(message(revision + 1))).outcome, 'applied', 'with room again the message applies')
    await replica.close()
    replica = await openReplica(path)
    t.equal(replica.revision(), revision + 1, 'the replica reopens at its revision')
    t.same(replica.pods().map((p) => p.metadata.name).sort(), Array.from({ length: revision + 1 }, (_, i) => `p${i + 1}`).sort(), 'with every pod it reported applied')
  })
}
