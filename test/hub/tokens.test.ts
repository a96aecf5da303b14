// User and join tokens: hashed at rest, checked in constant time, join tokens bound to the CA,
// with expiry and revocation.

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import {
  DEFAULT_JOIN_TOKEN_TTL_MS,
  ensureBootstrapTokens,
  JoinTokenNotFoundError,
  JOIN_TOKEN_FILE,
  parseJoinToken,
  READ_ONLY_TOKEN_FILE,
  TokenStore,
  TOKENS_FILE,
} from '../../src/hub/tokens.js'
import type { Clock } from '../../src/lib/clock.js'
import { writeFileSync } from 'node:fs'

const CA = 'a'.repeat(64)
const OTHER_CA = 'b'.repeat(64)

function fakeClock(startMs = Date.parse('2025-01-01T00:00:00Z')): Clock & { advance(ms: number): void } {
  let now = startMs
  return {
    now: () => now,
    monotonic: () => now,
    setTimeout: () => {
      throw new Error('fake clock: setTimeout not implemented')
    },
    advance: (ms) => (now += ms),
  }
}

function tempDir(t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-tokens-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('a first start makes an admin, a read-only and a join token; a later start makes none', async (t) => {
  const dir = tempDir(t)
  const clock = fakeClock()
  const first = ensureBootstrapTokens(TokenStore.open(dir, clock), CA)
  t.ok(first)
  t.match(first!.admin, /^[A-Za-z0-9_-]{43}$/, '32 random bytes, base64url')
  t.not(first!.admin, first!.readOnly)
  t.equal(readFileSync(join(dir, JOIN_TOKEN_FILE), 'utf8').trim(), first!.join)
  t.equal(readFileSync(join(dir, READ_ONLY_TOKEN_FILE), 'utf8').trim(), first!.readOnly)
  for (const f of [TOKENS_FILE, JOIN_TOKEN_FILE, READ_ONLY_TOKEN_FILE]) t.equal(statSync(join(dir, f)).mode & 0o777, 0o600, `${f} is owner-only`)

  const again = ensureBootstrapTokens(TokenStore.open(dir, clock), CA)
  t.equal(again, undefined)
})

t.test('tokens.json holds hashes, never a plaintext', async (t) => {
  const dir = tempDir(t)
  const tokens = ensureBootstrapTokens(TokenStore.open(dir, fakeClock()), CA)!
  const onDisk = readFileSync(join(dir, TOKENS_FILE), 'utf8')
  const secret = parseJoinToken(tokens.join)!.secret
  for (const plain of [tokens.admin, tokens.readOnly, secret]) t.notOk(onDisk.includes(plain), 'plaintext absent')
  t.match(onDisk, /"sha256": "[0-9a-f]{64}"/)
})

t.test('authenticate knows each user token by its role and nothing else', async (t) => {
  const dir = tempDir(t)
  const store = TokenStore.open(dir, fakeClock())
  const tokens = ensureBootstrapTokens(store, CA)!
  t.same(await store.authenticate(tokens.admin), { name: 'admin', role: 'admin' })
  t.same(await store.authenticate(tokens.readOnly), { name: 'read-only', role: 'read-only' })
  t.equal(await store.authenticate('not-a-token'), undefined)
  t.equal(await store.authenticate(''), undefined)
  t.equal(await store.authenticate(tokens.join), undefined, 'a join token is no API credential')

  const reopened = TokenStore.open(dir, fakeClock())
  t.same(await reopened.authenticate(tokens.admin), { name: 'admin', role: 'admin' }, 'survives a restart')
})

t.test('a token issued by another process is seen without a restart', async (t) => {
  const dir = tempDir(t)
  const hub = TokenStore.open(dir, fakeClock())
  ensureBootstrapTokens(hub, CA)
  const cli = TokenStore.open(dir, fakeClock())
  const viewer = cli.issueUserToken('viewer', 'read-only')
  t.same(await hub.authenticate(viewer), { name: 'viewer', role: 'read-only' })
})

t.test('join tokens have the k3s shape and carry the CA hash', async (t) => {
  const store = TokenStore.open(tempDir(t), fakeClock())
  const { token, info } = store.createJoinToken({ caHash: CA })
  t.match(token, /^K10a{64}::[a-z0-9]{6}\.[a-z0-9]{16}$/)
  t.same(parseJoinToken(token), { caHash: CA, id: info.id, secret: token.split('.')[1] })
  t.equal(parseJoinToken('K10zz::abc.def'), undefined)
})

t.test('a fresh join token verifies; the short form without the CA hash does too', async (t) => {
  const store = TokenStore.open(tempDir(t), fakeClock())
  const { token, info } = store.createJoinToken({ caHash: CA })
  t.same(store.verifyJoinToken(token, CA), { ok: true, id: info.id })
  t.same(store.verifyJoinToken(token.split('::')[1], CA), { ok: true, id: info.id })
})

t.test('join token rejections name their reason', async (t) => {
  const clock = fakeClock()
  const store = TokenStore.open(tempDir(t), clock)
  const { token, info } = store.createJoinToken({ caHash: CA, ttlMs: 60_000 })
  const [, id] = /::(\w+)\./.exec(token)!

  t.same(store.verifyJoinToken('hello', CA), { ok: false, reason: 'malformed' })
  t.same(store.verifyJoinToken(`K10${CA}::zzzzzz.0123456789abcdef`, CA), { ok: false, reason: 'unknown' })
  t.same(store.verifyJoinToken(`K10${CA}::${id}.0123456789abcdef`, CA), { ok: false, reason: 'unknown' }, 'a wrong secret is unknown')
  t.same(store.verifyJoinToken(token, OTHER_CA), { ok: false, reason: 'ca-mismatch' }, 'made for another hub')

  clock.advance(59_999)
  t.same(store.verifyJoinToken(token, CA), { ok: true, id: info.id }, 'valid until its expiry')
  clock.advance(1)
  t.same(store.verifyJoinToken(token, CA), { ok: false, reason: 'expired' })
})

t.test('a revoked join token is refused and listed as revoked', async (t) => {
  const store = TokenStore.open(tempDir(t), fakeClock())
  const { token, info } = store.createJoinToken({ caHash: CA })
  const other = store.createJoinToken({ caHash: CA })
  store.revokeJoinToken(info.id)
  t.same(store.verifyJoinToken(token, CA), { ok: false, reason: 'revoked' })
  t.same(store.verifyJoinToken(other.token, CA), { ok: true, id: other.info.id }, 'others stay valid')
  const listed = store.listJoinTokens().find((i) => i.id === info.id)!
  t.equal(listed.revoked, true)
  t.throws(() => store.revokeJoinToken('nosuch'), { code: new JoinTokenNotFoundError('x').code, id: 'nosuch' })
})

t.test('join tokens default to 24 hours and list without secrets', async (t) => {
  const clock = fakeClock()
  const store = TokenStore.open(tempDir(t), clock)
  const { token, info } = store.createJoinToken({ caHash: CA, description: 'for pi-3' })
  t.equal(Date.parse(info.expiresAt) - clock.now(), DEFAULT_JOIN_TOKEN_TTL_MS)
  const list = store.listJoinTokens()
  t.same(list, [{ id: info.id, createdAt: info.createdAt, expiresAt: info.expiresAt, revoked: false, expired: false, description: 'for pi-3' }])
  t.notOk(JSON.stringify(list).includes(token.split('.')[1]))
  clock.advance(DEFAULT_JOIN_TOKEN_TTL_MS)
  t.equal(store.listJoinTokens()[0].expired, true)
})

t.test('a corrupt tokens.json is reported with its path, not replaced', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, TOKENS_FILE), '{ not json')
  t.throws(() => TokenStore.open(dir, fakeClock()), { code: 'BRAMBLE_TOKENS_UNREADABLE', path: join(dir, TOKENS_FILE) })
  t.equal(readFileSync(join(dir, TOKENS_FILE), 'utf8'), '{ not json')
})

t.test('changes made at the same instant by several processes are all kept (a lock around read-change-write)', async (t) => {
  const dir = tempDir(t)
  const source = new URL('../../src/hub/tokens.ts', import.meta.url).href
  const clockSource = new URL('../../src/lib/clock.ts', import.meta.url).href
  const PROCESSES = 6
  const EACH = 5
  const code = `
    const { TokenStore } = await import(${JSON.stringify(source)})
    const { systemClock } = await import(${JSON.stringify(clockSource)})
    const store = TokenStore.open(${JSON.stringify(dir)}, systemClock)
    for (let i = 0; i < ${EACH}; i++) store.createJoinToken({ caHash: 'a'.repeat(64), description: 'p' + process.pid + '-' + i })
  `
  const { spawn } = await import('node:child_process')
  const runs = Array.from({ length: PROCESSES }, () =>
    new Promise<number>((resolve) => {
      const child = spawn(process.execPath, [...process.execArgv, '--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'inherit'] })
      child.on('exit', (c) => resolve(c ?? 1))
    }),
  )
  t.same(await Promise.all(runs), Array(PROCESSES).fill(0), 'every writer finished')
  const store = TokenStore.open(dir, fakeClock())
  t.equal(store.listJoinTokens().length, PROCESSES * EACH, 'no token was lost')
  t.equal(new Set(store.listJoinTokens().map((i) => i.id)).size, PROCESSES * EACH, 'ids are distinct')
})

t.test('a lock left by a dead process is taken over once stale; a live one makes a change wait', async (t) => {
  const dir = tempDir(t)
  const store = TokenStore.open(dir, fakeClock())
  const lock = join(dir, `${TOKENS_FILE}.lock`)
  writeFileSync(lock, '')
  const { utimesSync } = await import('node:fs')
  const old = new Date(Date.now() - 60_000)
  utimesSync(lock, old, old)
  store.createJoinToken({ caHash: 'a'.repeat(64) })
  t.equal(store.listJoinTokens().length, 1, 'the stale lock did not block the change')
  t.throws(() => statSync(lock), { code: 'ENOENT' }, 'the lock is released after the change')
})
