// The real WireGuard port: kernel WireGuard when `ip link add ... type wireguard` works, else
// wireguard-go (which then runs on its own, so an agent restart finds the interface and adopts it).
// Configured with `wg` and `ip`; the private key goes to `wg` as a file, never as an argument.
// With `netns`, every command runs in that network namespace (`ip netns exec`): for tests.

import { execFile } from 'node:child_process'
import { WireGuardError } from './errors.js'
import type { WireGuard, WireGuardLinkSettings, WireGuardMode, WireGuardPeerState, WireGuardState } from '../mesh/wireguard-port.js'
import type { WireGuardPeer } from '../mesh/wireguard-peers.js'

export interface WireGuardLinkOptions {
  /** Run every command inside this network namespace. */
  netns?: string
  /** wireguard-go's path (default: found on PATH). */
  wireguardGo?: string
  /** Give up on a command after this long (default 10 s). */
  commandTimeoutMs?: number
}

const INTERFACE_NAME = /^[a-zA-Z0-9_=+.-]{1,15}$/
/** How long wireguard-go may take to open its control socket. */
const USERSPACE_READY_MS = 5_000

export class WireGuardLink implements WireGuard {
  constructor(private readonly o: WireGuardLinkOptions = {}) {}

  async ensureLink(s: WireGuardLinkSettings): Promise<{ mode: WireGuardMode; created: boolean }> {
    checkName(s.name)
    if (!Number.isInteger(s.listenPort) || s.listenPort < 1 || s.listenPort > 65535) throw new RangeError(`listenPort: must be 1-65535, got ${s.listenPort}`)
    if (!Number.isInteger(s.mtu) || s.mtu < 576 || s.mtu > 65535) throw new RangeError(`mtu: must be 576-65535, got ${s.mtu}`)
    let created = false
    let mode = await this.modeOf(s.name)
    if (mode && !(await this.answers(s.name))) {
      // A tun device whose wireguard-go is gone: nothing to adopt.
      await this.deleteLink(s.name)
      mode = undefined
    }
    if (!mode) {
      mode = await this.createLink(s.name)
      created = true
    }
    await this.run(['wg', 'set', s.name, 'private-key', s.privateKeyFile, 'listen-port', String(s.listenPort)])
    await this.run(['ip', 'link', 'set', 'dev', s.name, 'mtu', String(s.mtu), 'up'])
    const addresses = await this.addresses(s.name)
    for (const a of addresses) if (a !== s.address) await this.run(['ip', 'address', 'del', a, 'dev', s.name])
    if (s.address && !addresses.includes(s.address)) await this.run(['ip', 'address', 'add', s.address, 'dev', s.name])
    return { mode, created }
  }

  async show(name: string): Promise<WireGuardState | undefined> {
    checkName(name)
    const link = await this.linkInfo(name)
    if (!link) return undefined
    const dump = (await this.run(['wg', 'show', name, 'dump'])).trimEnd().split('\n')
    const [, publicKey, listenPort] = dump[0]!.split('\t')
    const peers = dump.slice(1).filter(Boolean).map(parsePeerLine)
    const routes = JSON.parse((await this.run(['ip', '-j', 'route', 'show', 'dev', name])) || '[]') as Array<{ dst: string }>
    return {
      name,
      publicKey: publicKey === '(none)' ? '' : publicKey!,
      listenPort: Number(listenPort),
      mtu: link.mtu,
      up: link.flags.includes('UP'),
      addresses: await this.addresses(name),
      peers,
      routes: routes.map((r) => (r.dst.includes('/') ? r.dst : `${r.dst}/32`)),
    }
  }

  async setPeer(name: string, peer: WireGuardPeer): Promise<void> {
    checkName(name)
    await this.run([
      'wg', 'set', name, 'peer', peer.publicKey,
      ...(peer.endpoint ? ['endpoint', peer.endpoint] : []),
      'allowed-ips', peer.allowedIPs.join(','),
      'persistent-keepalive', String(peer.persistentKeepalive ?? 0),
    ])
  }

  async removePeer(name: string, publicKey: string): Promise<void> {
    checkName(name)
    await this.run(['wg', 'set', name, 'peer', publicKey, 'remove'])
  }

  async addRoute(name: string, cidr: string): Promise<void> {
    checkName(name)
    await this.run(['ip', 'route', 'replace', cidr, 'dev', name])
  }

  async removeRoute(name: string, cidr: string): Promise<void> {
    checkName(name)
    try {
      await this.run(['ip', 'route', 'del', cidr, 'dev', name])
    } catch (err) {
      if (!/No such process|not found/i.test((err as Error).message)) throw err
    }
  }

  async linkMtu(address: string): Promise<number | undefined> {
    const links = JSON.parse(await this.run(['ip', '-j', 'address', 'show'])) as Array<{ mtu: number; addr_info?: Array<{ local: string }> }>
    return links.find((l) => (l.addr_info ?? []).some((a) => a.local === address))?.mtu
  }

  async deleteLink(name: string): Promise<void> {
    checkName(name)
    if (!(await this.linkInfo(name))) return
    await this.run(['ip', 'link', 'del', 'dev', name])
  }

  private async createLink(name: string): Promise<WireGuardMode> {
    try {
      await this.run(['ip', 'link', 'add', 'dev', name, 'type', 'wireguard'])
      return 'kernel'
    } catch {
      // No kernel module (as on this machine, and on many Pi kernels before 5.6): userspace.
    }
    // wireguard-go's control sockets live in /var/run/wireguard, shared by every network
    // namespace: one that answers while this namespace has no such link belongs to another.
    if (await this.answers(name)) {
      throw new WireGuardError(`wireguard-go ${name}`, `the name ${name} is used by wireguard-go in another network namespace; give this node another --wireguard-interface`)
    }
    await this.run([this.o.wireguardGo ?? 'wireguard-go', name])
    const deadline = Date.now() + USERSPACE_READY_MS
    while (!(await this.answers(name))) {
      if (Date.now() > deadline) throw new WireGuardError(`wireguard-go ${name}`, `its control socket did not answer within ${USERSPACE_READY_MS} ms`)
      await new Promise((r) => setTimeout(r, 50))
    }
    return 'userspace'
  }

  private async modeOf(name: string): Promise<WireGuardMode | undefined> {
    const link = await this.linkInfo(name)
    if (!link) return undefined
    return link.linkinfo?.info_kind === 'wireguard' ? 'kernel' : 'userspace'
  }

  private async answers(name: string): Promise<boolean> {
    try {
      await this.run(['wg', 'show', name, 'public-key'])
      return true
    } catch {
      return false
    }
  }

  private async linkInfo(name: string): Promise<{ mtu: number; flags: string[]; linkinfo?: { info_kind?: string } } | undefined> {
    try {
      const [link] = JSON.parse(await this.run(['ip', '-d', '-j', 'link', 'show', 'dev', name]))
      return link
    } catch (err) {
      if (/does not exist|Cannot find device/i.test((err as Error).message)) return undefined
      throw err
    }
  }

  private async addresses(name: string): Promise<string[]> {
    const [link] = JSON.parse(await this.run(['ip', '-j', 'address', 'show', 'dev', name])) as Array<{ addr_info?: Array<{ local: string; prefixlen: number }> }>
    return (link?.addr_info ?? []).map((a) => `${a.local}/${a.prefixlen}`)
  }

  private run(argv: string[]): Promise<string> {
    const full = this.o.netns ? ['ip', 'netns', 'exec', this.o.netns, ...argv] : argv
    return new Promise((resolve, reject) => {
      execFile(full[0]!, full.slice(1), { timeout: this.o.commandTimeoutMs ?? 10_000, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
        if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') reject(new WireGuardError(argv.join(' '), `${full[0]} is not installed (Debian packages: iproute2, wireguard-tools, wireguard-go)`, { cause: err }))
        else if (err) reject(new WireGuardError(argv.join(' '), String(stderr).trim().split('\n').pop() || err.message, { cause: err }))
        else resolve(String(stdout))
      })
    })
  }
}

function checkName(name: string): void {
  if (!INTERFACE_NAME.test(name)) throw new RangeError(`interface: "${name}" is not a valid interface name (1-15 letters, digits, _=+.-)`)
}

/** A peer line of `wg show <if> dump`: key, psk, endpoint, allowed-ips, handshake, rx, tx, keepalive. */
function parsePeerLine(line: string): WireGuardPeerState {
  const [publicKey, , endpoint, allowed, handshake, rx, tx, keepalive] = line.split('\t')
  return {
    publicKey: publicKey!,
    ...(endpoint && endpoint !== '(none)' ? { endpoint } : {}),
    allowedIPs: allowed && allowed !== '(none)' ? allowed.split(',') : [],
    ...(keepalive && keepalive !== 'off' ? { persistentKeepalive: Number(keepalive) } : {}),
    latestHandshake: Number(handshake),
    rxBytes: Number(rx),
    txBytes: Number(tx),
  }
}
