// The node's side of Services: the hub's service catalog (bramble/v1/cluster/services) is kept on
// disk (`<data dir>/agent/services.json`), turned into the node's proxy rules (service-proxy.ts)
// and answered from by the node's DNS server (dns-server.ts). With the hub away, a restarted
// agent programs the rules and answers names from the catalog it kept. An older catalog than the
// one held (a redelivery) is ignored; rules are applied again every resync period in case someone
// flushed them.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/atomic-file.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { decodeServicesMessage, type ServicesMessage } from '../mesh/service-catalog.js'
import { startDnsServer, type RunningDnsServer } from './dns-server.js'
import { ServiceProxy, type Iptables } from './service-proxy.js'

const CATALOG_FILE = 'services.json'
const DEFAULT_RESYNC_MS = 30_000

export interface ServiceAgentOptions {
  /** Where the last catalog is kept (the agent's own directory). */
  dir: string
  /** The node's packet filter; without it no proxy rules are programmed. */
  iptables?: Iptables
  /** Tags the proxy's chains (see proxy-rules.ts). */
  clusterId: string
  /** The cluster's pod network: connections to a ClusterIP from outside it are masqueraded. */
  clusterCidr?: string
  /** The pods' DNS server: where it listens, where other names go, and what makes its address the node's. */
  dns?: { host: string; port: number; upstreams: string[]; prepare?: () => Promise<void> }
  clock: Clock
  logger: Logger
  resyncMs?: number
}

export class ServiceAgent {
  private catalog: ServicesMessage | undefined
  private readonly proxy: ServiceProxy | undefined
  private dnsServer: RunningDnsServer | undefined
  private readonly log: Logger
  private applying: Promise<void> = Promise.resolve()
  private timer: { cancel(): void } | undefined
  private stopped = false

  constructor(private readonly o: ServiceAgentOptions) {
    this.log = o.logger.child({ component: 'service-agent' })
    this.proxy = o.iptables ? new ServiceProxy({ iptables: o.iptables, clusterId: o.clusterId, logger: o.logger, ...(o.clusterCidr ? { clusterCidr: o.clusterCidr } : {}) }) : undefined
    this.catalog = this.readCached()
  }

  /** The Services and Endpoints held now (for the DNS server and tests). */
  current(): { services: ServicesMessage['services']; endpoints: ServicesMessage['endpoints']; revision: number } {
    return { services: this.catalog?.services ?? [], endpoints: this.catalog?.endpoints ?? [], revision: this.catalog?.revision ?? 0 }
  }

  /** Whether the DNS server listens (pods are then given it as their nameserver). */
  get dnsListening(): boolean {
    return this.dnsServer !== undefined
  }

  /** The DNS server's port (it may have been asked for any free one). */
  get dnsPort(): number | undefined {
    return this.dnsServer?.port
  }

  /** Applies the kept catalog, starts the DNS server (if asked) and the resync timer. */
  async start(): Promise<void> {
    if (this.o.dns) {
      const { host, port, upstreams, prepare } = this.o.dns
      try {
        await prepare?.()
        this.dnsServer = await startDnsServer({ host, port, upstreams, cluster: () => this.current(), logger: this.o.logger })
      } catch (err) {
        this.log.error({ err: (err as Error).message, host, port }, 'the cluster DNS server could not start; pods get the node\'s resolvers')
      }
    }
    this.apply()
    await this.idle()
    this.scheduleResync()
  }

  /** For the bus: a catalog from the hub. */
  readonly onMessage = (_topic: string, payload: Buffer): void => {
    const decoded = decodeServicesMessage(payload)
    if (!decoded.ok) {
      this.log.warn({ reason: decoded.reason }, 'dropped an invalid service catalog from the hub')
      return
    }
    const msg = decoded.message
    if (this.catalog && msg.revision < this.catalog.revision) return
    this.catalog = msg
    try {
      writeFileAtomic(join(this.o.dir, CATALOG_FILE), JSON.stringify(msg))
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not keep the service catalog on disk; it is applied anyway')
    }
    this.apply()
  }

  /** Resolves once the rules for the latest catalog are applied (or failed). */
  async idle(): Promise<void> {
    let seen: Promise<void> | undefined
    while (seen !== this.applying) {
      seen = this.applying
      await seen
    }
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.timer?.cancel()
    await this.idle()
    await this.dnsServer?.close()
  }

  private apply(): void {
    if (!this.proxy || this.stopped) return
    const { services, endpoints, revision } = this.current()
    this.applying = this.applying
      .then(() => this.proxy!.sync(services, endpoints))
      .then(
        () => this.log.debug({ revision, services: services.length }, 'service rules match the catalog'),
        (err) => this.log.error({ err: (err as Error).message }, 'could not program the service rules; trying again at the next catalog or resync'),
      )
  }

  private scheduleResync(): void {
    if (this.stopped) return
    this.timer = this.o.clock.setTimeout(() => {
      this.apply()
      this.scheduleResync()
    }, this.o.resyncMs ?? DEFAULT_RESYNC_MS)
  }

  private readCached(): ServicesMessage | undefined {
    let raw: Buffer
    try {
      raw = readFileSync(join(this.o.dir, CATALOG_FILE))
    } catch {
      return undefined
    }
    const decoded = decodeServicesMessage(raw)
    if (decoded.ok) return decoded.message
    this.log.warn({ reason: decoded.reason }, 'ignored the kept service catalog')
    return undefined
  }
}
