// One extra host for fault tests whose every name carries the test's own prefix: a network
// namespace joined to the root namespace by a veth pair on 10.250.N.0/24 (root side .1, where the
// hub listens; the host .2), a dockerd of its own inside it (started with nsenter, as in
// netns-host.ts) whose data root may sit on a small filesystem, and `bramble agent` processes run
// inside it, optionally with a skewed wall clock (libfaketime). cleanup() removes all of it.

import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Docker from 'dockerode'
import { ensureBusyboxImage } from './busybox-image.js'
import { BRAMBLE_BIN } from './hub-process.js'

const run = promisify(execFile)
export const FAKETIME_LIB = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'

export interface FaultHost {
  /** The namespace's name (the prefix and a tag), also the root side's veth name with `h`. */
  netns: string
  /** The root namespace's address on the link: where a hub listens for this host. */
  hubAddress: string
  /** This host's own address. */
  address: string
  dockerHost: string
  docker: Docker
  /** The host's folder (sockets, dockerd log, default data dirs). */
  dir: string
  /** Starts `bramble agent` inside the namespace; `clockOffset` (`+7m`, `-10m`) skews its wall clock only. */
  startAgent(options: AgentOptions): FaultAgent
  cleanup(): Promise<void>
}

export interface AgentOptions {
  node: string
  hub: string
  dataDir: string
  token?: string
  clockOffset?: string
  extraArgs?: string[]
}

export interface FaultAgent {
  child: ChildProcess
  output(): string
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** undefined when such a host can be made here, else why not (for `t.plan(0, reason)`). */
export async function faultHostUnavailable(options: { faketime?: boolean } = {}): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'fault tests make network namespaces, mounts and a dockerd: run them as root'
  for (const tool of ['ip', 'nsenter', 'dockerd', 'mount']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`])
    } catch {
      return `fault tests need \`${tool}\` on the PATH`
    }
  }
  if (options.faketime && !existsSync(FAKETIME_LIB)) return `clock skew tests need libfaketime (${FAKETIME_LIB}): apt-get install faketime`
  if (!existsSync(BRAMBLE_BIN)) return `${BRAMBLE_BIN} is missing: run \`npm run build\` first`
  return undefined
}

/**
 * A host named `netns` (at most 14 characters, the test's prefix first) on 10.250.`subnet`.0/24.
 * `dataRoot`: where its dockerd keeps images and containers (default inside the host's folder).
 */
export async function startFaultHost(netns: string, subnet: number, options: { dataRoot?: string } = {}): Promise<FaultHost> {
  if (netns.length > 14) throw new Error(`namespace name ${netns} is longer than 14 characters (the veth adds one)`)
  await removeLeftovers(netns)
  const dir = mkdtempSync(join(tmpdir(), `${netns}-host-`))
  const hubAddress = `10.250.${subnet}.1`
  const address = `10.250.${subnet}.2`
  const veth = `${netns}h`
  const cleanup = () => tearDown(netns, dir)
  try {
    await ip('netns', 'add', netns)
    await ip('link', 'add', veth, 'type', 'veth', 'peer', 'name', `${netns}p`)
    await ip('link', 'set', `${netns}p`, 'netns', netns)
    await ip('addr', 'add', `${hubAddress}/24`, 'dev', veth)
    await ip('link', 'set', veth, 'up')
    await ip('-n', netns, 'link', 'set', `${netns}p`, 'name', 'eth0')
    await ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
    await ip('-n', netns, 'link', 'set', 'eth0', 'up')
    await ip('-n', netns, 'link', 'set', 'lo', 'up')
    const nsenter = (command: string[]) => [`--net=/var/run/netns/${netns}`, ...command]
    const socket = join(dir, 'docker.sock')
    writeFileSync(join(dir, 'daemon.json'), '{}\n')
    writeFileSync(join(dir, 'owner'), `${process.pid}\n`)
    const logFile = join(dir, 'dockerd.log')
    const logFd = openSync(logFile, 'a')
    const dockerd = spawn(
      'nsenter',
      nsenter(['dockerd', '--config-file', join(dir, 'daemon.json'), '--data-root', options.dataRoot ?? join(dir, 'docker'), '--exec-root', join(dir, 'exec'),
        '-H', `unix://${socket}`, '--pidfile', join(dir, 'dockerd.pid'), '--bip', `172.30.${subnet}.1/24`, '--iptables=false', '--ip-masq=false']),
      { stdio: ['ignore', 'ignore', logFd] },
    )
    closeSync(logFd)
    const docker = new Docker({ socketPath: socket })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (dockerd.exitCode !== null) throw new Error(`dockerd in ${netns} exited with ${dockerd.exitCode}: ${readText(logFile).slice(-3000)}`)
      if (existsSync(socket) && (await docker.ping().then(() => true, () => false))) break
      if (Date.now() > deadline) throw new Error(`dockerd in ${netns} did not answer within 30 s: ${readText(logFile).slice(-3000)}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    await ensureBusyboxImage(docker)
    const startAgent = (o: AgentOptions): FaultAgent => {
      const argv = [process.execPath, BRAMBLE_BIN, 'agent', '--data-dir', o.dataDir, '--hub', o.hub, '--node-name', o.node, '--docker-host', `unix://${socket}`,
        '--wireguard-interface', 'none', '--advertise-address', address, '--log-level', 'info', ...(o.token ? ['--token', o.token] : []), ...(o.extraArgs ?? [])]
      // env execs node in place: the child's pid is the agent's, so a signal reaches the agent itself.
      const skew = o.clockOffset ? ['env', `LD_PRELOAD=${FAKETIME_LIB}`, `FAKETIME=${o.clockOffset}`, 'FAKETIME_DONT_FAKE_MONOTONIC=1', 'FAKETIME_NO_CACHE=1'] : []
      const child = spawn('nsenter', nsenter([...skew, ...argv]), { stdio: ['ignore', 'pipe', 'pipe'] })
      let output = ''
      child.stdout!.on('data', (d) => (output = (output + d).slice(-200_000)))
      child.stderr!.on('data', (d) => (output = (output + d).slice(-200_000)))
      const exited = new Promise<void>((res) => child.once('exit', () => res()))
      return {
        child,
        output: () => output,
        async stop(signal = 'SIGTERM') {
          if (child.exitCode === null && child.signalCode === null) child.kill(signal)
          await exited
        },
      }
    }
    return { netns, hubAddress, address, dockerHost: `unix://${socket}`, docker, dir, startAgent, cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
}

/** A host of the same name left by a test process that died: torn down before a new one starts. */
async function removeLeftovers(netns: string): Promise<void> {
  for (const name of readdirSafe(tmpdir())) {
    if (!name.startsWith(`${netns}-host-`)) continue
    const owner = Number(readText(join(tmpdir(), name, 'owner')))
    if (owner && owner !== process.pid && existsSync(`/proc/${owner}`)) throw new Error(`another test (pid ${owner}) uses the namespace ${netns}`)
    await tearDown(netns, join(tmpdir(), name))
  }
  if (readdirSafe('/var/run/netns').includes(netns)) await tearDown(netns, undefined)
}

/** Stops every process in the namespace (dockerd, containerd, shims, agents), then removes it, its link, mounts and folder. */
async function tearDown(netns: string, dir: string | undefined): Promise<void> {
  const socket = dir && join(dir, 'docker.sock')
  if (socket && existsSync(socket)) {
    const docker = new Docker({ socketPath: socket, timeout: 10_000 })
    const containers = await docker.listContainers({ all: true }).catch(() => [])
    await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})))
  }
  const inode = statSafe(`/var/run/netns/${netns}`)
  if (inode !== undefined) {
    const inNamespace = () => readdirSafe('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid && statSafe(`/proc/${p}/ns/net`) === inode).map(Number)
    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      for (const pid of inNamespace()) {
        try {
          process.kill(pid, signal)
        } catch {}
      }
      const deadline = Date.now() + 15_000
      while (inNamespace().length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    }
    await ip('netns', 'del', netns).catch(() => {})
  }
  await ip('link', 'del', `${netns}h`).catch(() => {})
  if (dir) {
    await unmountUnder(dir)
    rmSync(dir, { recursive: true, force: true })
  }
}

/** Unmounts whatever is mounted under `dir` (what a dockerd leaves of its containers), deepest first. */
export async function unmountUnder(dir: string): Promise<void> {
  const mounts = readText('/proc/self/mountinfo')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && m.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length)
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => {})
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    throw new Error(`ip ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err })
  }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

function readdirSafe(path: string): string[] {
  try {
    return readdirSync(path)
  } catch {
    return []
  }
}

function statSafe(path: string): number | undefined {
  try {
    return statSync(path).ino
  } catch {
    return undefined
  }
}
