// Runs a command in a running container through `docker exec` and returns what it printed: a
// volume's content as the pod reads it (not as the host wrote it), or a lookup as the pod makes it.

import type Docker from 'dockerode'

/** What `cmd` printed in the container (stdout and stderr, through a TTY: no stream framing), trimmed. */
export async function runInContainer(docker: Docker, id: string, cmd: string[]): Promise<string> {
  const exec = await docker.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, Tty: true })
  const stream = await exec.start({ Tty: true })
  return new Promise((resolve, reject) => {
    let out = ''
    stream.on('data', (d: Buffer) => (out += d.toString('utf8')))
    stream.on('end', () => resolve(out.trim()))
    stream.on('error', reject)
  })
}

export function readInContainer(docker: Docker, id: string, path: string): Promise<string> {
  return runInContainer(docker, id, ['cat', path])
}
