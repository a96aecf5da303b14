// Reads a file as a running container sees it, through `docker exec cat` (a volume's content as the
// pod reads it, not as the host wrote it).

import type Docker from 'dockerode'

export async function readInContainer(docker: Docker, id: string, path: string): Promise<string> {
  const exec = await docker.getContainer(id).exec({ Cmd: ['cat', path], AttachStdout: true, AttachStderr: true, Tty: true })
  const stream = await exec.start({ Tty: true })
  return new Promise((resolve, reject) => {
    let out = ''
    stream.on('data', (d: Buffer) => (out += d.toString('utf8')))
    stream.on('end', () => resolve(out.trim()))
    stream.on('error', reject)
  })
}
