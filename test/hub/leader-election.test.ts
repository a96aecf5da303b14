// Leader election on a real etcd member: one candidate of two leads, the other takes over when it
// resigns or its term ends, and a write fenced by a term that is over is refused by etcd itself.

import t from 'tap'
import { Etcd3 } from 'etcd3'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'
import { until } from '../helpers/e2e.js'
import { openEtcdStore, type EtcdFence } from '../../src/hub/etcd-store.js'
import { runEtcdElection, soleLeader, type Election } from '../../src/hub/leader-election.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import type { KubeObject } from '../../src/api/types.js'

const missing = etcdMissing()
if (missing) t.plan(0, `leader election test skipped: ${missing}`)

const configMap = (name: string, data: Record<string, string>): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data }) as KubeObject

/** Who wrote a test ConfigMap. */
const writer = (object: KubeObject | undefined) => (object as { data?: { by?: string } } | undefined)?.data?.by

/** A candidate that records its terms: the fences it was given and whether its work runs. */
function candidate(endpoints: string[], prefix: string, name: string) {
  const terms: EtcdFence[] = []
  let working = false
  let deposals = 0
  const election: Election = runEtcdElection(
    { endpoints, prefix, candidate: name, leaseMs: 2_000, retryMs: 200, clock: systemClock, logger: silentLogger() },
    {
      elected: async (fence) => {
        terms.push(fence!)
        working = true
      },
      deposed: async () => {
        working = false
        deposals++
      },
    },
  )
  return {
    election,
    terms,
    get working() {
      return working
    },
    get deposals() {
      return deposals
    },
  }
}

t.test('one of two candidates leads; the other takes over when it resigns', async (t) => {
  const etcd = await startEtcd(1)
  t.teardown(() => etcd.stop())
  const prefix = '/ha-election-resign/'
  const a = candidate(etcd.endpoints, prefix, 'hub-a')
  const b = candidate(etcd.endpoints, prefix, 'hub-b')
  t.teardown(() => Promise.all([a.election.close(), b.election.close()]))
  await until('a leader elected', () => a.working || b.working, 30_000)
  // Both had time to try: still only one leads.
  await new Promise((resolve) => setTimeout(resolve, 1_000))
  t.equal(Number(a.working) + Number(b.working), 1, 'exactly one candidate runs the leader work')
  const [first, second] = a.working ? [a, b] : [b, a]
  t.ok(first.election.leading, 'the leader knows it leads')
  t.notOk(second.election.leading, 'the follower knows it does not')

  await first.election.close()
  t.equal(first.deposals, 1, 'the resigning leader stopped its work')
  await until('the follower takes over after the leader resigned', () => second.working, 10_000)
  t.ok(second.election.leading)
  t.not(second.terms[0]!.createRevision, first.terms[0]!.createRevision, 'the new term has its own fence')
})

t.test('a deposed leader that has not noticed cannot write; the new leader can', async (t) => {
  const etcd = await startEtcd(1)
  t.teardown(() => etcd.stop())
  const prefix = '/ha-election-fence/'
  const store = await openEtcdStore({ endpoints: etcd.endpoints, prefix })
  t.teardown(() => store.close())
  const key = { resource: 'configmaps', namespace: 'default', name: 'fenced' }

  const a = candidate(etcd.endpoints, prefix, 'hub-a')
  await until('the first candidate leads', () => a.working, 30_000)
  const oldTerm = a.terms[0]!
  const asOldLeader = store.fenced(oldTerm)
  const created = await asOldLeader.create(key, configMap('fenced', { by: 'a' }))
  t.equal(writer(created), 'a', 'the leader writes while its term lasts')
  await t.rejects(asOldLeader.update(key, configMap('fenced', { by: 'a, stale' }), { expectedResourceVersion: '1' }), { code: 'BRAMBLE_STORE_CONFLICT' }, 'a stale resourceVersion under a valid term is still a conflict, not a fencing')

  // The term ends behind the leader's back (as when its lease expires during a pause): the key is
  // deleted directly in etcd, and a second candidate takes it.
  const raw = new Etcd3({ hosts: etcd.endpoints })
  t.teardown(() => raw.close())
  await raw.delete().key(oldTerm.key)
  const b = candidate(etcd.endpoints, prefix, 'hub-b')
  t.teardown(() => Promise.all([a.election.close(), b.election.close()]))
  await until('the second candidate takes the free key', () => b.working, 30_000)

  await t.rejects(asOldLeader.update(key, configMap('fenced', { by: 'a, deposed' })), { code: 'BRAMBLE_STORE_FENCED' }, 'an update fenced by the old term is refused')
  await t.rejects(asOldLeader.create({ ...key, name: 'fenced-2' }, configMap('fenced-2', {})), { code: 'BRAMBLE_STORE_FENCED' }, 'so is a create')
  await t.rejects(asOldLeader.delete(key), { code: 'BRAMBLE_STORE_FENCED' }, 'and a delete')
  t.equal(writer(await store.get(key)), 'a', 'nothing the deposed leader tried reached the store')
  t.equal(await store.get({ ...key, name: 'fenced-2' }), undefined)

  const asNewLeader = store.fenced(b.terms[0]!)
  const updated = await asNewLeader.update(key, configMap('fenced', { by: 'b' }))
  t.equal(writer(updated), 'b', 'the new leader writes')
  await until('the old leader notices and stops its work', () => a.deposals === 1, 15_000)
  t.notOk(a.working)
  t.notOk(a.election.leading)
})

t.test('on LMDB the single hub leads from the start until it closes', async (t) => {
  let working = false
  let given: unknown = 'nothing'
  const election = await soleLeader({
    elected: async (fence) => {
      given = fence
      working = true
    },
    deposed: async () => {
      working = false
    },
  })
  t.equal(given, undefined, 'no fence on a single hub')
  t.ok(working, 'its work runs once started')
  t.ok(election.leading)
  await election.close()
  t.notOk(working, 'its work stops when it closes')
  t.notOk(election.leading)
})
