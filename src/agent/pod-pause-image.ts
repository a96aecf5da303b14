// The pod sandbox ("pause") image, made on the node itself from the host's static busybox with an
// image import, so a node with no registry in reach can still start pods. Tests build their
// images the same way.

import { spawn, execFile } from 'node:child_process'
import { mkdtemp, mkdir, copyFile, symlink, rm, access, writeFile, chmod } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { ContainerRuntime } from './container-runtime.js'
import { ContainerRuntimeError } from './errors.js'

export const DEFAULT_PAUSE_IMAGE = 'bramble/pause:1'

/** The sandbox's command: sleeps until SIGTERM, then exits at once (PID 1 ignores unhandled TERM). */
export const PAUSE_COMMAND = ['/bin/sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 3600 & wait $!; done']

const BUSYBOX_CANDIDATES = ['/bin/busybox', '/usr/bin/busybox']

/** Imports a busybox-only image as `ref` unless the runtime already has it. */
export async function ensureBusyboxImage(runtime: ContainerRuntime, ref: string, busybox?: string): Promise<void> {
  if (await runtime.imageId(ref)) return
  const dir = await mkdtemp(join(tmpdir(), 'bramble-rootfs-'))
  try {
    await buildBusyboxRootfs(dir, busybox ?? (await findBusybox()))
    const tar = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
    const exited = new Promise<number>((resolve) => tar.on('close', (code) => resolve(code ?? 1)))
    await runtime.importImage(tar.stdout, ref)
    if ((await exited) !== 0) throw new ContainerRuntimeError('pack rootfs for', ref, { cause: new Error('tar failed') })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function findBusybox(): Promise<string> {
  for (const p of BUSYBOX_CANDIDATES) {
    try {
      await access(p)
      return p
    } catch {}
  }
  throw new ContainerRuntimeError('find', 'busybox', {
    cause: new Error('no static busybox on this host (install Debian package busybox-static)'),
  })
}

/** A root filesystem: /bin/busybox and one symlink per applet it lists. */
export async function buildBusyboxRootfs(dir: string, busybox: string): Promise<void> {
  for (const d of ['bin', 'etc', 'tmp', 'proc', 'sys', 'dev', 'var/www', 'root']) await mkdir(join(dir, d), { recursive: true })
  await chmod(join(dir, 'tmp'), 0o1777)
  await copyFile(busybox, join(dir, 'bin/busybox'))
  await chmod(join(dir, 'bin/busybox'), 0o755)
  const { stdout } = await promisify(execFile)(busybox, ['--list'])
  for (const applet of stdout.split('\n').map((s) => s.trim())) {
    if (!applet || applet === 'busybox' || applet.includes('/')) continue
    await symlink('busybox', join(dir, 'bin', applet))
  }
  await writeFile(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n')
  await writeFile(join(dir, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n')
}
