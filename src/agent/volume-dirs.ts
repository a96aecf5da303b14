// The directories of this node's PersistentVolumes, `<agent data dir>/volumes/<pv>`: a pod using a
// claim makes its volume's directory before it starts (pod-container-spec.ts); here the ones whose
// volume the hub no longer sends (deleted: reclaim policy Delete) are removed, with their data.

import { readdir, rm } from 'node:fs/promises'
import { posix } from 'node:path'
import type { KubeObject } from '../api/types.js'

export const VOLUMES_SUBDIR = 'volumes'

/**
 * Removes the directories under `<dataDir>/volumes` that no volume in `volumes` lives in; answers
 * their names. Call only with a replica that has received a desired state (revision above 0).
 */
export async function pruneVolumeDirs(dataDir: string, volumes: KubeObject[]): Promise<string[]> {
  const root = posix.join(dataDir, VOLUMES_SUBDIR)
  const kept = new Set<string>()
  for (const pv of volumes) {
    const path = pv.spec?.hostPath?.path
    if (typeof path !== 'string' || posix.isAbsolute(path)) continue
    const full = posix.join(dataDir, path)
    if (posix.dirname(full) === root) kept.add(posix.basename(full))
  }
  let entries
  try {
    entries = await readdir(root, { withFileTypes: true })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  const removed: string[] = []
  for (const e of entries) {
    if (!e.isDirectory() || kept.has(e.name)) continue
    await rm(posix.join(root, e.name), { recursive: true, force: true })
    removed.push(e.name)
  }
  return removed
}
