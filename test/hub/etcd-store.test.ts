// The etcd store: the Store contract, unchanged, against a real etcd member started here, plus
// what only etcd has: several stores (hubs) on one prefix, Secrets sealed in etcd's files, a
// watch that outlives its member's restart, and an etcd that does not answer.

import t, { type Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { Writable } from 'node:stream'
import { Etcd3 } from 'etcd3'
import { join } from 'node:path'
import type { KubeObject } from '../../src/api/types.js'
import { EncryptedStore } from '../../src/hub/encrypted-store.js'
import { StoreFullError } from '../../src/hub/errors.js'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import type { ObjectKey, StoreEvent } from '../../src/hub/store.js'
import { createLogger } from '../../src/lib/logger.js'
import { SecretKeyring } from '../../src/lib/secret-keyring.js'
import { storeContract } from '../contract/store.js'
import { freePort } from '../helpers/e2e.js'
import { etcdMissing, startEtcd, type EtcdCluster } from '../helpers/etcd.js'

const missing = etcdMissing()
/** Skips each test, saying why, where no etcd binary is installed. */
const needsEtcd = { skip: missing ?? false }

const prefix = () => `/etc-${randomBytes(3).toString('hex')}/`
const podKey = (name: string): ObjectKey => ({ resource: 'pods', namespace: 'default', name })
const pod = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default' },
  spec: { containers: [{ name: 'main', image: 'busybox' }] },
  ...extra,
})

async function until(done: () => boolean, what: string, deadlineMs = 60_000): Promise<void> {
  const start = Date.now()
  while (!done()) {
    if (Date.now() - start > deadlineMs) throw new Error(`timed out waiting until ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

// Each store of the contract gets its own etcd member: the contract counts revisions from a
// store's own writes, and compaction is etcd-wide, not per prefix.
if (missing) t.test('Store contract: etcd', needsEtcd, async () => {})
else storeContract(t, 'etcd', async (options) => {
  const own = await startEtcd()
  const store = await openEtcdStore({ endpoints: own.endpoints, prefix: prefix(), ...options })
  return {
    store,
    async cleanup() {
      await store.close()
      await own.stop()
    },
  }
})

t.test('etcd-only behaviour', needsEtcd, async (t) => {
  const etcd: EtcdCluster = await startEtcd()
  t.teardown(() => etcd.stop())

  t.test('two stores on one prefix (two hubs) see each other and cannot lose an update', async (t) => {
    const p = prefix()
    const a = await openEtcdStore({ endpoints: etcd.endpoints, prefix: p })
    const b = await openEtcdStore({ endpoints: etcd.endpoints, prefix: p })
    t.teardown(() => Promise.all([a.close(), b.close()]))
    const seenByB: StoreEvent[] = []
    const w = b.watch({ resource: 'pods' }, await b.revision(), (e) => seenByB.push(e))
    t.teardown(() => w.stop())
    const created = await a.create(podKey('web'), pod('web'))
    t.same(await b.get(podKey('web')), created, 'b reads what a wrote')
    t.same((await b.list({ resource: 'pods' })).items, [created])
    const updatedByA = await a.update(podKey('web'), pod('web', { spec: { by: 'a' } }), { expectedResourceVersion: created.metadata.resourceVersion })
    await t.rejects(
      b.update(podKey('web'), pod('web', { spec: { by: 'b' } }), { expectedResourceVersion: created.metadata.resourceVersion }),
      { code: 'BRAMBLE_STORE_CONFLICT' },
      "b's update from the old resourceVersion is refused",
    )
    await until(() => seenByB.length === 2, "b's watch sees a's writes")
    t.same(seenByB.map((e) => `${e.type} ${e.key.name}@${e.revision}`), [`ADDED web@${created.metadata.resourceVersion}`, `MODIFIED web@${updatedByA.metadata.resourceVersion}`])
    const other = await openEtcdStore({ endpoints: etcd.endpoints, prefix: prefix() })
    t.teardown(() => other.close())
    t.same((await other.list({ resource: 'pods' })).items, [], 'a store on another prefix sees none of it')
  })

  t.test("Secrets are sealed in etcd's own files: neither the value nor its base64 is on disk", async (t) => {
    const dir = await mkdtemp(join(tmpdir(), 'etc-keyring-'))
    t.teardown(() => rm(dir, { recursive: true, force: true }))
    const keyring = SecretKeyring.openOrCreate(join(dir, 'secrets.key'))
    const store = new EncryptedStore(await openEtcdStore({ endpoints: etcd.endpoints, prefix: prefix() }), keyring)
    t.teardown(() => store.close())
    const value = `etc-distinctive-${randomBytes(6).toString('hex')}`
    const b64 = Buffer.from(value).toString('base64')
    const key = { resource: 'secrets', namespace: 'default', name: 'db' }
    const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db', namespace: 'default' }, data: { password: b64 } }
    const created = await store.create(key, secret)
    t.equal((created.data as Record<string, string>).password, b64, 'the write returns the Secret opened')
    t.equal(((await store.get(key))?.data as Record<string, string>).password, b64, 'get opens it')
    t.equal(((await store.list({ resource: 'secrets' })).items[0]?.data as Record<string, string>).password, b64, 'list opens it')
    const files = (d: string): string[] => readdirSync(d).flatMap((e) => (statSync(join(d, e)).isDirectory() ? files(join(d, e)) : [join(d, e)]))
    const leaking = files(etcd.members[0]!.dataDir).filter((f) => {
      const raw = readFileSync(f)
      return raw.includes(value) || raw.includes(b64)
    })
    t.same(leaking, [], "no etcd file (WAL, database) holds the Secret's value")
  })

  t.test("a watch outlives its member's restart: nothing lost, nothing twice", async (t) => {
    const store = await openEtcdStore({ endpoints: etcd.endpoints, prefix: prefix() })
    t.teardown(() => store.close())
    const seen: string[] = []
    const w = store.watch({ resource: 'pods' }, await store.revision(), (e) => seen.push(e.key.name))
    t.teardown(() => w.stop())
    for (let i = 0; i < 5; i++) await store.create(podKey(`before${i}`), pod(`before${i}`))
    await until(() => seen.length === 5, 'the first writes arrive')
    await etcd.members[0]!.restart()
    for (let i = 0; i < 5; i++) await store.create(podKey(`after${i}`), pod(`after${i}`))
    await until(() => seen.length >= 10, 'the writes after the restart arrive')
    await new Promise((resolve) => setTimeout(resolve, 500))
    t.same(seen, [...[0, 1, 2, 3, 4].map((i) => `before${i}`), ...[0, 1, 2, 3, 4].map((i) => `after${i}`)])
  })

  t.test("a watch etcd ends (its revision compacted behind the store's back) calls onEnd; the store goes on", async (t) => {
    const lines: string[] = []
    const destination = new Writable({ write: (chunk, _encoding, done) => (lines.push(String(chunk)), done()) })
    const store = await openEtcdStore({ endpoints: etcd.endpoints, prefix: prefix(), logger: createLogger({ level: 'warn', destination }) })
    t.teardown(() => store.close())
    const from = await store.revision()
    for (let i = 0; i < 3; i++) await store.create(podKey(`p${i}`), pod(`p${i}`))
    // Compacted by etcd itself (its --auto-compaction, or another tool): the store is not told.
    const raw = new Etcd3({ hosts: etcd.endpoints })
    t.teardown(() => raw.close())
    await raw.kv.compact({ revision: await store.revision() })
    const early: StoreEvent[] = []
    const ended: Error[] = []
    store.watch({ resource: 'pods' }, from, (e) => early.push(e), { onEnd: (error) => ended.push(error) })
    await until(() => ended.length > 0, 'the watcher is told its watch ended')
    t.match(ended, [{ code: 'BRAMBLE_STORE_COMPACTED' }], 'once, as a StoreCompactedError: list again')
    t.ok(lines.some((l) => l.includes('etcd ended a watch')), 'and it is logged')
    t.same(early, [], 'it delivered nothing from the compacted range')
    const later: StoreEvent[] = []
    const w = store.watch({ resource: 'pods' }, await store.revision(), (e) => later.push(e))
    t.teardown(() => w.stop())
    await store.create(podKey('fresh'), pod('fresh'))
    await until(() => later.length === 1, 'a new watch from now receives the next write')
  })

  t.test('a value something else wrote under the prefix is skipped by watches and named by reads', async (t) => {
    const p = prefix()
    const store = await openEtcdStore({ endpoints: etcd.endpoints, prefix: p })
    t.teardown(() => store.close())
    const seen: string[] = []
    const w = store.watch({ resource: 'pods' }, await store.revision(), (e) => seen.push(`${e.type} ${e.key.name}`))
    t.teardown(() => w.stop())
    const raw = new Etcd3({ hosts: etcd.endpoints })
    t.teardown(() => raw.close())
    await raw.put(`${p}o/pods\0default\0junk`).value('not json')
    await store.create(podKey('after'), pod('after'))
    await raw.delete().key(`${p}o/pods\0default\0junk`)
    await store.delete(podKey('after'))
    await until(() => seen.length === 2, 'the writes around the junk arrive')
    t.same(seen, ['ADDED after', 'DELETED after'], 'the junk, written and deleted, was skipped')
    await raw.put(`${p}o/pods\0default\0junk`).value('[]')
    await t.rejects(store.get(podKey('junk')), { message: new RegExp(`${p.replace(/\//g, '\\/')} holds ".*pods\\\\0default\\\\0junk", which is not a Bramble object`) })
  })

  // etcd checks its quota as it takes a write and again as it applies it; a write that crosses the
  // quota in between is applied and still answered "database space exceeded". A backend that
  // commits every write (--backend-batch-limit 1) and 32 writes at a time make that happen.
  const smallEtcd = async (t: Test) => {
    const small = await startEtcd(1, ['--quota-backend-bytes', String(4 * 1024 * 1024), '--backend-batch-limit', '1'])
    t.teardown(() => small.stop())
    const store = await openEtcdStore({ endpoints: small.endpoints, prefix: prefix() })
    t.teardown(() => store.close())
    return store
  }
  const AT_ONCE = 32
  const big = (round: number) => 'x'.repeat(256 * 1024) + round
  /** Rounds of AT_ONCE writes until one is refused; each write's outcome, with what it wrote. */
  const fill = async (write: (i: number, round: number) => Promise<KubeObject>) => {
    const outcomes: Array<{ i: number; round: number; written?: KubeObject; error?: unknown }> = []
    for (let round = 0; round < 100 && !outcomes.some((o) => o.error); round++) {
      const settled = await Promise.allSettled(Array.from({ length: AT_ONCE }, (_, i) => write(i, round)))
      settled.forEach((r, i) => outcomes.push(r.status === 'fulfilled' ? { i, round, written: r.value } : { i, round, error: r.reason }))
    }
    return outcomes
  }

  t.test('an etcd past its space quota refuses creates with StoreFullError saying what to do, and a refused create is not stored', async (t) => {
    const store = await smallEtcd(t)
    const outcomes = await fill((i, round) => store.create(podKey(`big${round}-${i}`), pod(`big${round}-${i}`, { data: big(round) })))
    const refused = outcomes.filter((o) => o.error)
    t.ok(refused.length > 0 && refused.every((o) => o.error instanceof StoreFullError), `StoreFullErrors after ${outcomes.length - refused.length} creates`)
    t.match((refused[0]!.error as Error).message, /is full; etcd reached its space quota: .*etcdctl defrag.*etcdctl alarm disarm.*--quota-backend-bytes/)
    const stored = new Map((await store.list({ resource: 'pods' })).items.map((o) => [o.metadata.name, o]))
    for (const o of outcomes) {
      const name = `big${o.round}-${o.i}`
      if (o.error) t.notOk(stored.has(name), `${name} was refused and is not stored`)
      else t.same([stored.get(name)?.metadata.uid, stored.get(name)?.metadata.resourceVersion], [o.written!.metadata.uid, o.written!.metadata.resourceVersion], `${name} was created and is stored as answered`)
    }
    t.equal(stored.size, outcomes.length - refused.length, 'what was stored reads back whole, and only that')
  })

  t.test('an etcd past its space quota refuses updates with StoreFullError, and a refused update leaves the object as it was', async (t) => {
    const store = await smallEtcd(t)
    const latest = await Promise.all(Array.from({ length: AT_ONCE }, (_, i) => store.create(podKey(`grow${i}`), pod(`grow${i}`))))
    // etcd keeps every revision until compaction, so each round of updates adds to its size.
    const outcomes = await fill(async (i, round) => {
      const written = await store.update(podKey(`grow${i}`), { ...latest[i]!, data: big(round) } as KubeObject)
      latest[i] = written
      return written
    })
    const refused = outcomes.filter((o) => o.error)
    t.ok(refused.length > 0 && refused.every((o) => o.error instanceof StoreFullError), `StoreFullErrors after ${outcomes.length - refused.length} updates`)
    for (let i = 0; i < AT_ONCE; i++) {
      const now = await store.get(podKey(`grow${i}`))
      t.same([now?.metadata.resourceVersion, (now as any)?.data], [latest[i]!.metadata.resourceVersion, (latest[i] as any).data], `grow${i} holds its last update answered as written`)
    }
  })

  t.test('an etcd that does not answer is a StoreUnavailableError naming the store', async (t) => {
    const port = await freePort()
    await t.rejects(openEtcdStore({ endpoints: [`http://127.0.0.1:${port}`], callTimeoutMs: 3000 }), {
      code: 'BRAMBLE_STORE_UNAVAILABLE',
      message: new RegExp(`etcd://127\\.0\\.0\\.1:${port}/bramble/ does not answer`),
    })
  })
})
