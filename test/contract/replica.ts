// The Replica contract: what the agent relies on from its local copy of desired state, run
// against every implementation (today: LMDB). `make` opens a replica over a store that survives
// `close()`; calling it again after a close must find what was written.

import type { Test } from 'tap'
import type { DesiredMessage, DesiredObject } from '../../src/api/protocol.js'
import type { Replica } from '../../src/agent/replica.js'

export type OpenReplica = () => Promise<Replica>
/** A new, empty place for a replica, and how to open it (again). */
export type FreshReplica = () => Promise<OpenReplica>

const pod = (name: string, uid = `uid-${name}`, extra: Record<string, unknown> = {}): DesiredObject => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, namespace: 'default', uid },
  spec: { containers: [{ name: 'c', image: 'busybox' }] },
  ...extra,
})
const configMap = (name: string, ns = 'default'): DesiredObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { k: name } })
const secret = (name: string): DesiredObject => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: 'default' }, data: { k: 'dg==' } })
const msg = (m: Partial<DesiredMessage> & { revision: number }): DesiredMessage => ({ since: 0, full: false, upserts: [], deletes: [], ...m })

export function replicaContract(t: Test, fresh: FreshReplica): void {
  t.test('an empty replica is at revision 0 and holds nothing', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    t.equal(r.revision(), 0)
    t.same(r.pods(), [])
    t.same(r.desiredPods(), [])
  })

  t.test('a full message replaces everything and records its revision', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    t.equal((await r.applyDesired(msg({ revision: 5, full: true, upserts: [pod('a'), pod('b'), configMap('cfg')] }))).outcome, 'applied')
    t.equal((await r.applyDesired(msg({ revision: 9, full: true, upserts: [pod('c'), secret('s')] }))).outcome, 'applied')
    t.equal(r.revision(), 9)
    t.same(r.pods().map((p) => p.metadata.name), ['c'])
    t.equal(r.configMap('default', 'cfg'), undefined)
    t.equal(r.secret('default', 's')?.metadata.name, 's')
  })

  t.test('a delta applies upserts, then deletes', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    await r.applyDesired(msg({ revision: 3, full: true, upserts: [pod('a'), pod('b')] }))
    const out = await r.applyDesired(msg({ revision: 4, since: 3, upserts: [pod('c'), pod('a', 'uid-a', { metadata: { name: 'a', namespace: 'default', uid: 'uid-a', labels: { v: '2' } } })], deletes: [{ kind: 'Pod', namespace: 'default', name: 'b' }] }))
    t.same(out, { outcome: 'applied', revision: 4 })
    t.same(r.pods().map((p) => p.metadata.name).sort(), ['a', 'c'])
    t.same(r.pods().find((p) => p.metadata.name === 'a')?.metadata.labels, { v: '2' })
  })

  t.test('a delete naming another uid leaves the pod made again under that name', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    await r.applyDesired(msg({ revision: 1, full: true, upserts: [pod('a', 'old')] }))
    await r.applyDesired(msg({ revision: 2, since: 1, upserts: [pod('a', 'new')], deletes: [{ kind: 'Pod', namespace: 'default', name: 'a', uid: 'old' }] }))
    t.same(r.pods().map((p) => p.metadata.uid), ['new'])
  })

  t.test('a delta starting after the replica revision is a gap and changes nothing', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    await r.applyDesired(msg({ revision: 3, full: true, upserts: [pod('a')] }))
    t.same(await r.applyDesired(msg({ revision: 8, since: 6, upserts: [pod('z')] })), { outcome: 'gap', revision: 3 })
    t.same(r.pods().map((p) => p.metadata.name), ['a'])
  })

  t.test('a message not newer than the replica is stale and changes nothing', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    await r.applyDesired(msg({ revision: 7, full: true, upserts: [pod('a')] }))
    t.same(await r.applyDesired(msg({ revision: 7, since: 6, upserts: [pod('dup')] })), { outcome: 'stale', revision: 7 })
    t.same(await r.applyDesired(msg({ revision: 4, full: true, upserts: [] })), { outcome: 'stale', revision: 7 })
    t.same(r.pods().map((p) => p.metadata.name), ['a'])
  })

  t.test('desired pods carry the ConfigMaps and Secrets of their own namespace only', async (t) => {
    const r = await (await fresh())()
    t.teardown(() => r.close())
    await r.applyDesired(msg({ revision: 1, full: true, upserts: [pod('a'), configMap('site'), configMap('other', 'kube-system'), secret('creds')] }))
    const [d] = r.desiredPods()
    t.same(Object.keys(d.configMaps), ['site'])
    t.same(Object.keys(d.secrets), ['creds'])
    t.equal(d.pod.metadata.name, 'a')
  })

  t.test("the node's own Node is kept apart from the pods, replaced by a newer one, and kept across a reopen", async (t) => {
    const openReplica = await fresh()
    const r = await openReplica()
    const node = (podCIDR: string): DesiredObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', namespace: '', uid: 'u1' }, spec: { podCIDR, podCIDRs: [podCIDR] } })
    t.equal(r.node(), undefined, 'none before the hub sent it')
    await r.applyDesired(msg({ revision: 3, full: true, upserts: [node('10.42.0.0/24'), pod('a')] }))
    t.same(r.pods().map((p) => p.metadata.name), ['a'], 'not a pod')
    t.equal(r.node()?.spec?.podCIDR, '10.42.0.0/24')
    await r.applyDesired(msg({ revision: 4, since: 3, upserts: [node('10.42.5.0/24')] }))
    await r.close()
    const again = await openReplica()
    t.teardown(() => again.close())
    t.equal(again.node()?.spec?.podCIDR, '10.42.5.0/24')
  })

  t.test('what was applied is there after closing and opening again', async (t) => {
    const openReplica = await fresh()
    const r = await openReplica()
    await r.applyDesired(msg({ revision: 11, full: true, upserts: [pod('kept'), configMap('cfg')] }))
    await r.close()
    const again = await openReplica()
    t.teardown(() => again.close())
    t.equal(again.revision(), 11)
    t.same(again.pods().map((p) => p.metadata.name), ['kept'])
    t.equal(again.configMap('default', 'cfg')?.metadata.name, 'cfg')
  })
}
