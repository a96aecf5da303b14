// Stops and starts again the dockerd of a network-namespace host (netns-host.ts), as a runtime
// upgrade or a crash and systemd's restart would, for tests of an agent whose engine goes away.
// Only that host's own dockerd is touched, never the machine's shared one.

import { spawn } from 'node:child_process'
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NetnsHost } from './netns-host.js'

/** Stops the host's dockerd with SIGTERM (its containers stop with it); returns its command line, to start it again. */
export async function stopHostDocker(host: NetnsHost): Promise<string[]> {
  const pid = Number(readFileSync(join(host.dir, 'dockerd.pid'), 'utf8'))
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
  if (argv[0] !== 'dockerd' || !argv.includes(join(host.dir, 'docker'))) throw new Error(`pid ${pid} is not the dockerd of ${host.netns}: ${argv.join(' ')}`)
  process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + 60_000
  while (alive(pid)) {
    if (Date.now() > deadline) throw new Error(`dockerd of ${host.netns} (pid ${pid}) did not stop within 60 s`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return argv
}

/** Starts the host's dockerd again with the command line it had; resolves once it answers. */
export async function startHostDocker(host: NetnsHost, argv: string[]): Promise<void> {
  const logFd = openSync(join(host.dir, 'dockerd.log'), 'a')
  const dockerd = spawn('nsenter', host.nsenter(argv), { stdio: ['ignore', 'ignore', logFd] })
  closeSync(logFd)
  const socket = join(host.dir, 'docker.sock')
  const deadline = Date.now() + 60_000
  for (;;) {
    if (dockerd.exitCode !== null) throw new Error(`dockerd of ${host.netns} exited with ${dockerd.exitCode}: ${readFileSync(join(host.dir, 'dockerd.log'), 'utf8').slice(-3000)}`)
    if (existsSync(socket) && (await host.docker.ping().then(() => true, () => false))) return
    if (Date.now() > deadline) throw new Error(`dockerd of ${host.netns} did not answer within 60 s`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return !/^\d+ \(.*\) Z/.test(stat)
  } catch {
    return false
  }
}
