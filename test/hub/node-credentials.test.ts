import t, { type Test } from 'tap'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CREDENTIALS_FILE, NodeCredentials, mosquittoSha512Hash } from '../../src/hub/node-credentials.js'
import { HUB_USERNAME } from '../../src/hub/broker-acl.js'

async function tempDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-creds-test-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return dir
}

t.test('issuing gives a node its name as username and a random 32-byte password, once', async (t) => {
  const creds = await NodeCredentials.open(await tempDir(t))
  const a = await creds.issue('pi-1')
  t.equal(a.username, 'pi-1')
  t.equal(Buffer.from(a.password, 'base64url').length, 32)
  t.ok(creds.verify('pi-1', a.password))
  t.ok(creds.verify('pi-1', Buffer.from(a.password)))
  const b = await creds.issue('pi-1')
  t.not(b.password, a.password)
  t.notOk(creds.verify('pi-1', a.password), 're-issuing replaces the old password')
  t.ok(creds.verify('pi-1', b.password))
})

t.test('verification refuses wrong passwords, unknown users and missing fields', async (t) => {
  const creds = await NodeCredentials.open(await tempDir(t))
  const { password } = await creds.issue('pi-1')
  t.notOk(creds.verify('pi-1', password + 'x'))
  t.notOk(creds.verify('pi-1', ''))
  t.notOk(creds.verify('pi-2', password))
  t.notOk(creds.verify(undefined, password))
  t.notOk(creds.verify('pi-1', undefined))
  t.notOk(creds.verify(HUB_USERNAME, password))
})

t.test('node names must be DNS-1123 labels', async (t) => {
  const creds = await NodeCredentials.open(await tempDir(t))
  await t.rejects(creds.issue('a/b'), { code: 'BRAMBLE_CREDENTIALS_INVALID_NODE' })
  await t.rejects(creds.issue(HUB_USERNAME), { code: 'BRAMBLE_CREDENTIALS_INVALID_NODE' })
})

t.test('revocation takes effect at once and survives a restart', async (t) => {
  const dir = await tempDir(t)
  const creds = await NodeCredentials.open(dir)
  const { password } = await creds.issue('pi-1')
  const changes: string[] = []
  creds.onChange((c) => changes.push(`${c.kind} ${c.node}`))
  const revoking = creds.revoke('pi-1')
  t.notOk(creds.verify('pi-1', password), 'refused before the file is even written')
  t.equal(await revoking, true)
  t.equal(await creds.revoke('pi-1'), false, 'revoking twice is a no-op')
  t.same(changes, ['revoked pi-1'])
  const reopened = await NodeCredentials.open(dir)
  t.notOk(reopened.verify('pi-1', password))
  t.same(reopened.nodes(), [])
})

t.test('the file keeps only hashes of node passwords, is owner-only, and reloads', async (t) => {
  const dir = await tempDir(t)
  const creds = await NodeCredentials.open(dir)
  const { password } = await creds.issue('pi-1')
  const hub = creds.hubCredentials()
  const text = await readFile(join(dir, CREDENTIALS_FILE), 'utf8')
  t.notOk(text.includes(password), 'no node password in the file')
  t.equal((await stat(join(dir, CREDENTIALS_FILE))).mode & 0o777, 0o600)
  const reopened = await NodeCredentials.open(dir)
  t.ok(reopened.verify('pi-1', password))
  t.same(reopened.hubCredentials(), hub, 'the hub keeps its password across restarts')
  t.ok(reopened.verify(HUB_USERNAME, hub.password))
})

t.test('a corrupt credentials file is refused with a clear error', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, CREDENTIALS_FILE), '{"version": 1, "hub"')
  await t.rejects(NodeCredentials.open(dir), { code: 'BRAMBLE_CREDENTIALS_CORRUPT' })
  await writeFile(join(dir, CREDENTIALS_FILE), '{"version": 2}')
  await t.rejects(NodeCredentials.open(dir), { code: 'BRAMBLE_CREDENTIALS_CORRUPT' })
})

t.test('5000 verifications complete: one hash each, cheap enough for mass reconnects', async (t) => {
  const creds = await NodeCredentials.open(await tempDir(t))
  const issued = await Promise.all(Array.from({ length: 50 }, (_, i) => creds.issue(`node-${i}`)))
  let accepted = 0
  for (let i = 0; i < 5000; i++) {
    const c = issued[i % issued.length]!
    if (creds.verify(c.username, c.password)) accepted++
  }
  t.equal(accepted, 5000)
})

t.test('Mosquitto hashes are salted SHA-512 in the $6$ format', async (t) => {
  const salt = Buffer.alloc(12, 1)
  const h = mosquittoSha512Hash('secret', salt)
  t.match(h, /^\$6\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]{88}$/)
  t.equal(h, mosquittoSha512Hash('secret', salt))
  t.not(mosquittoSha512Hash('secret'), mosquittoSha512Hash('secret'), 'a fresh salt each time')
})

t.test('a deleted node remembers the join token it joined with, across a restart, until it is issued again', async (t) => {
  const dir = await tempDir(t)
  const creds = await NodeCredentials.open(dir)
  await creds.issue('pi-1')
  await creds.issue('pi-2')
  t.equal(creds.retiredWith('pi-1'), undefined, 'a live node is not retired')
  t.ok(await creds.revoke('pi-1', 'abc123'))
  t.ok(await creds.revoke('pi-2'))
  t.equal(creds.retiredWith('pi-1'), 'abc123')
  t.equal(creds.retiredWith('pi-2'), undefined, 'no token given, nothing to refuse')
  const reopened = await NodeCredentials.open(dir)
  t.equal(reopened.retiredWith('pi-1'), 'abc123', 'kept across a restart')
  await reopened.issue('pi-1')
  t.equal(reopened.retiredWith('pi-1'), undefined, 'joining again (with another token) clears it')
  t.equal((await NodeCredentials.open(dir)).retiredWith('pi-1'), undefined)
})

t.test('500 nodes issued at once are each durable when their issue resolves: a reopen knows every one', async (t) => {
  const dir = await tempDir(t)
  const creds = await NodeCredentials.open(dir)
  const names = Array.from({ length: 500 }, (_, i) => `node-${i}`)
  const issued = await Promise.all(names.map((name) => creds.issue(name)))
  const reopened = await NodeCredentials.open(dir)
  t.same(reopened.nodes(), [...names].sort(), 'every node is in the file')
  t.ok(issued.every((c) => reopened.verify(c.username, c.password)), 'with the password each was given')
  const stored = JSON.parse(await readFile(join(dir, CREDENTIALS_FILE), 'utf8'))
  t.equal(Object.keys(stored.nodes).length, 500)
})
