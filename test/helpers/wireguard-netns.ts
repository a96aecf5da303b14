// Network namespaces for WireGuard tests, without Docker: `bwg<pid>-<n>` namespaces, optionally
// joined by a veth pair, and unique interface names (wireguard-go's control sockets share
// /var/run/wireguard across namespaces). Cleanup deletes the WireGuard links first (which stops
// wireguard-go), then the namespaces; namespaces left by a crashed run (its pid gone) are swept.

import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const run = promisify(execFile)
let counter = 0

/** undefined when WireGuard namespaces can be made here, else why not (for `t.plan(0, reason)`). */
export async function wireguardNetnsUnavailable(): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return 'WireGuard tests make network namespaces: run them as root'
  for (const tool of ['ip', 'wg', 'wireguard-go']) {
    try {
      await run('sh', ['-c', `command -v ${tool}`])
    } catch {
      return `WireGuard tests need \`${tool}\` on the PATH (packages iproute2, wireguard-tools, wireguard-go)`
    }
  }
  return undefined
}

/** A WireGuard interface name no other test run uses (at most 15 characters). */
export function uniqueInterfaceName(): string {
  return `bw${randomBytes(5).toString('hex')}`
}

export class WireGuardNetns {
  private readonly links: string[] = []
  private constructor(readonly name: string) {}

  static async create(): Promise<WireGuardNetns> {
    await sweepStale()
    const ns = new WireGuardNetns(`bwg${process.pid}-${counter++}`)
    await run('ip', ['netns', 'add', ns.name])
    await ns.exec(['ip', 'link', 'set', 'lo', 'up'])
    return ns
  }

  /** Runs a command inside the namespace; resolves with its stdout. */
  async exec(argv: string[]): Promise<string> {
    const { stdout } = await run('ip', ['netns', 'exec', this.name, ...argv], { timeout: 15_000 })
    return stdout
  }

  /** Deleted (with its wireguard-go) at cleanup. */
  ownLink(name: string): void {
    this.links.push(name)
  }

  async cleanup(): Promise<void> {
    for (const link of this.links) await this.exec(['ip', 'link', 'del', 'dev', link]).catch(() => {})
    await run('ip', ['netns', 'del', this.name]).catch(() => {})
  }
}

/** A veth pair between two namespaces, each end with an address (CIDR) and up. */
export async function connect(a: WireGuardNetns, addressA: string, b: WireGuardNetns, addressB: string, mtu = 1500): Promise<void> {
  const suffix = randomBytes(3).toString('hex')
  const ea = `va${suffix}`
  const eb = `vb${suffix}`
  await run('ip', ['link', 'add', ea, 'mtu', String(mtu), 'netns', a.name, 'type', 'veth', 'peer', 'name', eb, 'mtu', String(mtu), 'netns', b.name])
  await a.exec(['ip', 'address', 'add', addressA, 'dev', ea])
  await b.exec(['ip', 'address', 'add', addressB, 'dev', eb])
  await a.exec(['ip', 'link', 'set', ea, 'up'])
  await b.exec(['ip', 'link', 'set', eb, 'up'])
}

/** Namespaces of earlier runs whose process is gone. */
async function sweepStale(): Promise<void> {
  const { stdout } = await run('ip', ['netns', 'list'])
  for (const line of stdout.split('\n')) {
    const m = /^bwg(\d+)-\d+/.exec(line)
    if (!m || Number(m[1]) === process.pid || alive(Number(m[1]))) continue
    const name = m[0]
    const links = await run('ip', ['netns', 'exec', name, 'ip', '-j', 'link', 'show']).then((r) => JSON.parse(r.stdout) as Array<{ ifname: string }>, () => [])
    for (const l of links) if (/^bw[0-9a-f]{10}$/.test(l.ifname)) await run('ip', ['netns', 'exec', name, 'ip', 'link', 'del', l.ifname]).catch(() => {})
    await run('ip', ['netns', 'del', name]).catch(() => {})
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
