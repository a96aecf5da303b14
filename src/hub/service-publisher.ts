// The cluster-wide services topic (`bramble/v1/cluster/services`): every Service and its
// Endpoints (service-catalog.ts), retained, so an agent gets the current catalog whenever it
// subscribes (also after a reconnect), published again when one changes. The revision is the
// newest store revision seen, so agents keep the newest catalog. Nodes may read this topic and
// never write it (broker-acl.ts).

import { isDeepStrictEqual } from 'node:util'
import { clusterTopic } from '../api/protocol.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { MAX_SERVICES_PAYLOAD_BYTES, serviceCatalog, type ServicesMessage } from '../mesh/service-catalog.js'
import type { Informer } from './informer.js'

export interface ServicePublisherOptions {
  bus: Bus
  services: Informer
  endpoints: Informer
  clock: Clock
  logger: Logger
  /** Changes within this window go out as one message. */
  coalesceMs?: number
}

export class ServicePublisher {
  private readonly log: Logger
  private published: ServicesMessage | undefined
  private revision = 0
  private timer: { cancel(): void } | undefined
  private sending: Promise<void> = Promise.resolve()
  private stopConnectionWatch: (() => void) | undefined
  private stopped = false

  constructor(private readonly o: ServicePublisherOptions) {
    this.log = o.logger.child({ component: 'service-publisher' })
  }

  /** Call once the bus is connected and the informers synced. */
  start(): void {
    for (const informer of [this.o.services, this.o.endpoints]) {
      for (const o of informer.list()) this.seen(o.metadata.resourceVersion)
      informer.onChange((_type, o) => {
        this.seen(o.metadata.resourceVersion)
        this.schedule()
      })
    }
    // A restarted broker has lost its retained messages: publish again on every new session.
    this.stopConnectionWatch = this.o.bus.onConnectionChange((up) => {
      if (!up) return
      this.published = undefined
      this.schedule()
    })
    this.schedule()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.timer?.cancel()
    this.stopConnectionWatch?.()
    await this.sending
  }

  private seen(resourceVersion: string | undefined): void {
    const n = Number(resourceVersion)
    if (Number.isSafeInteger(n) && n > this.revision) this.revision = n
  }

  private schedule(): void {
    if (this.stopped || this.timer) return
    this.timer = this.o.clock.setTimeout(() => {
      this.timer = undefined
      this.sending = this.sending.then(() => this.publish())
    }, this.o.coalesceMs ?? 50)
  }

  private async publish(): Promise<void> {
    const catalog = serviceCatalog(this.o.services.list(), this.o.endpoints.list(), this.revision)
    if (this.published && isDeepStrictEqual(catalog.services, this.published.services) && isDeepStrictEqual(catalog.endpoints, this.published.endpoints)) return
    const payload = JSON.stringify(catalog)
    if (Buffer.byteLength(payload) > MAX_SERVICES_PAYLOAD_BYTES) {
      this.log.error({ bytes: Buffer.byteLength(payload), limit: MAX_SERVICES_PAYLOAD_BYTES, services: catalog.services.length }, 'the service catalog is too large to send; nodes keep the previous one')
      return
    }
    try {
      await this.o.bus.publish(clusterTopic('services'), payload, { qos: 1, retain: true })
      this.published = catalog
      this.log.debug({ revision: catalog.revision, services: catalog.services.length }, 'published the service catalog')
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not publish the service catalog; trying again at the next change or reconnect')
    }
  }
}
