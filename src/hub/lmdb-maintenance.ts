// Offline work on the hub's LMDB store (lmdb-store.ts's layout), done while no hub has it open:
// rewriting every stored value of one resource in place (a re-encryption), then a compacting
// copy of the file, because LMDB leaves freed pages as they were: an overwritten value would
// otherwise still sit in data.mdb until its page is reused.

import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { KubeObject } from '../api/types.js'
import { renameDurably } from '../lib/atomic-file.js'
import type { LogEntry } from './lmdb-watchers.js'
import { scopeRange } from './lmdb-store.js'
import type { ObjectKey } from './store.js'

/** Throws when another process has the store at `path` open (a running hub), before anything is changed. */
export async function assertStoreClosedElsewhere(path: string): Promise<void> {
  const env = open({ path, maxDbs: 4 })
  try {
    refuseIfOpenElsewhere(env, path)
  } finally {
    await env.close()
  }
}

/**
 * Rewrites every stored value of one resource, its objects and their change-log entries, in one
 * durable transaction, without a new revision: the objects mean the same. Then replaces the data
 * file with a compacted copy, so no freed page keeps a value as it was. Returns how many values
 * it rewrote.
 */
export async function rewriteStoredResource(path: string, resource: string, rewrite: (key: ObjectKey, stored: KubeObject) => KubeObject): Promise<number> {
  const env = open({ path, overlappingSync: false, noSync: false, noMetaSync: false, maxDbs: 4 })
  const copyDir = `${path}.compacting`
  let count = 0
  try {
    refuseIfOpenElsewhere(env, path)
    const objects = env.openDB<KubeObject, string>({ name: 'objects' })
    const log = env.openDB<LogEntry, number>({ name: 'log' })
    await env.transaction(() => {
      for (const { key: k, value } of objects.getRange(scopeRange({ resource }))) {
        const [, namespace = '', name = ''] = k.split('\0')
        objects.put(k, rewrite({ resource, namespace, name }, value))
        count++
      }
      for (const { key: rev, value } of log.getRange()) {
        if (value.key.resource !== resource) continue
        log.put(rev, { ...value, object: rewrite(value.key, value.object) })
        count++
      }
    })
    await env.flushed
    // A copy left by a run cut short is stale: the store itself is complete either way.
    rmSync(copyDir, { recursive: true, force: true })
    mkdirSync(copyDir, { mode: 0o700 })
    await env.backup(copyDir, true)
  } finally {
    await env.close()
  }
  const copy = join(copyDir, 'data.mdb')
  chmodSync(copy, 0o600)
  renameDurably(copy, join(path, 'data.mdb'))
  rmSync(copyDir, { recursive: true, force: true })
  return count
}

/** A process that has the environment open holds a reader slot (the hub reads on open), so its pid is listed. */
function refuseIfOpenElsewhere(env: RootDatabase, path: string): void {
  env.readerCheck()
  const pids = new Set<number>()
  for (const line of env.readerList().split('\n').slice(1)) {
    const pid = Number(line.trim().split(/\s+/)[0])
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) pids.add(pid)
  }
  if (pids.size > 0) throw new Error(`the store at ${path} is open in another process (pid ${[...pids].join(', ')}); stop the hub first`)
}
