// User and join tokens of hubs that share one store (shared-records.ts says why these are internal
// records): a token made through any hub, or by `bramble token create --store`, admits an agent or
// a user at every hub, and one revoked anywhere is refused everywhere. Records hold hashes only,
// as tokens.json does: join tokens keyed by their id, user tokens by the SHA-256 of the token.
//
// Checks read each hub's cache of the records; a token the cache does not know yet (made through
// another hub a moment ago) is looked up in the store before it is refused.

import { join } from 'node:path'
import { writeFileAtomic } from '../lib/atomic-file.js'
import type { Clock } from '../lib/clock.js'
import type { Authenticator, Role, UserInfo } from './auth.js'
import { StoreConflictError, StoreExistsError } from './errors.js'
import { JOIN_TOKEN_RESOURCE, RecordCache, recordObject, specOf, USER_TOKEN_RESOURCE } from './shared-records.js'
import type { Store } from './store.js'
import {
  checkJoinToken,
  formatJoinToken,
  joinTokenInfo,
  JoinTokenNotFoundError,
  joinTokenPath,
  newJoinTokenRecord,
  newUserToken,
  parseJoinToken,
  READ_ONLY_TOKEN_FILE,
  sha256Hex,
  type BootstrapTokens,
  type HubTokens,
  type JoinTokenInfo,
  type JoinTokenMade,
  type JoinTokenOptions,
  type JoinTokenRecord,
  type JoinTokenVerdict,
  type TokenStore,
  type UserTokenRecord,
} from './tokens.js'

const JOIN_TOKEN_KIND = 'JoinToken'
const USER_TOKEN_KIND = 'UserToken'
/** A revocation retries this often when another hub changed the record in between. */
const MAX_REVOKE_ATTEMPTS = 10

export class SharedTokenStore implements HubTokens {
  /** Join tokens made here whose record is still on its way to the store. */
  private readonly pending = new Map<string, JoinTokenRecord>()

  private constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly joinTokens: RecordCache,
    private readonly users: RecordCache,
  ) {}

  /**
   * Reads the records and follows their changes. With `importFrom` (the data dir's tokens.json),
   * a store that holds no token yet gets that file's tokens: a hub moving onto a shared store, or
   * the first of several, keeps the tokens its users and agents already have.
   */
  static async open(store: Store, clock: Clock, options: { importFrom?: TokenStore } = {}): Promise<SharedTokenStore> {
    const joinTokens = new RecordCache(store, JOIN_TOKEN_RESOURCE, clock)
    const users = new RecordCache(store, USER_TOKEN_RESOURCE, clock)
    await joinTokens.start()
    try {
      await users.start()
    } catch (err) {
      joinTokens.stop()
      throw err
    }
    const shared = new SharedTokenStore(store, clock, joinTokens, users)
    if (options.importFrom && shared.isEmpty()) {
      const { users: userRecords, joinTokens: joinRecords } = options.importFrom.records()
      for (const record of userRecords) await shared.createRecord(users, USER_TOKEN_KIND, record.sha256, record)
      for (const record of joinRecords) await shared.createRecord(joinTokens, JOIN_TOKEN_KIND, record.id, record)
    }
    return shared
  }

  /** Stops following the store (the store itself stays open). */
  close(): void {
    this.joinTokens.stop()
    this.users.stop()
  }

  isEmpty(): boolean {
    return this.joinTokens.list().length === 0 && this.users.list().length === 0 && this.pending.size === 0
  }

  async issueUserToken(name: string, role: Role): Promise<string> {
    const { token, record } = newUserToken(name, role, this.clock.now())
    await this.createRecord(this.users, USER_TOKEN_KIND, record.sha256, record)
    return token
  }

  readonly authenticate: Authenticator = async (bearerToken) => {
    const known = this.userFor(bearerToken)
    if (known) return known
    const fetched = await this.users.fetch(sha256Hex(bearerToken))
    return fetched ? userOf(specOf<UserTokenRecord>(fetched)) : undefined
  }

  /** Records are keyed by the token's hash: a lookup compares no secret byte by byte. */
  userFor(bearerToken: string): UserInfo | undefined {
    const record = this.users.get(sha256Hex(bearerToken))
    return record ? userOf(specOf<UserTokenRecord>(record)) : undefined
  }

  /** The token is usable at this hub at once; at every hub once `saved` resolves. */
  createJoinToken(options: JoinTokenOptions): JoinTokenMade {
    const { record, secret } = newJoinTokenRecord(options, this.clock.now(), (id) => this.joinTokens.get(id) !== undefined || this.pending.has(id))
    this.pending.set(record.id, record)
    const saved = this.createRecord(this.joinTokens, JOIN_TOKEN_KIND, record.id, record).finally(() => this.pending.delete(record.id))
    saved.catch(() => undefined) // a caller that does not wait for it learns of a failure from the next check
    return { token: formatJoinToken(options.caHash, record.id, secret), info: joinTokenInfo(record, this.clock.now()), saved }
  }

  listJoinTokens(): JoinTokenInfo[] {
    const now = this.clock.now()
    const records = [...this.joinTokens.list().map((o) => specOf<JoinTokenRecord>(o)), ...this.pending.values()]
    return records.sort((a, b) => a.createdAt.localeCompare(b.createdAt)).map((r) => joinTokenInfo(r, now))
  }

  /** Marks a join token revoked in the store; it stays listed so its fate can be read. */
  async revokeJoinToken(id: string): Promise<JoinTokenInfo> {
    const key = { resource: JOIN_TOKEN_RESOURCE, namespace: '', name: id }
    for (let attempt = 1; ; attempt++) {
      const current = await this.store.get(key)
      if (!current) throw new JoinTokenNotFoundError(id)
      const record = { ...specOf<JoinTokenRecord>(current), revoked: true }
      try {
        const updated = await this.store.update(key, recordObject(JOIN_TOKEN_KIND, id, record), { expectedResourceVersion: current.metadata.resourceVersion })
        this.joinTokens.put(updated)
        return joinTokenInfo(record, this.clock.now())
      } catch (err) {
        if (!(err instanceof StoreConflictError) || attempt >= MAX_REVOKE_ATTEMPTS) throw err
      }
    }
  }

  verifyJoinToken(token: string, caHash: string): JoinTokenVerdict | Promise<JoinTokenVerdict> {
    const parsed = parseJoinToken(token)
    if (!parsed) return { ok: false, reason: 'malformed' }
    const cached = this.joinTokens.get(parsed.id)
    const known = cached ? specOf<JoinTokenRecord>(cached) : this.pending.get(parsed.id)
    if (known) return checkJoinToken(parsed, known, caHash, this.clock.now())
    return this.joinTokens.fetch(parsed.id).then((fetched) => checkJoinToken(parsed, fetched && specOf<JoinTokenRecord>(fetched), caHash, this.clock.now()))
  }

  /** Creates a record unless one of that name exists (two hubs importing the same file both succeed). */
  private async createRecord(cache: RecordCache, kind: string, name: string, spec: object): Promise<void> {
    try {
      cache.put(await this.store.create({ resource: cache.resource, namespace: '', name }, recordObject(kind, name, spec)))
    } catch (err) {
      if (!(err instanceof StoreExistsError)) throw err
    }
  }
}

function userOf(record: UserTokenRecord): UserInfo {
  return { name: record.name, role: record.role }
}

/**
 * On a shared store nobody has used yet, makes the admin, read-only and join tokens a first start
 * makes, writing the join and read-only tokens into this hub's data dir as tokens.ts does.
 * Returns undefined when the store already holds tokens (another hub started first).
 */
export async function ensureSharedBootstrapTokens(tokens: SharedTokenStore, dataDir: string, caHash: string): Promise<BootstrapTokens | undefined> {
  if (!tokens.isEmpty()) return undefined
  const admin = await tokens.issueUserToken('admin', 'admin')
  const readOnly = await tokens.issueUserToken('read-only', 'read-only')
  const made = tokens.createJoinToken({ caHash, description: 'made at first start' })
  await made.saved
  writeFileAtomic(joinTokenPath(dataDir), made.token + '\n', 0o600)
  writeFileAtomic(join(dataDir, READ_ONLY_TOKEN_FILE), readOnly + '\n', 0o600)
  return { admin, readOnly, join: made.token }
}
