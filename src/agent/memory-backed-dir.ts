// Whether a directory lives in memory (tmpfs), so files written there never reach the SD card:
// the agent checks its secret volumes' directory at start.

import { statfs } from 'node:fs/promises'

/** statfs(2)'s f_type for tmpfs (and ramfs, which Linux also keeps only in memory). */
const TMPFS_MAGIC = 0x01021994
const RAMFS_MAGIC = 0x858458f6

export async function isMemoryBacked(dir: string): Promise<boolean> {
  const { type } = await statfs(dir)
  return type === TMPFS_MAGIC || type === RAMFS_MAGIC
}
