// hostPath volumes as Kubernetes checks them: what sits at each path on the node (read before
// planning), and the pure check of that against the volume's `type` (Directory, DirectoryOrCreate,
// File, FileOrCreate, Socket, CharDevice, BlockDevice, or "" for no check).

import { stat } from 'node:fs/promises'
import { posix } from 'node:path'

export type HostPathKind = 'missing' | 'directory' | 'file' | 'socket' | 'char' | 'block' | 'other'

/** What the check asks of the node: nothing, a directory or empty file to create, or why the pod cannot start. */
export type HostPathCheck = { ok: true; create?: 'directory' | 'file' } | { ok: false; problem: string }

const WANTED: Record<string, { kind: HostPathKind; what: string }> = {
  Directory: { kind: 'directory', what: 'a directory' },
  DirectoryOrCreate: { kind: 'directory', what: 'a directory' },
  File: { kind: 'file', what: 'a file' },
  FileOrCreate: { kind: 'file', what: 'a file' },
  Socket: { kind: 'socket', what: 'a socket file' },
  CharDevice: { kind: 'char', what: 'a character device' },
  BlockDevice: { kind: 'block', what: 'a block device' },
}

/** `kinds` holds what hostPathKinds found, the parent of a missing FileOrCreate path included. */
export function checkHostPath(hostPath: { path: string; type?: string }, kinds: Readonly<Record<string, HostPathKind>>): HostPathCheck {
  const type = hostPath.type ?? ''
  const path = hostPath.path
  const wanted = WANTED[type]
  if (!wanted) return { ok: true }
  const kind = kinds[path]
  if (kind === undefined) return { ok: true } // not looked at: nothing known to refuse
  if (kind === 'missing') {
    if (type === 'DirectoryOrCreate') return { ok: true, create: 'directory' }
    // As the kubelet: FileOrCreate makes the file, never its parent directories.
    if (type === 'FileOrCreate') {
      const parent = posix.dirname(path)
      return kinds[parent] === 'directory' ? { ok: true, create: 'file' } : { ok: false, problem: `hostPath type check failed: ${path} cannot be created: its directory ${parent} does not exist` }
    }
    return { ok: false, problem: `hostPath type check failed: ${path} does not exist (type ${type} wants ${wanted.what})` }
  }
  if (kind !== wanted.kind) return { ok: false, problem: `hostPath type check failed: ${path} is not ${wanted.what}` }
  return { ok: true }
}

export async function hostPathKind(path: string): Promise<HostPathKind> {
  try {
    const s = await stat(path)
    if (s.isDirectory()) return 'directory'
    if (s.isFile()) return 'file'
    if (s.isSocket()) return 'socket'
    if (s.isCharacterDevice()) return 'char'
    if (s.isBlockDevice()) return 'block'
    return 'other'
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return 'missing'
    throw err
  }
}

/** What is at each hostPath volume's path of a pod spec, and at the parent of each missing one. */
export async function hostPathKinds(podSpec: any): Promise<Record<string, HostPathKind>> {
  const kinds: Record<string, HostPathKind> = {}
  for (const v of podSpec?.volumes ?? []) {
    const path = v?.hostPath?.path
    if (typeof path !== 'string' || !path.startsWith('/') || kinds[path]) continue
    kinds[path] = await hostPathKind(path)
    const parent = posix.dirname(path)
    if (kinds[path] === 'missing' && !kinds[parent]) kinds[parent] = await hostPathKind(parent)
  }
  return kinds
}
