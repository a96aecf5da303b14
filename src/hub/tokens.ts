// Bearer tokens for API users and join tokens for agents, kept hashed (sha256) in DIR/tokens.json.
// A plaintext leaves this module only once, when the token is made.
//
// Join tokens look like k3s's: `K10<sha256 of the CA's DER>::<id>.<secret>`, so an agent can pin
// the hub's CA on first contact. Another process (`bramble token create`) may write the file while
// the hub runs: reads notice a changed file and reload it.
//
// Hubs sharing an etcd store keep the same records in the store instead (shared-tokens.ts); both
// forms answer to HubTokens, and the record checks below serve both.

import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto'
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/atomic-file.js'
import type { Clock } from '../lib/clock.js'
import type { Authenticator, Role, UserInfo } from './auth.js'
import { HubError } from './errors.js'

export const TOKENS_FILE = 'tokens.json'
export const JOIN_TOKEN_FILE = 'join-token'
export const READ_ONLY_TOKEN_FILE = 'read-only-token'
export const DEFAULT_JOIN_TOKEN_TTL_MS = 24 * 3_600_000

export interface UserTokenRecord {
  name: string
  role: Role
  sha256: string
  createdAt: string
}

export interface JoinTokenRecord {
  id: string
  secretSha256: string
  createdAt: string
  expiresAt: string
  revoked: boolean
  description?: string
}

interface TokensFile {
  version: 1
  users: UserTokenRecord[]
  joinTokens: JoinTokenRecord[]
}

/** A join token as listed: everything but its secret. */
export interface JoinTokenInfo {
  id: string
  createdAt: string
  expiresAt: string
  revoked: boolean
  expired: boolean
  description?: string
}

export type JoinTokenRejection = 'malformed' | 'unknown' | 'expired' | 'revoked' | 'ca-mismatch'

export type JoinTokenVerdict = { ok: true; id: string } | { ok: false; reason: JoinTokenRejection }

export interface JoinTokenOptions {
  caHash: string
  ttlMs?: number
  description?: string
}

export interface JoinTokenMade {
  /** In full: `K10<caHash>::<id>.<secret>`. */
  token: string
  info: JoinTokenInfo
  /** Resolves once the token is durable where every hub reads it (at once for the file). */
  saved: Promise<void>
}

/**
 * What the hub, the join endpoint and `bramble token` need of a token store: the file in a data
 * dir (TokenStore) or the records in a shared store (SharedTokenStore). Reads answer from memory;
 * changes may be asynchronous (the shared store writes to etcd).
 */
export interface HubTokens {
  readonly authenticate: Authenticator
  /** The user a bearer token belongs to, as far as this hub knows now. */
  userFor(bearerToken: string): UserInfo | undefined
  issueUserToken(name: string, role: Role): string | Promise<string>
  createJoinToken(options: JoinTokenOptions): JoinTokenMade
  listJoinTokens(): JoinTokenInfo[]
  revokeJoinToken(id: string): JoinTokenInfo | Promise<JoinTokenInfo>
  verifyJoinToken(token: string, caHash: string): JoinTokenVerdict | Promise<JoinTokenVerdict>
  isEmpty(): boolean
}

export class TokenFileError extends HubError {
  override readonly name = 'TokenFileError'
  readonly code = 'BRAMBLE_TOKENS_UNREADABLE'
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`cannot read the token file ${path}; restore it from a backup or move it away to start with new tokens`, options)
  }
}

export class TokenLockError extends HubError {
  override readonly name = 'TokenLockError'
  readonly code = 'BRAMBLE_TOKENS_LOCKED'
  constructor(readonly path: string, options?: { cause?: unknown }) {
    super(`the token file is locked by ${path} for too long; remove that file if no bramble process is running`, options)
  }
}

export class JoinTokenNotFoundError extends HubError {
  override readonly name = 'JoinTokenNotFoundError'
  readonly code = 'BRAMBLE_JOIN_TOKEN_NOT_FOUND'
  constructor(readonly id: string) {
    super(`no join token with id "${id}"; \`bramble token list\` shows the ids`)
  }
}

const ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789'
const JOIN_TOKEN_PATTERN = /^(?:K10([0-9a-f]{64})::)?([a-z0-9]{6})\.([a-z0-9]{16})$/

export function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex')
}

function randomString(length: number): string {
  let out = ''
  for (let i = 0; i < length; i++) out += ID_ALPHABET[randomInt(ID_ALPHABET.length)]
  return out
}

/** Splits a join token into its parts; undefined when it is not one. caHash is absent in the short form `<id>.<secret>`. */
export function parseJoinToken(token: string): { caHash?: string; id: string; secret: string } | undefined {
  const m = JOIN_TOKEN_PATTERN.exec(token.trim())
  return m ? { caHash: m[1], id: m[2], secret: m[3] } : undefined
}

export function formatJoinToken(caHash: string, id: string, secret: string): string {
  return `K10${caHash}::${id}.${secret}`
}

/** A new bearer token (32 random bytes) and the record that keeps its hash. */
export function newUserToken(name: string, role: Role, nowMs: number): { token: string; record: UserTokenRecord } {
  const token = randomBytes(32).toString('base64url')
  return { token, record: { name, role, sha256: sha256Hex(token), createdAt: new Date(nowMs).toISOString() } }
}

/** A new join token's record and its plaintext secret; `taken` says whether an id is in use. */
export function newJoinTokenRecord(options: JoinTokenOptions, nowMs: number, taken: (id: string) => boolean): { record: JoinTokenRecord; secret: string } {
  let id = randomString(6)
  while (taken(id)) id = randomString(6)
  const secret = randomString(16)
  const record: JoinTokenRecord = {
    id,
    secretSha256: sha256Hex(secret),
    createdAt: new Date(nowMs).toISOString(),
    expiresAt: new Date(nowMs + (options.ttlMs ?? DEFAULT_JOIN_TOKEN_TTL_MS)).toISOString(),
    revoked: false,
    ...(options.description ? { description: options.description } : {}),
  }
  return { record, secret }
}

/** Checks a presented join token against the record of its id (undefined: no such id). */
export function checkJoinToken(parsed: { caHash?: string; id: string; secret: string }, record: JoinTokenRecord | undefined, caHash: string, nowMs: number): JoinTokenVerdict {
  const presented = Buffer.from(sha256Hex(parsed.secret), 'hex')
  if (!record || !timingSafeEqual(Buffer.from(record.secretSha256, 'hex'), presented)) return { ok: false, reason: 'unknown' }
  if (parsed.caHash !== undefined && parsed.caHash !== caHash) return { ok: false, reason: 'ca-mismatch' }
  if (record.revoked) return { ok: false, reason: 'revoked' }
  if (Date.parse(record.expiresAt) <= nowMs) return { ok: false, reason: 'expired' }
  return { ok: true, id: record.id }
}

export function joinTokenInfo(r: JoinTokenRecord, nowMs: number): JoinTokenInfo {
  return {
    id: r.id,
    createdAt: r.createdAt,
    expiresAt: r.expiresAt,
    revoked: r.revoked,
    expired: Date.parse(r.expiresAt) <= nowMs,
    ...(r.description ? { description: r.description } : {}),
  }
}

export class TokenStore implements HubTokens {
  private data: TokensFile
  /** Identity of the file last read: inode, mtime and size (an atomic write changes at least one). */
  private loadedStamp = ''
  private readonly path: string

  private constructor(readonly dataDir: string, private readonly clock: Clock) {
    this.path = join(dataDir, TOKENS_FILE)
    this.data = { version: 1, users: [], joinTokens: [] }
  }

  /** Opens DIR/tokens.json; a missing file is an empty store (written on the first change). */
  static open(dataDir: string, clock: Clock): TokenStore {
    const store = new TokenStore(dataDir, clock)
    store.reloadIfChanged()
    return store
  }

  /** True when no token of any kind exists yet: a first start. */
  isEmpty(): boolean {
    this.reloadIfChanged()
    return this.data.users.length === 0 && this.data.joinTokens.length === 0
  }

  /** Makes a new user token and returns its plaintext (the only time it is seen). */
  issueUserToken(name: string, role: Role): string {
    return this.change(() => {
      const { token, record } = newUserToken(name, role, this.clock.now())
      this.data.users.push(record)
      return token
    })
  }

  /** The user a bearer token belongs to. Compares hashes in constant time against every entry. */
  readonly authenticate: Authenticator = async (bearerToken) => this.userFor(bearerToken)

  userFor(bearerToken: string): UserInfo | undefined {
    this.reloadIfChanged()
    const presented = Buffer.from(sha256Hex(bearerToken), 'hex')
    let found: UserTokenRecord | undefined
    for (const user of this.data.users) {
      const stored = Buffer.from(user.sha256, 'hex')
      if (stored.length === presented.length && timingSafeEqual(stored, presented) && !found) found = user
    }
    return found ? { name: found.name, role: found.role } : undefined
  }

  /** Makes a join token valid for ttlMs and returns it in full (`K10<caHash>::<id>.<secret>`). */
  createJoinToken(options: JoinTokenOptions): JoinTokenMade {
    return this.change(() => {
      const { record, secret } = newJoinTokenRecord(options, this.clock.now(), (id) => this.data.joinTokens.some((r) => r.id === id))
      this.data.joinTokens.push(record)
      return { token: formatJoinToken(options.caHash, record.id, secret), info: this.info(record), saved: Promise.resolve() }
    })
  }

  listJoinTokens(): JoinTokenInfo[] {
    this.reloadIfChanged()
    return this.data.joinTokens.map((r) => this.info(r))
  }

  /** Marks a join token revoked; it stays listed so its fate can be read. */
  revokeJoinToken(id: string): JoinTokenInfo {
    return this.change(() => {
      const record = this.data.joinTokens.find((r) => r.id === id)
      if (!record) throw new JoinTokenNotFoundError(id)
      record.revoked = true
      return this.info(record)
    })
  }

  /** Checks a join token presented by an agent against this hub's CA hash. */
  verifyJoinToken(token: string, caHash: string): JoinTokenVerdict {
    this.reloadIfChanged()
    const parsed = parseJoinToken(token)
    if (!parsed) return { ok: false, reason: 'malformed' }
    return checkJoinToken(parsed, this.data.joinTokens.find((r) => r.id === parsed.id), caHash, this.clock.now())
  }

  /** Every record, for copying the file into a shared store (shared-tokens.ts). */
  records(): { users: UserTokenRecord[]; joinTokens: JoinTokenRecord[] } {
    this.reloadIfChanged()
    return { users: this.data.users.map((u) => ({ ...u })), joinTokens: this.data.joinTokens.map((r) => ({ ...r })) }
  }

  private info(r: JoinTokenRecord): JoinTokenInfo {
    return joinTokenInfo(r, this.clock.now())
  }

  private reloadIfChanged(): void {
    let stamp: string
    try {
      stamp = fileStamp(this.path)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
      throw new TokenFileError(this.path, { cause: err })
    }
    if (stamp === this.loadedStamp) return
    try {
      const parsed = JSON.parse(readFileSync(this.path, 'utf8')) as TokensFile
      if (parsed.version !== 1 || !Array.isArray(parsed.users) || !Array.isArray(parsed.joinTokens)) throw new Error('unexpected layout')
      this.data = parsed
      this.loadedStamp = stamp
    } catch (err) {
      throw new TokenFileError(this.path, { cause: err })
    }
  }

  /**
   * Read, change, write under a lock file: the hub and `bramble token` (another process) both
   * write tokens.json, and without the lock one of two changes made at the same instant is lost.
   * A change that throws writes nothing.
   */
  private change<T>(apply: () => T): T {
    const release = lockFile(`${this.path}.lock`)
    try {
      this.reloadIfChanged()
      const result = apply()
      writeFileAtomic(this.path, JSON.stringify(this.data, null, 2) + '\n', 0o600)
      this.loadedStamp = fileStamp(this.path)
      return result
    } catch (err) {
      this.loadedStamp = '' // the in-memory copy may be half changed: read the file again next time
      throw err
    } finally {
      release()
    }
  }
}

/** A lock older than this was left by a process that died holding it. */
const STALE_LOCK_MS = 10_000
const LOCK_WAIT_MS = 15_000

/** Takes an exclusive lock file (O_EXCL), waiting for a holder; returns its release. */
function lockFile(path: string): () => void {
  const deadline = Date.now() + LOCK_WAIT_MS
  for (;;) {
    try {
      closeSync(openSync(path, 'wx', 0o600))
      return () => rmSync(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new TokenLockError(path, { cause: err })
    }
    try {
      if (Date.now() - statSync(path).mtimeMs > STALE_LOCK_MS) rmSync(path, { force: true })
    } catch {
      // released between the two calls: try again
    }
    if (Date.now() > deadline) throw new TokenLockError(path)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5) // a short synchronous pause
  }
}

function fileStamp(path: string): string {
  const st = statSync(path)
  return `${st.ino}:${st.mtimeMs}:${st.size}`
}

/** Plaintexts made at a first start; each is shown or written once. */
export interface BootstrapTokens {
  admin: string
  readOnly: string
  join: string
}

/**
 * On a first start (no tokens yet) makes an admin token, a read-only token and a join token, and
 * writes the plaintexts of the join and read-only tokens to DIR/join-token and DIR/read-only-token
 * (0600; the admin token goes into the kubeconfig). Returns undefined on later starts.
 */
export function ensureBootstrapTokens(store: TokenStore, caHash: string): BootstrapTokens | undefined {
  if (!store.isEmpty()) return undefined
  const admin = store.issueUserToken('admin', 'admin')
  const readOnly = store.issueUserToken('read-only', 'read-only')
  const { token: joinToken } = store.createJoinToken({ caHash, description: 'made at first start' })
  writeFileAtomic(joinTokenPath(store.dataDir), joinToken + '\n', 0o600)
  writeFileAtomic(join(store.dataDir, READ_ONLY_TOKEN_FILE), readOnly + '\n', 0o600)
  return { admin, readOnly, join: joinToken }
}

export function joinTokenPath(dataDir: string): string {
  return join(dataDir, JOIN_TOKEN_FILE)
}

export function tokensFileExists(dataDir: string): boolean {
  return existsSync(join(dataDir, TOKENS_FILE))
}
