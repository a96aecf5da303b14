// A small tmpfs of its own for disk-full tests (root only): mounted on a fresh temp folder, filled
// to the last few bytes with a filler file, emptied again, unmounted. The folder's name carries
// the caller's prefix, so a leftover mount says whose it is.

import { execFile } from 'node:child_process'
import { mkdtempSync, openSync, closeSync, rmSync, statfsSync, writeSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'

const run = promisify(execFile)

export interface SmallFilesystem {
  /** The mount point. */
  dir: string
  freeBytes(): number
  /** Writes a filler file until at most `leaveBytes` are free (the filesystem may refuse earlier). */
  fill(leaveBytes?: number): void
  /** Removes the filler file: the space is back. */
  empty(): void
  unmount(): Promise<void>
}

/** undefined when a tmpfs can be mounted here, else why not (for `t.plan(0, reason)`). */
export function smallFilesystemUnavailable(): string | undefined {
  return process.getuid?.() === 0 ? undefined : 'disk-full tests mount a small tmpfs: run them as root'
}

export async function mountSmallFilesystem(prefix: string, sizeBytes: number): Promise<SmallFilesystem> {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-smallfs-`))
  await run('mount', ['-t', 'tmpfs', '-o', `size=${sizeBytes},mode=0700`, `${prefix}-smallfs`, dir])
  const filler = join(dir, 'filler')
  const freeBytes = () => {
    const s = statfsSync(dir)
    return s.bavail * s.bsize
  }
  return {
    dir,
    freeBytes,
    fill(leaveBytes = 0) {
      const fd = openSync(filler, 'a')
      const chunk = Buffer.alloc(64 * 1024, 0x66)
      try {
        for (;;) {
          const room = freeBytes() - leaveBytes
          if (room <= 0) break
          writeSync(fd, chunk, 0, Math.min(chunk.length, room))
        }
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err
      } finally {
        closeSync(fd)
      }
    },
    empty() {
      rmSync(filler, { force: true })
    },
    async unmount() {
      await run('umount', ['-l', dir]).catch(() => {})
      rmSync(dir, { recursive: true, force: true })
    },
  }
}
