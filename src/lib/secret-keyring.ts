// The keys that encrypt Secrets at rest (the hub's store, the agent's replica): a key file of
// AES-256-GCM keys, each with an id, one of them the primary that new writes use. Several keys
// coexist only while a rotation re-encrypts; every sealed value names the key that sealed it.
//
// Sealed value: `bramble-aead-v1:<key id>:<base64 of nonce (12 bytes) | ciphertext | tag (16 bytes)>`.
// The associated data binds a ciphertext to where it is stored (the caller's key), so a sealed
// value copied to another key fails to open.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs'
import { writeFileAtomic } from './atomic-file.js'

const PREFIX = 'bramble-aead-v1'
const NONCE_BYTES = 12
const TAG_BYTES = 16
const KEY_BYTES = 32

export class SecretKeyError extends Error {
  override readonly name = 'SecretKeyError'
  constructor(
    readonly code: 'BRAMBLE_SECRET_KEY_FILE' | 'BRAMBLE_SECRET_KEY_UNKNOWN' | 'BRAMBLE_SECRET_DECRYPT',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options)
  }
}

interface KeyFile {
  primary: string
  /** id → base64 of 32 bytes */
  keys: Record<string, string>
}

export class SecretKeyring {
  private constructor(
    readonly path: string,
    private file: KeyFile,
  ) {}

  /** Reads the key file at `path`, making it (mode 0600, one new key) when missing. */
  static openOrCreate(path: string): SecretKeyring {
    if (!existsSync(path)) {
      const id = newKeyId()
      const ring = new SecretKeyring(path, { primary: id, keys: { [id]: randomBytes(KEY_BYTES).toString('base64') } })
      ring.save()
      return ring
    }
    return SecretKeyring.open(path)
  }

  /** Reads an existing key file; a missing or malformed one is a SecretKeyError naming the file. */
  static open(path: string): SecretKeyring {
    let raw: string
    try {
      raw = readFileSync(path, 'utf8')
    } catch (err) {
      throw new SecretKeyError('BRAMBLE_SECRET_KEY_FILE', `cannot read the secrets key file ${path}: ${(err as Error).message}`, { cause: err })
    }
    let file: KeyFile
    try {
      file = JSON.parse(raw) as KeyFile
    } catch (err) {
      throw new SecretKeyError('BRAMBLE_SECRET_KEY_FILE', `the secrets key file ${path} is not valid JSON`, { cause: err })
    }
    const keys = file?.keys
    if (typeof keys !== 'object' || keys === null || typeof file.primary !== 'string' || !(file.primary in keys)) {
      throw new SecretKeyError('BRAMBLE_SECRET_KEY_FILE', `the secrets key file ${path} is malformed: "primary" must name one of "keys"`)
    }
    for (const [id, value] of Object.entries(keys)) {
      if (typeof value !== 'string' || Buffer.from(value, 'base64').length !== KEY_BYTES) {
        throw new SecretKeyError('BRAMBLE_SECRET_KEY_FILE', `the secrets key file ${path} is malformed: keys.${id} must be ${KEY_BYTES} bytes in base64`)
      }
    }
    // Owner-only, whatever a copy or an editor left.
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
    return new SecretKeyring(path, { primary: file.primary, keys: { ...keys } })
  }

  get primaryId(): string {
    return this.file.primary
  }

  get keyIds(): string[] {
    return Object.keys(this.file.keys)
  }

  /** Encrypts `plaintext` with the primary key, bound to `associated` (where it is stored). */
  seal(plaintext: string, associated: string): string {
    const nonce = randomBytes(NONCE_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.key(this.file.primary), nonce)
    cipher.setAAD(Buffer.from(associated, 'utf8'))
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()])
    return `${PREFIX}:${this.file.primary}:${Buffer.concat([nonce, body, cipher.getAuthTag()]).toString('base64')}`
  }

  /** Whether `value` is a sealed value (of any key). */
  static isSealed(value: unknown): value is string {
    return typeof value === 'string' && value.startsWith(`${PREFIX}:`)
  }

  /** The key id a sealed value names. */
  static keyIdOf(sealed: string): string {
    return sealed.split(':')[1] ?? ''
  }

  /** Decrypts a sealed value; `what` names it in errors (`Secret default/db`). */
  unseal(sealed: string, associated: string, what: string): string {
    const [prefix, id, payload] = sealed.split(':')
    if (prefix !== PREFIX || !id || payload === undefined) throw new SecretKeyError('BRAMBLE_SECRET_DECRYPT', `${what} is not a sealed value this version reads`)
    if (!(id in this.file.keys)) {
      throw new SecretKeyError(
        'BRAMBLE_SECRET_KEY_UNKNOWN',
        `${what} was encrypted with key ${id}, which the secrets key file ${this.path} does not hold (keys: ${this.keyIds.join(', ')}); restore the key file that belongs to this data dir`,
      )
    }
    const bytes = Buffer.from(payload, 'base64')
    if (bytes.length < NONCE_BYTES + TAG_BYTES) throw new SecretKeyError('BRAMBLE_SECRET_DECRYPT', `${what} is truncated`)
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key(id), bytes.subarray(0, NONCE_BYTES))
      decipher.setAAD(Buffer.from(associated, 'utf8'))
      decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES))
      return Buffer.concat([decipher.update(bytes.subarray(NONCE_BYTES, bytes.length - TAG_BYTES)), decipher.final()]).toString('utf8')
    } catch (err) {
      throw new SecretKeyError('BRAMBLE_SECRET_DECRYPT', `${what} does not decrypt with key ${id} of ${this.path}: the key is wrong or the data was altered or moved`, { cause: err })
    }
  }

  /** Adds a new key and makes it the primary; the others stay so existing values still open. Saved at once. */
  addPrimary(): string {
    const id = newKeyId()
    this.file = { primary: id, keys: { ...this.file.keys, [id]: randomBytes(KEY_BYTES).toString('base64') } }
    this.save()
    return id
  }

  /** Forgets every key but the primary (once nothing is sealed with them). Saved at once. */
  dropAllButPrimary(): string[] {
    const dropped = this.keyIds.filter((id) => id !== this.file.primary)
    this.file = { primary: this.file.primary, keys: { [this.file.primary]: this.file.keys[this.file.primary]! } }
    this.save()
    return dropped
  }

  private key(id: string): Buffer {
    return Buffer.from(this.file.keys[id]!, 'base64')
  }

  private save(): void {
    writeFileAtomic(this.path, `${JSON.stringify(this.file, null, 2)}\n`, 0o600)
  }
}

function newKeyId(): string {
  return randomBytes(4).toString('hex')
}
