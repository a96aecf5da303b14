// The test image: a root filesystem holding only Debian's static busybox, imported into Docker
// (no registry is reachable in tests). Idempotent: an existing tag is reused.

import type Docker from 'dockerode'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { ensureBusyboxImage as ensureImage } from '../../src/agent/pod-pause-image.js'

export const BUSYBOX_IMAGE = 'bramble-test/busybox:1'

export async function ensureBusyboxImage(docker: Docker, tag = BUSYBOX_IMAGE): Promise<string> {
  await ensureImage(new DockerRuntime(docker), tag)
  return tag
}
