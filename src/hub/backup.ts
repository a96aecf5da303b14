// `GET /bramble/v1/backup`: a consistent copy of a running hub as one gzipped tar, and
// `bramble restore`, which makes a data dir from one for a new hub. The archive holds the store
// (copied through one LMDB read transaction, so it is one revision) and the hub's keys: the
// cluster CA (agents pin it, so they reconnect to the restored hub without joining again), the
// secrets key (without it no stored Secret opens), the tokens and the nodes' MQTT credentials.
// Left out is what a hub makes again on start: its serving certificate (it names the old host),
// the kubeconfig, Mosquitto's generated files, image archives on their way to nodes (`images/`), and
// the replica of an `up` hub's own agent.

import { chmodSync, cpSync, existsSync, mkdtempSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { pipeline } from 'node:stream/promises'
import type { IncomingMessage, ServerResponse } from 'node:http'
import * as tar from 'tar'
import { ensureOwnerOnlyDir } from '../lib/owner-only.js'
import { KUBECONFIG_FILE } from './kubeconfig.js'
import { openLmdbStore } from './lmdb-store.js'
import { PKI_FILES } from './pki.js'
import type { ExtraRoute } from './api-server.js'
import type { Store } from './store.js'

export const BACKUP_PATH = '/bramble/v1/backup'
const STORE_DIR = 'store'
const STAGING_PREFIX = '.backup-'

/** Data-dir entries (relative paths) a backup leaves out: the hub makes them again. */
const NOT_BACKED_UP = new Set([STORE_DIR, PKI_FILES.serverCert, PKI_FILES.serverKey, KUBECONFIG_FILE, 'mosquitto', 'images', join('agent', 'replica')])

/** Files that must be in an archive for it to make a hub. */
const REQUIRED = [join(STORE_DIR, 'data.mdb'), PKI_FILES.caCert, PKI_FILES.caKey, 'secrets.key', 'cluster-id']

export class RestoreError extends Error {
  readonly code = 'BRAMBLE_RESTORE_REFUSED'
}

/** Stages a copy of the data dir (the store through `store.copyTo`) in a fresh directory inside it. */
export async function stageBackup(dataDir: string, store: Store): Promise<{ dir: string; revision: number }> {
  const dir = mkdtempSync(join(dataDir, STAGING_PREFIX))
  try {
    chmodSync(dir, 0o700)
    const revision = await store.copyTo(join(dir, STORE_DIR))
    // Lock files and LMDB's side files are the running hub's, never a backup's.
    const kept = (rel: string) => !NOT_BACKED_UP.has(rel) && !rel.endsWith('lock.mdb') && !rel.endsWith('.lock')
    for (const entry of readdirSync(dataDir)) {
      if (!kept(entry) || entry.startsWith(STAGING_PREFIX) || entry.endsWith('.compacting')) continue
      cpSync(join(dataDir, entry), join(dir, entry), { recursive: true, filter: (source) => kept(relative(dataDir, source)) })
    }
    return { dir, revision }
  } catch (err) {
    rmSync(dir, { recursive: true, force: true })
    throw err
  }
}

/** Admin only (its verb is not a read): the archive holds the CA key and the secrets key. */
export function backupRoute(dataDir: string, store: Store): ExtraRoute {
  return {
    method: 'GET',
    path: BACKUP_PATH,
    public: false,
    verb: 'backup',
    async handle(_req: IncomingMessage, res: ServerResponse) {
      const { dir, revision } = await stageBackup(dataDir, store)
      try {
        res.writeHead(200, {
          'Content-Type': 'application/gzip',
          'Content-Disposition': `attachment; filename="bramble-backup-r${revision}.tar.gz"`,
          'X-Bramble-Revision': String(revision),
        })
        await pipeline(tar.c({ gzip: true, cwd: dir, portable: true }, readdirSync(dir)), res)
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  }
}

/**
 * Makes `dataDir` a hub's data dir from an archive `bramble backup` wrote. Refuses a data dir that
 * already holds a hub, and an archive that lacks what a hub needs; nothing is left half done: the
 * archive is unpacked beside and moved in only once it proved whole and its store opened.
 */
export async function restoreBackup(file: string, dataDir: string): Promise<{ revision: number; nodes: number }> {
  if (!existsSync(file) || !statSync(file).isFile()) throw new RestoreError(`${file} is not a file`)
  ensureOwnerOnlyDir(dataDir)
  const taken = [STORE_DIR, PKI_FILES.caKey, 'secrets.key'].filter((f) => existsSync(join(dataDir, f)))
  if (taken.length > 0) throw new RestoreError(`${dataDir} already holds a hub (${taken.join(', ')}); restore into a new, empty data dir`)
  const staging = mkdtempSync(join(dataDir, STAGING_PREFIX))
  try {
    chmodSync(staging, 0o700)
    try {
      await tar.x({ file, cwd: staging, strict: true, preservePaths: false })
    } catch (err) {
      throw new RestoreError(`${file} is not a Bramble backup (a gzipped tar): ${(err as Error).message}`, { cause: err })
    }
    const missing = REQUIRED.filter((f) => !existsSync(join(staging, f)))
    if (missing.length > 0) throw new RestoreError(`${file} is not a complete Bramble backup: it lacks ${missing.join(', ')}`)
    const store = await openLmdbStore({ path: join(staging, STORE_DIR) })
    let revision: number
    let nodes: number
    try {
      revision = await store.revision()
      nodes = (await store.list({ resource: 'nodes' })).items.length
    } finally {
      await store.close()
    }
    for (const entry of readdirSync(staging)) renameSync(join(staging, entry), join(dataDir, entry))
    return { revision, nodes }
  } finally {
    rmSync(staging, { recursive: true, force: true })
  }
}
