// Per-node MQTT credentials. A node's username is its node name; its password is 32 random bytes
// (base64url) handed out once at join. The hub keeps a SHA-256 of it, not the password: with a
// secret that random, one hash is as strong as a slow KDF, and it keeps a thousand nodes
// reconnecting after a hub restart from costing minutes of CPU. Verification reads an in-memory
// map (loaded once) and compares in constant time; revoking deletes the entry at once.
//
// The hub's own broker user keeps its password in the file in clear: the hub must present it to
// the broker. The file is owner-only and written atomically.
//
// Hubs sharing an etcd store keep the same entries as records in the store instead
// (shared-node-credentials.ts): NodeCredentials then saves each change there and takes in the
// changes other hubs make, so every hub (and the Mosquitto files each renders) knows every node.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdir, open, readFile, rename } from 'node:fs/promises'
import { join } from 'node:path'
import { isValidNodeName } from '../api/protocol.js'
import { coalescedTask } from '../lib/coalesced-task.js'
import { HUB_USERNAME } from './broker-acl.js'

export const CREDENTIALS_FILE = 'mqtt-credentials.json'
const PASSWORD_BYTES = 32

export interface MqttCredentials {
  username: string
  password: string
}

export interface PasswordEntry {
  username: string
  /** Mosquitto 2.0 password-file hash (`$6$` salted SHA-512), for an external broker. */
  mosquittoHash: string
}

export interface StoredNode {
  sha256: string
  mosquittoHash: string
  issuedAt: string
}

export interface StoredFile {
  version: 1
  /** The hub's own broker password, in clear: the hub presents it to the broker. */
  hub: { password: string }
  nodes: Record<string, StoredNode>
  /**
   * Deleted nodes and the join token each last joined with: that token may not bring the name
   * back (a stolen node that was deleted must not re-join itself); a new token may.
   */
  retired?: Record<string, RetiredNode>
}

export interface RetiredNode {
  joinTokenId: string
  revokedAt: string
}

export class CredentialsError extends Error {
  readonly code: 'BRAMBLE_CREDENTIALS_INVALID_NODE' | 'BRAMBLE_CREDENTIALS_CORRUPT'
  constructor(code: CredentialsError['code'], message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

function sha256(secret: string | Buffer): Buffer {
  return createHash('sha256').update(secret).digest()
}

/** Mosquitto's `$6$` format: base64(salt), then base64(SHA-512(password ‖ salt)). */
export function mosquittoSha512Hash(password: string, salt: Buffer = randomBytes(12)): string {
  const hash = createHash('sha512').update(password).update(salt).digest()
  return `$6$${salt.toString('base64')}$${hash.toString('base64')}`
}

type ChangeListener = (change: { kind: 'issued' | 'revoked'; node: string }) => void

/** Saves what changed about one node (its entry, or its retirement) wherever the entries live. */
export type SaveNode = (node: string) => Promise<void>

export class NodeCredentials {
  private readonly hashes = new Map<string, Buffer>()
  private readonly listeners = new Set<ChangeListener>()

  private constructor(private readonly file: StoredFile, private readonly save: SaveNode) {
    for (const [node, entry] of Object.entries(file.nodes)) this.hashes.set(node, Buffer.from(entry.sha256, 'base64url'))
  }

  /** Loads `dir/mqtt-credentials.json`, creating it (and the hub's password) on first start. */
  static async open(dir: string): Promise<NodeCredentials> {
    await mkdir(dir, { recursive: true, mode: 0o700 })
    const path = join(dir, CREDENTIALS_FILE)
    const file = (await readCredentialsFile(dir)) ?? newNodeCredentialsFile()
    // The file is written whole; writes are coalesced (coalesced-task.ts): a change made while one
    // is in flight goes out with the next, so a thousand nodes joining at once cost a few writes,
    // not a thousand rewrites of a growing file each behind the other's fsync.
    const persist = coalescedTask(() => writeFileAtomic(path, JSON.stringify(file, null, 2) + '\n'))
    const creds = new NodeCredentials(file, persist)
    await persist()
    return creds
  }

  /** Entries kept elsewhere (a shared store): `save` is called after each change of a node. */
  static withStorage(file: StoredFile, save: SaveNode): NodeCredentials {
    return new NodeCredentials(file, save)
  }

  /** A node's stored entry, or its retirement, as `save` writes it. */
  entryOf(node: string): { entry?: StoredNode; retired?: RetiredNode } {
    return { entry: this.file.nodes[node], retired: this.file.retired?.[node] }
  }

  /**
   * Takes in a change another hub made to a node (a shared store's record): its new entry, its
   * retirement, or neither (gone). Listeners hear of it as of a change made here.
   */
  applyStored(node: string, entry: StoredNode | undefined, retired: RetiredNode | undefined): void {
    if (retired) this.file.retired = { ...this.file.retired, [node]: retired }
    else delete this.file.retired?.[node]
    const before = this.file.nodes[node]
    if (entry) {
      if (before?.sha256 === entry.sha256) return
      this.file.nodes[node] = entry
      this.hashes.set(node, Buffer.from(entry.sha256, 'base64url'))
      this.emit({ kind: 'issued', node })
    } else if (before) {
      delete this.file.nodes[node]
      this.hashes.delete(node)
      this.emit({ kind: 'revoked', node })
    }
  }

  hubCredentials(): MqttCredentials {
    return { username: HUB_USERNAME, password: this.file.hub.password }
  }

  /** Issues (or re-issues, replacing the old one) a node's password; the only time it is seen. */
  async issue(node: string): Promise<MqttCredentials> {
    if (!isValidNodeName(node)) throw new CredentialsError('BRAMBLE_CREDENTIALS_INVALID_NODE', `node name "${node}" is not a DNS-1123 label`)
    const password = newPassword()
    const digest = sha256(password)
    this.file.nodes[node] = { sha256: digest.toString('base64url'), mosquittoHash: mosquittoSha512Hash(password), issuedAt: new Date().toISOString() }
    delete this.file.retired?.[node]
    this.hashes.set(node, digest)
    await this.save(node)
    this.emit({ kind: 'issued', node })
    return { username: node, password }
  }

  /**
   * Revokes a node's credentials: from this call on, verify() refuses them. With the id of the
   * join token the node last joined with, that token may not re-join the name (retiredWith).
   */
  async revoke(node: string, joinTokenId?: string): Promise<boolean> {
    if (!this.hashes.delete(node)) return false
    delete this.file.nodes[node]
    if (joinTokenId) this.file.retired = { ...this.file.retired, [node]: { joinTokenId, revokedAt: new Date().toISOString() } }
    this.emit({ kind: 'revoked', node })
    await this.save(node)
    return true
  }

  /** The join token a deleted node last joined with, which may not bring it back. */
  retiredWith(node: string): string | undefined {
    return this.file.retired?.[node]?.joinTokenId
  }

  has(node: string): boolean {
    return this.hashes.has(node)
  }

  nodes(): string[] {
    return [...this.hashes.keys()].sort()
  }

  /** Checks a username and password: one SHA-256 and a constant-time compare. */
  verify(username: string | undefined, password: string | Buffer | undefined): boolean {
    if (username === undefined || password === undefined) return false
    const given = sha256(password)
    if (username === HUB_USERNAME) return timingSafeEqual(given, sha256(this.file.hub.password))
    const expected = this.hashes.get(username)
    return expected !== undefined && timingSafeEqual(given, expected)
  }

  /** Every user with its Mosquitto password hash (hub first), for an external broker. */
  passwordEntries(): PasswordEntry[] {
    const hub = { username: HUB_USERNAME, mosquittoHash: mosquittoSha512Hash(this.file.hub.password) }
    return [hub, ...this.nodes().map((node) => ({ username: node, mosquittoHash: this.file.nodes[node]!.mosquittoHash }))]
  }

  onChange(cb: ChangeListener): () => void {
    this.listeners.add(cb)
    return () => this.listeners.delete(cb)
  }

  private emit(change: Parameters<ChangeListener>[0]): void {
    for (const cb of [...this.listeners]) cb(change)
  }
}

export function newPassword(): string {
  return randomBytes(PASSWORD_BYTES).toString('base64url')
}

/** `dir/mqtt-credentials.json` as stored, or undefined when there is none. */
export async function readCredentialsFile(dir: string): Promise<StoredFile | undefined> {
  const path = join(dir, CREDENTIALS_FILE)
  try {
    return parseFile(await readFile(path, 'utf8'), path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export function newNodeCredentialsFile(): StoredFile {
  return { version: 1, hub: { password: newPassword() }, nodes: {} }
}

function parseFile(text: string, path: string): StoredFile {
  let value: any
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw new CredentialsError('BRAMBLE_CREDENTIALS_CORRUPT', `${path} is not valid JSON; restore it from a backup or re-join the nodes`, { cause: err })
  }
  const ok =
    value?.version === 1 &&
    typeof value.hub?.password === 'string' &&
    typeof value.nodes === 'object' &&
    value.nodes !== null &&
    Object.entries(value.nodes).every(([node, e]: [string, any]) => isValidNodeName(node) && typeof e?.sha256 === 'string' && typeof e?.mosquittoHash === 'string') &&
    (value.retired === undefined || (typeof value.retired === 'object' && value.retired !== null && Object.values(value.retired).every((r: any) => typeof r?.joinTokenId === 'string')))
  if (!ok) throw new CredentialsError('BRAMBLE_CREDENTIALS_CORRUPT', `${path} does not hold Bramble MQTT credentials (version 1); restore it from a backup`)
  return value as StoredFile
}

export async function writeFileAtomic(path: string, content: string, mode = 0o600): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`
  const fh = await open(tmp, 'w', mode)
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  const dir = await open(join(path, '..'), 'r')
  try {
    await dir.sync()
  } finally {
    await dir.close()
  }
}
