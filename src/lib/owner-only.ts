// Data-dir files are the owner's alone (issue 6): keys, tokens and the databases that hold Secrets.
// LMDB creates its directory and files with the process umask (0755/0644 by default) and takes
// no mode, so the directory is made owner-only before the environment opens and its files are
// narrowed right after.

import { chmodSync, existsSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'

/** Makes `dir` (and missing parents) with mode 0700, and narrows it to 0700 if it already exists. */
export function ensureOwnerOnlyDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  chmodSync(dir, 0o700)
}

/** Narrows every file directly in `dir` to 0600 (an LMDB environment's data.mdb and lock.mdb). */
export function restrictFilesIn(dir: string): void {
  if (!existsSync(dir)) return
  for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isFile()) chmodSync(join(dir, entry.name), 0o600)
}
