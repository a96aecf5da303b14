// `--store`: LMDB by default, an etcd cluster by URL; a bad URL is refused naming the flag and the part.

import t from 'tap'
import { resolveHubConfig } from '../../src/lib/config.js'
import { parseStoreUrl, storeUrl } from '../../src/lib/store-url.js'

const ENV = { HOME: '/home/pi' }

t.test('without --store the hub keeps LMDB in its data dir', async (t) => {
  t.same(resolveHubConfig({}, ENV).store, { kind: 'lmdb' })
  t.same(resolveHubConfig({ store: 'lmdb' }, ENV).store, { kind: 'lmdb' })
})

t.test('an etcd URL names every member, with port 2379 and prefix /bramble/ by default', async (t) => {
  t.same(parseStoreUrl('etcd://10.0.0.5:2379'), { kind: 'etcd', endpoints: ['http://10.0.0.5:2379'], prefix: '/bramble/' })
  t.same(parseStoreUrl('etcd://pi-1,pi-2:32379,[fd00::3]/site-a'), {
    kind: 'etcd',
    endpoints: ['http://pi-1:2379', 'http://pi-2:32379', 'http://[fd00::3]:2379'],
    prefix: '/site-a/',
  })
  t.same(parseStoreUrl('etcd://127.0.0.1:2379/'), { kind: 'etcd', endpoints: ['http://127.0.0.1:2379'], prefix: '/bramble/' })
  t.equal(storeUrl(parseStoreUrl('etcd://a:1,b:2/x/y/')), 'etcd://a:1,b:2/x/y/', 'a location names itself again')
  t.same(resolveHubConfig({ store: 'etcd://10.0.0.5:2379,10.0.0.6:2379' }, ENV).store.kind, 'etcd')
})

t.test('a bad --store is refused, naming the flag and what is wrong', async (t) => {
  const refused = (raw: string, why: RegExp) => t.throws(() => resolveHubConfig({ store: raw }, ENV), { code: 'BRAMBLE_CONFIG_INVALID', message: why }, raw)
  refused('http://10.0.0.5:2379', /^--store must be etcd:\/\/HOST\[:PORT\].* or lmdb, got "http:\/\/10\.0\.0\.5:2379"/)
  refused('etcd://', /^--store must name at least one etcd member/)
  refused('etcd://10.0.0.5:99999', /^--store has a member port 99999 outside 1-65535/)
  refused('etcd://10.0.0.5:2379,', /^--store has a member "" that is not HOST\[:PORT\]/)
  refused('etcd://bad_host!:2379', /^--store has a member host "bad_host!" that is neither an IP address nor a DNS name/)
  refused('etcd://10.0.0.5/a//b', /^--store has a key prefix "\/a\/\/b" that is not a plain path/)
})
