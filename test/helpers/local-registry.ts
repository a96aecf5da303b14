// A private registry on loopback for pull tests: Debian's docker-registry (distribution 2.x) with
// htpasswd auth and storage in a temp dir. Docker treats 127.0.0.0/8 registries as insecure, so
// plain HTTP works. Images are pushed with dockerode and credentials in the request, never with
// `docker login` (that would write the machine's ~/.docker/config.json).

import type Docker from 'dockerode'
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export const REGISTRY_BINARY = '/usr/bin/docker-registry'

export interface LocalRegistry {
  /** `127.0.0.1:PORT` */
  address: string
  username: string
  password: string
  stop(): Promise<void>
}

/** undefined when the registry and htpasswd are installed, else why the test skips. */
export function registryUnavailable(): string | undefined {
  if (!existsSync(REGISTRY_BINARY)) return `${REGISTRY_BINARY} is missing: apt-get install docker-registry`
  try {
    execFileSync('htpasswd', ['-h'], { stdio: 'ignore' })
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return 'htpasswd is missing: apt-get install apache2-utils'
  }
  return undefined
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
    s.on('error', reject)
  })
}

export async function startLocalRegistry(username = 'img-user', password = 'img-pass-1'): Promise<LocalRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'img-registry-'))
  const htpasswd = execFileSync('htpasswd', ['-Bbn', username, password], { encoding: 'utf8' })
  await writeFile(join(dir, 'htpasswd'), htpasswd)
  const port = await freePort()
  const config = [
    'version: 0.1',
    'log: { level: warn }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} }, delete: { enabled: true } }`,
    `http: { addr: "127.0.0.1:${port}" }`,
    `auth: { htpasswd: { realm: img-test, path: ${join(dir, 'htpasswd')} } }`,
    '',
  ].join('\n')
  await writeFile(join(dir, 'config.yml'), config)
  const child: ChildProcess = spawn(REGISTRY_BINARY, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const address = `127.0.0.1:${port}`
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`docker-registry exited (${child.exitCode}): ${stderr}`)
    const answered = await fetch(`http://${address}/v2/`).then((r) => r.status === 401, () => false)
    if (answered) break
    if (Date.now() > deadline) throw new Error(`docker-registry did not answer on ${address}: ${stderr}`)
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    address,
    username,
    password,
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r))
        child.kill('SIGTERM')
        await exited
      }
      await rm(dir, { recursive: true, force: true })
    },
  }
}

/** Tags `source` as `target` (on the registry) and pushes it with the registry's credentials. */
export async function pushImage(docker: Docker, registry: LocalRegistry, source: string, target: string): Promise<void> {
  const colon = target.lastIndexOf(':')
  await docker.getImage(source).tag({ repo: target.slice(0, colon), tag: target.slice(colon + 1) })
  const image: any = docker.getImage(target) // the typings lack push's authconfig option
  const stream: NodeJS.ReadableStream = await image.push({ authconfig: { username: registry.username, password: registry.password, serveraddress: registry.address } })
  await new Promise<void>((resolve, reject) => {
    let failure: string | undefined
    docker.modem.followProgress(
      stream,
      (err: Error | null) => (err || failure ? reject(err ?? new Error(`push of ${target} failed: ${failure}`)) : resolve()),
      (e: any) => {
        if (e?.error) failure = e.error
      },
    )
  })
}
