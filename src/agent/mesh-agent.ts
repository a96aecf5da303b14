// The node's side of the WireGuard mesh. Its key pair is made on first start and the private key
// kept in `<data dir>/agent/wireguard/private.key` (mode 0600): it never leaves the node, only the
// public key and the endpoint go up with the node status. The hub's mesh message (every node's
// public key, endpoint and pod subnets) is applied level-triggered: interface, peers and routes are
// compared with what the interface has, and only the difference is changed, so a restarted agent
// adopts the interface it finds. The interface is made with the first peer: a one-node cluster
// needs none. The last mesh is kept on disk: after a reboot with the hub away the overlay comes
// back as it was.

import { chmodSync, existsSync, mkdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/atomic-file.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { isWireGuardKey, generateWireGuardKeyPair, wireGuardPublicKey } from '../mesh/wireguard-keys.js'
import { decodeMeshMessage, formatEndpoint, overlayAddress, peerSet, planPeers, planRoutes, tunnelMtu, type MeshMessage, type WireGuardPeer } from '../mesh/wireguard-peers.js'
import type { WireGuard, WireGuardMode } from '../mesh/wireguard-port.js'

const PRIVATE_KEY_FILE = 'private.key'
const MESH_CACHE_FILE = 'mesh.json'
/** The link MTU assumed when no link holds the node's address. */
const DEFAULT_LINK_MTU = 1500

export interface MeshAgentOptions {
  wireguard: WireGuard
  node: string
  /** `<data dir>/agent/wireguard`: the private key and the last mesh message. */
  dir: string
  interfaceName: string
  listenPort: number
  /** Persistent keepalive towards every peer, seconds; 0 turns it off. */
  keepaliveSeconds: number
  /** The tunnel MTU; by default the MTU of the link holding the endpoint's address, less WireGuard's overhead. */
  mtu?: number
  /** The address other nodes reach this one at (--advertise-address); else the node's InternalIP. */
  advertiseAddress?: string
  /** The node's InternalIP at start; report() keeps it current (a Pi's DHCP lease may move it). */
  internalIP?: string
  clock: Clock
  logger: Logger
  /** The interface is looked at again this often (someone may have removed it). Default 30 s. */
  resyncMs?: number
  /** The overlay's state changed: the node status should go up again. */
  onChange(): void
}

/** What goes up with the node status: public facts and the overlay's condition. */
export interface MeshReport {
  wireguard: { publicKey: string; endpoint?: string }
  condition: { type: 'NetworkUnavailable'; status: 'True' | 'False'; reason: string; message: string }
}

export class MeshAgent {
  readonly publicKey: string
  private readonly log: Logger
  private mesh: MeshMessage | undefined
  private lastApplied: WireGuardPeer[] | undefined
  private condition: MeshReport['condition'] = { type: 'NetworkUnavailable', status: 'True', reason: 'WireGuardStarting', message: 'the WireGuard interface is being set up' }
  private chain: Promise<void> = Promise.resolve()
  private queued = false
  private timer: { cancel(): void } | undefined
  private stopped = false
  private internalIP: string | undefined

  constructor(private readonly o: MeshAgentOptions) {
    this.log = o.logger.child({ component: 'mesh', node: o.node })
    this.internalIP = o.internalIP
    this.publicKey = wireGuardPublicKey(ensurePrivateKey(o.dir))
    this.mesh = readCachedMesh(join(o.dir, MESH_CACHE_FILE), this.log)
  }

  get privateKeyFile(): string {
    return join(this.o.dir, PRIVATE_KEY_FILE)
  }

  /** Applies the mesh kept on disk, if any, and starts the resync timer. */
  async start(): Promise<void> {
    this.reconcile()
    await this.idle()
    this.schedule()
  }

  stop(): void {
    this.stopped = true
    this.timer?.cancel()
  }

  /** Resolves once every mesh received so far is applied. */
  async idle(): Promise<void> {
    let seen: Promise<void>
    do {
      seen = this.chain
      await seen
    } while (seen !== this.chain)
  }

  /** The Bus handler for the cluster-wide mesh topic. */
  readonly onMessage = (_topic: string, payload: Buffer): void => {
    const decoded = decodeMeshMessage(payload)
    if (!decoded.ok) return void this.log.warn({ reason: decoded.reason }, 'dropped an invalid mesh message from the hub')
    if (decoded.problems.length > 0) this.log.warn({ problems: decoded.problems.slice(0, 10) }, 'the mesh message has entries that cannot be used; left them out')
    this.mesh = decoded.mesh
    try {
      writeFileAtomic(join(this.o.dir, MESH_CACHE_FILE), JSON.stringify(decoded.mesh), 0o600)
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not keep the mesh on disk; it is applied anyway')
    }
    this.reconcile()
  }

  /** What goes up now; `internalIP` is the node's current one (its endpoint without --advertise-address). */
  report(internalIP?: string): MeshReport {
    if (internalIP) this.internalIP = internalIP
    const host = this.endpointHost()
    const endpoint = host ? formatEndpoint(host, this.o.listenPort) : undefined
    return { wireguard: { publicKey: this.publicKey, ...(endpoint ? { endpoint } : {}) }, condition: { ...this.condition } }
  }

  /** Applies the latest mesh after whatever is being applied now; bursts collapse into one pass. */
  private reconcile(): void {
    if (this.queued) return
    this.queued = true
    this.chain = this.chain.then(async () => {
      this.queued = false
      if (this.stopped) return
      try {
        this.setCondition(await this.apply(this.mesh ?? { nodes: [] }))
      } catch (err) {
        this.log.error({ err: (err as Error).message }, 'could not set up the WireGuard mesh; trying again at the next resync')
        this.setCondition({ type: 'NetworkUnavailable', status: 'True', reason: 'WireGuardFailed', message: (err as Error).message.slice(0, 512) })
      }
    })
  }

  private async apply(mesh: MeshMessage): Promise<MeshReport['condition']> {
    const { wireguard: wg, interfaceName: name } = this.o
    const own = mesh.nodes.find((n) => n.node === this.o.node)
    const podCIDR = own?.podCIDRs.find((c) => !c.includes(':'))
    const desired = peerSet(mesh, this.o.node, { keepaliveSeconds: this.o.keepaliveSeconds })
    // A node alone needs no tunnel: the interface comes with the first peer (and then stays).
    if (desired.peers.length === 0 && !(await wg.show(name))) {
      return { type: 'NetworkUnavailable', status: 'False', reason: 'NoPeers', message: 'no other node has joined the mesh: WireGuard is not needed yet' }
    }
    const host = this.endpointHost()
    const linkMtu = host ? await wg.linkMtu(host) : undefined
    const mtu = this.o.mtu ?? tunnelMtu(linkMtu ?? DEFAULT_LINK_MTU)
    const link = await wg.ensureLink({ name, privateKeyFile: this.privateKeyFile, listenPort: this.o.listenPort, mtu, ...(podCIDR ? { address: overlayAddress(podCIDR) } : {}) })
    if (link.created) this.log.info({ interface: name, mode: link.mode, mtu, listenPort: this.o.listenPort }, 'WireGuard interface created')
    const actual = await wg.show(name)
    if (!actual) throw new Error(`interface ${name} vanished while it was being configured`)
    for (const s of desired.skipped) this.log.warn({ peer: s.node, reason: s.reason }, 'left a node out of the mesh')
    for (const step of planPeers(desired.peers, actual.peers, this.lastApplied)) {
      if (step.op === 'remove-peer') await wg.removePeer(name, step.publicKey)
      else await wg.setPeer(name, step.peer)
      this.log.info({ step: step.op, peer: step.op === 'remove-peer' ? step.publicKey : step.peer.publicKey, ...(step.op === 'set-peer' ? { endpoint: step.peer.endpoint, reason: step.reason } : {}) }, 'WireGuard peer changed')
    }
    this.lastApplied = desired.peers
    for (const step of planRoutes(desired.routes, actual.routes)) {
      if (step.op === 'add-route') await wg.addRoute(name, step.cidr)
      else await wg.removeRoute(name, step.cidr)
    }
    if (!podCIDR) return { type: 'NetworkUnavailable', status: 'True', reason: 'NoPodCIDR', message: `WireGuard ${name} is up with ${desired.peers.length} peers; waiting for the hub to lease this node a pod subnet` }
    return { type: 'NetworkUnavailable', status: 'False', reason: 'WireGuardUp', message: `WireGuard ${name} (${modeName(link.mode)}) is up with ${desired.peers.length} peers` }
  }

  private endpointHost(): string | undefined {
    return this.o.advertiseAddress ?? this.internalIP
  }

  private setCondition(next: MeshReport['condition']): void {
    const before = this.condition
    this.condition = next
    if (before.status !== next.status || before.reason !== next.reason || before.message !== next.message) this.o.onChange()
  }

  private schedule(): void {
    if (this.stopped) return
    this.timer = this.o.clock.setTimeout(() => {
      this.reconcile()
      this.schedule()
    }, this.o.resyncMs ?? 30_000)
  }
}

/** The node's private key: read, or made on first start. The file is kept owner-only. */
function ensurePrivateKey(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const path = join(dir, PRIVATE_KEY_FILE)
  if (existsSync(path)) {
    if ((statSync(path).mode & 0o077) !== 0) chmodSync(path, 0o600)
    const key = readFileSync(path, 'utf8').trim()
    if (!isWireGuardKey(key)) throw new Error(`${path} does not hold a WireGuard private key; move it away and the agent makes a new one`)
    return key
  }
  const { privateKey } = generateWireGuardKeyPair()
  writeFileAtomic(path, `${privateKey}\n`, 0o600)
  return privateKey
}

function readCachedMesh(path: string, log: Logger): MeshMessage | undefined {
  if (!existsSync(path)) return undefined
  const decoded = decodeMeshMessage(readFileSync(path))
  if (decoded.ok) return decoded.mesh
  log.warn({ path, reason: decoded.reason }, 'ignored the mesh kept on disk; waiting for the hub')
  return undefined
}

function modeName(mode: WireGuardMode): string {
  return mode === 'kernel' ? 'kernel' : 'wireguard-go'
}
