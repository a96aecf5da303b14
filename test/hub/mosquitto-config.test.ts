import t from 'tap'
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { HUB_USERNAME } from '../../src/hub/broker-acl.js'
import { mosquittoAclFile, mosquittoListenerConfig, mosquittoPasswordFile, writeMosquittoAuthFiles } from '../../src/hub/mosquitto-config.js'

t.test('the ACL file grants each node (%u) its own up/ to write, its own down/ and the cluster to read', async (t) => {
  const acl = mosquittoAclFile()
  t.match(acl, /^pattern write bramble\/v1\/nodes\/%u\/up\/#$/m)
  t.match(acl, /^pattern read bramble\/v1\/nodes\/%u\/down\/#$/m)
  t.match(acl, /^pattern read bramble\/v1\/cluster\/#$/m)
  t.match(acl, new RegExp(`^user ${HUB_USERNAME.replace('.', '\\.')}\\ntopic readwrite #$`, 'm'))
})

t.test('the password file has one user:hash line per user, hub first', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-mosq-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const creds = await NodeCredentials.open(dir)
  await creds.issue('pi-2')
  await creds.issue('pi-1')
  const lines = mosquittoPasswordFile(creds.passwordEntries()).trimEnd().split('\n')
  t.same(lines.map((l) => l.split(':')[0]), [HUB_USERNAME, 'pi-1', 'pi-2'])
  for (const l of lines) t.match(l, /^[^:]+:\$6\$[^$]+\$[^$]+$/)
  t.throws(() => mosquittoPasswordFile([{ username: 'a:b', mosquittoHash: '$6$x$y' }]), TypeError)

  const { passwordFile, aclFile } = await writeMosquittoAuthFiles(dir, creds)
  t.equal((await readFile(passwordFile, 'utf8')).trimEnd().split('\n').length, 3)
  t.equal((await stat(passwordFile)).mode & 0o777, 0o600)
  t.equal(await readFile(aclFile, 'utf8'), mosquittoAclFile())
})

t.test('the listener fragment refuses anonymous clients and names both files', async (t) => {
  const conf = mosquittoListenerConfig({ port: 8883, host: '0.0.0.0', passwordFile: '/d/p', aclFile: '/d/a', tls: { cafile: '/d/ca', certfile: '/d/c', keyfile: '/d/k' } })
  t.match(conf, /^allow_anonymous false$/m)
  t.match(conf, /^password_file \/d\/p$/m)
  t.match(conf, /^acl_file \/d\/a$/m)
  t.match(conf, /^listener 8883 0\.0\.0\.0$/m)
  t.match(conf, /^certfile \/d\/c$/m)
  t.match(conf, /^max_queued_messages 1000000$/m, "the hub's connection may fall far behind without messages dropped")
})
