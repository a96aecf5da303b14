// Extra hosts for multi-node end-to-end tests: network namespaces on one bridge in the root
// namespace, each with a dockerd of its own (started with nsenter: `ip netns exec` hides the cgroup
// mounts and dockerd fails). A run claims one 10.213.N.0/24 subnet by creating the folder
// <tmp>/bramble-netns/bmN, so parallel test files never share names or addresses; the folder holds
// the owner's pid, and a run whose owner is gone (a crashed test) is torn down by the next one.
// A run may take another prefix of two or three letters than `bm` (bench/wear's `wr`, bench/vs-swarm's
// `vsw`): its names say who made it.
//
// Names in a run bmN: bridge `bmN` (10.213.N.1), namespace `bmN-i` (10.213.N.10+i), its root-side
// veth `bmN-ih`. Traffic stays between the root namespace and these namespaces: no route leaves.

import { execFile, spawn } from 'node:child_process'
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import Docker from 'dockerode'
import { ensureBusyboxImage } from './busybox-image.js'
import { BRAMBLE_BIN } from './hub-process.js'

const run = promisify(execFile)
const BASE_DIR = join(tmpdir(), 'bramble-netns')
const TOOLS = ['ip', 'nsenter', 'dockerd', 'iptables']
/** A run's folder (and bridge) name: its prefix of two or three letters and its subnet N. */
const RUN_FOLDER = /^[a-z]{2,3}(\d+)$/

/** undefined when network-namespace hosts can be made here, else why not (for `t.plan(0, reason)`). */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'multi-node tests make network namespaces and start dockerd: run them as root'
  for (const tool of TOOLS) {
    try {
      await run('sh', ['-c', `command -v ${tool}`])
    } catch {
      return `multi-node tests need \`${tool}\` on the PATH (packages iproute2, util-linux, docker.io, iptables)`
    }
  }
  if (!existsSync(BRAMBLE_BIN)) return `${BRAMBLE_BIN} is missing: run \`npm run build\` first (npm test does)`
  return undefined
}

export interface NetnsHost {
  /** The namespace's name under /var/run/netns. */
  netns: string
  /** This host's address on the run's bridge. */
  address: string
  /** For `--docker-host`: the dockerd inside the namespace. */
  dockerHost: string
  docker: Docker
  /** Folder of this host: a good place for the agent's data dir. */
  dir: string
  /** `nsenter` arguments that run a command inside the namespace. */
  nsenter(command: string[]): string[]
  /** Takes the host's link down or up: a cut cable, with no connection closed cleanly. */
  setLink(up: boolean): Promise<void>
}

/** One test run's bridge and the hosts on it; `cleanup()` removes everything, also after a failure. */
export class NetnsLab {
  readonly hosts: NetnsHost[] = []
  private hostCount = 0
  private constructor(
    readonly name: string,
    readonly subnet: number,
    /** The run's folder: whatever is kept under it is removed with the run, processes naming it stopped. */
    readonly dir: string,
  ) {}

  /** The root namespace's address on the bridge: where a hub listens for the hosts. */
  get hubAddress(): string {
    return `10.213.${this.subnet}.1`
  }

  /** `prefix`: two or three lowercase letters that start every name of the run (default `bm`). */
  static async create(options: { prefix?: string } = {}): Promise<NetnsLab> {
    const prefix = options.prefix ?? 'bm'
    if (!/^[a-z]{2,3}$/.test(prefix)) throw new Error(`netns lab prefix must be two or three lowercase letters, got ${JSON.stringify(prefix)}`)
    mkdirSync(BASE_DIR, { recursive: true })
    await removeAbandonedRuns()
    const taken = await addressesInUse()
    for (let attempt = 0; attempt < 50; attempt++) {
      const subnet = 1 + Math.floor(Math.random() * 250)
      if (taken.has(subnet)) continue
      const name = `${prefix}${subnet}`
      const dir = join(BASE_DIR, name)
      try {
        mkdirSync(dir) // atomic: the run that creates the folder owns the subnet
      } catch {
        continue
      }
      // A run of another prefix may have claimed the same subnet: each then sees the other and steps back.
      if (readdirSafe(BASE_DIR).some((other) => other !== name && RUN_FOLDER.exec(other)?.[1] === String(subnet))) {
        rmSync(dir, { recursive: true, force: true })
        continue
      }
      writeFileSync(join(dir, 'owner'), `${process.pid}\n`)
      const lab = new NetnsLab(name, subnet, dir)
      try {
        await ip('link', 'add', name, 'type', 'bridge')
        await ip('addr', 'add', `${lab.hubAddress}/24`, 'dev', name)
        await ip('link', 'set', name, 'up')
        // Host-to-host traffic crosses the bridge and, with br_netfilter, the root namespace's
        // FORWARD chain, whose policy Docker sets to DROP: the overlay between hosts needs it through.
        await run('iptables', ['-w', '-I', ...bridgeForwardRule(name)])
      } catch (err) {
        await lab.cleanup()
        throw err
      }
      return lab
    }
    throw new Error('no free 10.213.N.0/24 subnet for a multi-node test run')
  }

  /**
   * A new namespace on the bridge with its own dockerd, holding the busybox test image.
   * `dockerIptables`: the dockerd programs its iptables rules as on a real host (FORWARD policy
   * DROP, DOCKER-USER, masquerade); by default it leaves iptables alone.
   */
  async addHost(options: { dockerIptables?: boolean } = {}): Promise<NetnsHost> {
    const i = this.hostCount++ // taken at once: hosts may be added in parallel
    const netns = `${this.name}-${i}`
    const address = `10.213.${this.subnet}.${10 + i}`
    const dir = join(this.dir, `h${i}`)
    mkdirSync(dir, { recursive: true })
    await ip('netns', 'add', netns)
    await ip('link', 'add', `${netns}h`, 'type', 'veth', 'peer', 'name', `${netns}p`)
    await ip('link', 'set', `${netns}p`, 'netns', netns)
    await ip('link', 'set', `${netns}h`, 'master', this.name, 'up')
    await ip('-n', netns, 'link', 'set', `${netns}p`, 'name', 'eth0')
    await ip('-n', netns, 'addr', 'add', `${address}/24`, 'dev', 'eth0')
    await ip('-n', netns, 'link', 'set', 'eth0', 'up')
    await ip('-n', netns, 'link', 'set', 'lo', 'up')
    const nsenter = (command: string[]) => [`--net=/var/run/netns/${netns}`, ...command]
    const socket = join(dir, 'docker.sock')
    writeFileSync(join(dir, 'daemon.json'), '{}\n') // never the host's /etc/docker/daemon.json
    // Unless asked, the nested engine leaves iptables alone (pods only talk inside their node).
    // Its log goes to a file: a pipe would break (and kill dockerd) if this test process died.
    const logFile = join(dir, 'dockerd.log')
    const logFd = openSync(logFile, 'a')
    const dockerd = spawn(
      'nsenter',
      nsenter(['dockerd', '--config-file', join(dir, 'daemon.json'), '--data-root', join(dir, 'docker'), '--exec-root', join(dir, 'exec'),
        '-H', `unix://${socket}`, '--pidfile', join(dir, 'dockerd.pid'), '--bip', `172.31.${10 + i}.1/24`,
        ...(options.dockerIptables ? [] : ['--iptables=false', '--ip-masq=false'])]),
      { stdio: ['ignore', 'ignore', logFd] },
    )
    closeSync(logFd)
    const log = () => readText(logFile).slice(-4000)
    const docker = new Docker({ socketPath: socket })
    const deadline = Date.now() + 30_000
    for (;;) {
      if (dockerd.exitCode !== null) throw new Error(`dockerd in ${netns} exited with ${dockerd.exitCode}: ${log()}`)
      if (existsSync(socket) && (await docker.ping().then(() => true, () => false))) break
      if (Date.now() > deadline) throw new Error(`dockerd in ${netns} did not answer within 30 s: ${log()}`)
      await new Promise((r) => setTimeout(r, 200))
    }
    await ensureBusyboxImage(docker)
    const setLink = (up: boolean) => ip('-n', netns, 'link', 'set', 'eth0', up ? 'up' : 'down')
    const host = { netns, address, dockerHost: `unix://${socket}`, docker, dir, nsenter, setLink }
    this.hosts.push(host)
    return host
  }

  async cleanup(): Promise<void> {
    await tearDownRun(this.name, this.dir)
  }
}

/** Runs left by a test process that is gone (killed, crashed) are torn down before a new one starts. */
async function removeAbandonedRuns(): Promise<void> {
  for (const name of readdirSync(BASE_DIR)) {
    if (!RUN_FOLDER.test(name)) continue
    const dir = join(BASE_DIR, name)
    const owner = Number(readText(join(dir, 'owner')))
    if (owner && processAlive(owner)) continue
    // A folder with no owner yet may be a run starting right now: only an old one is abandoned.
    if (!owner && Date.now() - (statSafe(dir, 'mtimeMs') ?? 0) < 60_000) continue
    await tearDownRun(name, dir)
  }
}

/** Removes a run's containers, dockerds, namespaces, links, mounts and files; each step best effort. */
async function tearDownRun(name: string, dir: string): Promise<void> {
  const hostDirs = existsSync(dir) ? readdirSync(dir).filter((d) => /^h\d+$/.test(d)) : []
  await Promise.all(
    hostDirs.map(async (h) => {
      const socket = join(dir, h, 'docker.sock')
      if (!existsSync(socket)) return
      // Removing containers first makes dockerd's own shutdown quick.
      const docker = new Docker({ socketPath: socket, timeout: 10_000 })
      const containers = await docker.listContainers({ all: true }).catch(() => [])
      await Promise.all(containers.map((c) => docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => {})))
    }),
  )
  const dockerds = hostDirs.map((h) => Number(readText(join(dir, h, 'dockerd.pid')))).filter((pid) => pid && processAlive(pid) && commandLine(pid).includes(`${dir}/`))
  await Promise.all(dockerds.map(stopProcess))
  // What a killed dockerd leaves behind: its containerd and shims (they name the run's folder), and
  // the processes of its containers (found by the container ids in their cgroup paths).
  const containerIds = hostDirs.flatMap((h) => readdirSafe(join(dir, h, 'docker', 'containers')))
  const inContainer = (pid: number) => {
    const cgroup = readText(`/proc/${pid}/cgroup`)
    return containerIds.some((id) => cgroup.includes(id))
  }
  await Promise.all(processesWhere((p) => commandLine(p).includes(`${dir}/`) || inContainer(p)).map(stopProcess))
  const namespaces = readdirSafe('/var/run/netns').filter((n) => n.startsWith(`${name}-`))
  for (const netns of namespaces) {
    const inode = statSafe(`/var/run/netns/${netns}`)
    if (inode) await Promise.all(processesWhere((p) => statSafe(`/proc/${p}/ns/net`) === inode).map(stopProcess))
    await ip('netns', 'del', netns).catch(() => {})
  }
  for (const link of await linksNamed(name)) await ip('link', 'del', link).catch(() => {})
  await run('iptables', ['-w', '-D', ...bridgeForwardRule(name)]).catch(() => {})
  const mounts = readText('/proc/self/mountinfo')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => !!m && (m === dir || m.startsWith(`${dir}/`)))
    .sort((a, b) => b.length - a.length)
  for (const m of mounts) await run('umount', ['-l', m]).catch(() => {})
  rmSync(dir, { recursive: true, force: true })
}

function bridgeForwardRule(bridge: string): string[] {
  return ['FORWARD', '-i', bridge, '-o', bridge, '-m', 'comment', '--comment', `bramble e2e lab ${bridge}`, '-j', 'ACCEPT']
}

async function ip(...args: string[]): Promise<void> {
  try {
    await run('ip', args)
  } catch (err) {
    throw new Error(`ip ${args.join(' ')} failed: ${(err as { stderr?: string }).stderr?.trim() || (err as Error).message}`, { cause: err })
  }
}

/** Subnets N of 10.213.N.0/24 some interface of the root namespace already has. */
async function addressesInUse(): Promise<Set<number>> {
  const { stdout } = await run('ip', ['-4', '-o', 'addr', 'show'])
  return new Set([...stdout.matchAll(/inet 10\.213\.(\d+)\./g)].map((m) => Number(m[1])))
}

/** The bridge `name` and the root-side veths `name-ih` of a run. */
async function linksNamed(name: string): Promise<string[]> {
  const { stdout } = await run('ip', ['-o', 'link', 'show'])
  return [...stdout.matchAll(/^\d+: ([^:@\s]+)/gm)].map((m) => m[1]!).filter((l) => l === name || new RegExp(`^${name}-\\d+h$`).test(l))
}

async function stopProcess(pid: number): Promise<void> {
  if (pid === process.pid) return
  try {
    process.kill(pid, 'SIGTERM')
  } catch {
    return
  }
  const deadline = Date.now() + 15_000
  while (processAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  if (processAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

function processAlive(pid: number): boolean {
  // A zombie has exited: it counts as gone.
  const stat = readText(`/proc/${pid}/stat`)
  return stat !== '' && !/^\d+ \(.*\) Z/.test(stat)
}

function processesWhere(match: (pid: number) => boolean): number[] {
  return readdirSafe('/proc')
    .filter((p) => /^\d+$/.test(p))
    .map(Number)
    .filter((p) => p !== process.pid && match(p))
}

function commandLine(pid: number): string {
  return readText(`/proc/${pid}/cmdline`).replace(/\0/g, ' ')
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

function statSafe(path: string, field: 'ino' | 'mtimeMs' = 'ino'): number | undefined {
  try {
    return statSync(path)[field]
  } catch {
    return undefined
  }
}
