// A failed LMDB commit, made plain, for the hub's store and the agent's replica. lmdb-js rejects a
// failed commit with a generic "Commit failed" error whose `commitError` is a second promise that
// holds the cause; left unhandled, that promise kills the process, so a full disk would become a
// crash loop. The cause alone does not say the disk is full either (LMDB turns a short write into
// EIO): the free space of the environment's filesystem does.

import { statfs } from 'node:fs/promises'

/** Below this many free bytes a failed commit is put down to a full disk. */
export const LOW_SPACE_BYTES = 1024 * 1024

/**
 * Options every read-write environment opens with. lmdb-js's event-turn batching makes a commit
 * promise no caller holds, which rejects unhandled when the commit fails; transaction callbacks
 * queued in one event turn still share one commit without it.
 */
export const LMDB_WRITE_OPTIONS = { eventTurnBatching: false } as const

export interface CommitFailure {
  /** What LMDB said (the commitError's cause when there is one). */
  cause: Error
  /** True when the disk (or the map) is out of room. */
  noSpace: boolean
  /** Free bytes of the filesystem holding `path`, when it could be read. */
  freeBytes?: number
}

/** Handles the lmdb-js commitError of `error`, and says whether the write failed for want of room. */
export async function explainCommitFailure(error: unknown, path: string): Promise<CommitFailure> {
  let cause = error instanceof Error ? error : new Error(String(error))
  const pending = (error as { commitError?: Promise<unknown> } | undefined)?.commitError
  if (pending && typeof pending.then === 'function') {
    // Settled by the time the write's own promise rejects; the timeout only guards a change in lmdb-js.
    const settled = await Promise.race([pending.then(() => undefined, (inner: unknown) => inner), new Promise((resolve) => setTimeout(resolve, 1000, undefined))])
    if (settled instanceof Error) cause = settled
  }
  let freeBytes: number | undefined
  try {
    const fs = await statfs(path)
    freeBytes = fs.bavail * fs.bsize
  } catch {
    freeBytes = undefined
  }
  const code = (cause as { code?: unknown }).code
  const noSpace = code === 'ENOSPC' || code === -30792 || /MDB_MAP_FULL|ENOSPC|No space left/i.test(cause.message) || (freeBytes !== undefined && freeBytes < LOW_SPACE_BYTES)
  return { cause, noSpace, ...(freeBytes !== undefined ? { freeBytes } : {}) }
}
