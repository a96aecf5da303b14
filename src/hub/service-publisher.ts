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
import { RetainedTopic } from './retained-topic.js'

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
  private revision = 0
  private readonly topic: RetainedTopic<ServicesMessage>

  constructor(private readonly o: ServicePublisherOptions) {
    const log = o.logger.child({ component: 'service-publisher' })
    this.topic = new RetainedTopic<ServicesMessage>({
      bus: o.bus,
      topic: clusterTopic('services'),
      clock: o.clock,
      log,
      coalesceMs: o.coalesceMs ?? 50,
      what: 'the service catalog',
      build: () => {
        const catalog = serviceCatalog(o.services.list(), o.endpoints.list(), this.revision)
        const payload = JSON.stringify(catalog)
        if (Buffer.byteLength(payload) <= MAX_SERVICES_PAYLOAD_BYTES) return { value: catalog, payload }
        log.error({ bytes: Buffer.byteLength(payload), limit: MAX_SERVICES_PAYLOAD_BYTES, services: catalog.services.length }, 'the service catalog is too large to send; nodes keep the previous one')
        return undefined
      },
      // The revision alone changing is no news: only what the Services and Endpoints say.
      same: (a, b) => isDeepStrictEqual(a.services, b.services) && isDeepStrictEqual(a.endpoints, b.endpoints),
      onPublished: (catalog) => log.debug({ revision: catalog.revision, services: catalog.services.length }, 'published the service catalog'),
    })
  }

  /** Call once the bus is connected and the informers synced. */
  start(): void {
    for (const informer of [this.o.services, this.o.endpoints]) {
      for (const o of informer.list()) this.seen(o.metadata.resourceVersion)
      informer.onChange((_type, o) => {
        this.seen(o.metadata.resourceVersion)
        this.topic.changed()
      })
    }
    this.topic.start()
  }

  stop(): Promise<void> {
    return this.topic.stop()
  }

  private seen(resourceVersion: string | undefined): void {
    const n = Number(resourceVersion)
    if (Number.isSafeInteger(n) && n > this.revision) this.revision = n
  }
}
