// Everything the agent sends up, through one place. With a bus, QoS 1 messages go to MQTT.js,
// which holds them across a lost link; before the first connection there is no bus, so the
// latest pod statuses, node status and ack, and a bounded tail of events, wait here and go out
// when it comes. Events are batched: one message per second at most, up to 50 events each.

import { DELIVERY, encodeMessage, upTopic, type UpMessages, type UpName } from '../api/protocol.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'

const EVENTS_PER_MESSAGE = 50
const EVENTS_FLUSH_MS = 1_000
const EVENTS_KEPT_OFFLINE = 500
const CLOCK_STAMPED: ReadonlySet<UpName> = new Set<UpName>(['heartbeat', 'pod-status', 'events'])

export class Uplink {
  private bus: Bus | undefined
  private readonly podStatus = new Map<string, UpMessages['pod-status']>()
  private nodeStatus: UpMessages['node-status'] | undefined
  private ack: UpMessages['ack'] | undefined
  private events: Array<Record<string, unknown>> = []
  private eventTimer: { cancel(): void } | undefined

  constructor(private readonly node: string, private readonly clock: Clock, private readonly log: Logger) {}

  get connected(): boolean {
    return this.bus?.connected ?? false
  }

  /** From now on messages go to `bus`; what waited goes first. */
  attach(bus: Bus): void {
    this.bus = bus
    for (const m of this.podStatus.values()) this.send('pod-status', m)
    this.podStatus.clear()
    if (this.nodeStatus) this.send('node-status', this.nodeStatus)
    if (this.ack) this.send('ack', this.ack)
    this.nodeStatus = this.ack = undefined
    this.flushEvents()
  }

  detach(): void {
    this.bus = undefined
  }

  publish<K extends UpName>(name: K, message: UpMessages[K]): Promise<void> {
    if (this.bus) return this.send(name, message)
    if (name === 'pod-status') {
      const m = message as UpMessages['pod-status']
      this.podStatus.set(`${m.namespace}/${m.name}/${m.uid}`, m)
    } else if (name === 'node-status') this.nodeStatus = message as UpMessages['node-status']
    else if (name === 'ack') this.ack = message as UpMessages['ack']
    // Anything else (heartbeat, sync, rpc-reply, presence) means nothing later.
    return Promise.resolve()
  }

  event(e: Record<string, unknown>): void {
    this.events.push(e)
    if (this.events.length > EVENTS_KEPT_OFFLINE) this.events.splice(0, this.events.length - EVENTS_KEPT_OFFLINE)
    if (this.bus && this.events.length >= EVENTS_PER_MESSAGE) this.flushEvents()
    else this.eventTimer ??= this.clock.setTimeout(() => this.flushEvents(), EVENTS_FLUSH_MS)
  }

  /** Sends what is batched now (and on close). */
  flushEvents(): void {
    this.eventTimer?.cancel()
    this.eventTimer = undefined
    if (!this.bus) {
      if (this.events.length > 0) this.eventTimer = this.clock.setTimeout(() => this.flushEvents(), EVENTS_FLUSH_MS)
      return
    }
    while (this.events.length > 0) void this.send('events', { events: this.events.splice(0, EVENTS_PER_MESSAGE) })
  }

  close(): void {
    this.eventTimer?.cancel()
    this.eventTimer = undefined
  }

  private send<K extends UpName>(name: K, message: UpMessages[K]): Promise<void> {
    const bus = this.bus!
    // The node's clock as it sends: the hub learns the node's clock offset and corrects the times these carry.
    const stamped = CLOCK_STAMPED.has(name) ? { ...message, at: this.clock.now() } : message
    return bus.publish(upTopic(this.node, name), encodeMessage(stamped), DELIVERY[name]).catch((err) => {
      this.log.warn({ component: 'uplink', topic: name, err: (err as Error).message }, 'could not publish to the hub')
    })
  }
}
