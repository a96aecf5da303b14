// A busybox image no engine has seen: the busybox root filesystem plus a random file, imported as
// one layer of its own, so a pull or a load really moves its bytes (a layer the engine already
// holds would be skipped).

import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { buildBusyboxRootfs } from '../../src/agent/pod-pause-image.js'

/** Imports the image as `ref` into `docker`; `randomBytes` sizes the random file (default 2 MB). */
export async function importUniqueImage(docker: Docker, ref: string, randomSize = 2_000_000): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'img-rootfs-'))
  try {
    await buildBusyboxRootfs(dir, '/bin/busybox')
    await writeFile(join(dir, 'unique.bin'), randomBytes(randomSize))
    const tar = spawn('tar', ['-C', dir, '-cf', '-', '.'], { stdio: ['ignore', 'pipe', 'inherit'] })
    await new DockerRuntime(docker).importImage(tar.stdout, ref)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
