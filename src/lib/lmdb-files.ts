// Offline care of an LMDB environment's files, shared by the hub's store and the agent's replica:
// whether another process has it open, and replacing its data file with a compacted copy. LMDB
// leaves freed pages as they were, so a value just overwritten (plaintext, or what a dropped key
// sealed) stays in data.mdb until its page is reused; a compacted copy holds live pages only.

import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { RootDatabase } from 'lmdb'
import { renameDurably } from './atomic-file.js'

/** Throws when a process other than this one has the environment open (it holds a reader slot once it has read). */
export function refuseIfOpenElsewhere(env: RootDatabase<any, any>, path: string, stopWhat: string): void {
  env.readerCheck()
  const pids = new Set<number>()
  for (const line of env.readerList().split('\n').slice(1)) {
    const pid = Number(line.trim().split(/\s+/)[0])
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) pids.add(pid)
  }
  if (pids.size > 0) throw new Error(`${path} is open in another process (pid ${[...pids].join(', ')}); stop the ${stopWhat} first`)
}

/** Closes `env` (a directory environment at `path`) and puts a compacted copy of its data file in place, durably. */
export async function closeCompacted(env: RootDatabase<any, any>, path: string): Promise<void> {
  const copyDir = `${path}.compacting`
  try {
    // A copy left by a run cut short is stale: the environment itself is complete either way.
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
}
