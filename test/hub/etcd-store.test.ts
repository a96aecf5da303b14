// The etcd store: the Store contract, unchanged, against a real etcd member started here, plus
// what only etcd has (a prefix shared with others, Secrets sealed on the wire, an unreachable store).

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import { storeContract } from '../contract/store.js'
import { etcdMissing, startEtcd, type EtcdCluster } from '../helpers/etcd.js'

const missing = etcdMissing()
if (missing) {
  t.skip(`etcd store tests: ${missing}`)
} else {
  let etcd: EtcdCluster
  t.before(async () => {
    etcd = await startEtcd()
  })
  t.teardown(() => etcd?.stop())

  // Each store of the contract gets its own etcd member: the contract counts revisions from a
  // store's own writes, and one etcd's revision is shared by every prefix in it.
  storeContract(t, 'etcd', async (options) => {
    const own = await startEtcd()
    const store = await openEtcdStore({ endpoints: own.endpoints, prefix: `/etc-${randomBytes(3).toString('hex')}/`, ...options })
    return {
      store,
      async cleanup() {
        await store.close()
        await own.stop()
      },
    }
  })
}
