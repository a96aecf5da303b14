// `--store`: LMDB by default, an etcd cluster by URL; a bad URL is refused naming the flag and the part.

import t from 'tap'
import { resolveHubConfig } from '../../src/lib/config.js'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseStoreUrl, resolveMigrateStoreFlags, storeUrl } from '../../src/lib/store-url.js'

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
  refused('http://10.0.0.5:2379', /^--store must be etcd:\/\/HOST\[:PORT\].* \(etcds:\/\/ for TLS\) or lmdb, got "http:\/\/10\.0\.0\.5:2379"/)
  refused('etcd://', /^--store must name at least one etcd member/)
  refused('etcd://10.0.0.5:99999', /^--store has a member port 99999 outside 1-65535/)
  refused('etcd://10.0.0.5:2379,', /^--store has a member "" that is not HOST\[:PORT\]/)
  refused('etcd://bad_host!:2379', /^--store has a member host "bad_host!" that is neither an IP address nor a DNS name/)
  refused('etcd://10.0.0.5/a//b', /^--store has a key prefix "\/a\/\/b" that is not a plain path/)
})

t.test('etcds:// speaks TLS; --store-ca/--store-cert/--store-key give its files and are checked', async (t) => {
  t.same(parseStoreUrl('etcds://10.0.0.5,10.0.0.6:32379/site/'), { kind: 'etcd', endpoints: ['https://10.0.0.5:2379', 'https://10.0.0.6:32379'], prefix: '/site/', tls: {} })
  t.equal(storeUrl(parseStoreUrl('etcds://a:1/x/')), 'etcds://a:1/x/', 'a TLS location names itself again')
  const dir = mkdtempSync(join(tmpdir(), 'store-url-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const file = (name: string) => (writeFileSync(join(dir, name), 'pem'), join(dir, name))
  const [ca, cert, key] = [file('ca.crt'), file('client.crt'), file('client.key')]
  t.same(resolveHubConfig({ store: 'etcds://10.0.0.5', storeCa: ca, storeCert: cert, storeKey: key }, ENV).store, {
    kind: 'etcd',
    endpoints: ['https://10.0.0.5:2379'],
    prefix: '/bramble/',
    tls: { ca, cert, key },
  })
  t.same(resolveHubConfig({ store: 'etcds://10.0.0.5', storeCa: ca }, ENV).store, { kind: 'etcd', endpoints: ['https://10.0.0.5:2379'], prefix: '/bramble/', tls: { ca } }, 'the CA alone (etcd without client certificates)')

  const refused = (raw: Record<string, string>, why: RegExp, what: string) => t.throws(() => resolveHubConfig(raw, ENV), { code: 'BRAMBLE_CONFIG_INVALID', message: why }, what)
  refused({ store: 'etcd://10.0.0.5', storeCa: ca }, /^--store-ca is for an etcd cluster that speaks TLS: give --store etcds:\/\//, 'TLS files for a plain store')
  refused({ storeCert: cert, storeKey: key }, /^--store-cert is for an etcd cluster that speaks TLS/, 'TLS files for LMDB')
  refused({ store: 'etcds://10.0.0.5', storeCert: cert }, /^--store-key is required with --store-cert/, 'a certificate without its key')
  refused({ store: 'etcds://10.0.0.5', storeKey: key }, /^--store-cert is required with --store-key/, 'a key without its certificate')
  refused({ store: 'etcds://10.0.0.5', storeCa: join(dir, 'missing.crt') }, /^--store-ca names .*missing\.crt, which does not exist/, 'a missing file')

  t.same(resolveMigrateStoreFlags({ from: dir, to: 'etcds://10.0.0.5/x/', storeCa: ca }, ENV).to, { kind: 'etcd', endpoints: ['https://10.0.0.5:2379'], prefix: '/x/', tls: { ca } })
  t.throws(() => resolveMigrateStoreFlags({ from: dir, to: 'etcd://10.0.0.5/x/', storeCa: ca }, ENV), { message: /^--store-ca is for an etcd cluster that speaks TLS: give --to etcds:\/\// })
})
