// A Bus that counts what passes through it, for the /metrics of hub and agent: every publish
// (out) and every message handed to a subscription handler (in), by the topic's last level
// (`heartbeat`, `desired`, `mesh`), which is the message's kind in the protocol's topics.

import type { Bus, BusHandler } from './bus.js'

export type BusDirection = 'in' | 'out'
export type BusCounter = (direction: BusDirection, kind: string) => void

/** The message kind a topic carries: its last level. */
export function topicKind(topic: string): string {
  return topic.slice(topic.lastIndexOf('/') + 1)
}

/** Counts incoming messages, then hands them to `handler`. */
export function countedHandler(handler: BusHandler, count: BusCounter): BusHandler {
  return (topic, payload) => {
    count('in', topicKind(topic))
    handler(topic, payload)
  }
}

/** `bus` with its publishes counted; handlers subscribed through it are counted too. */
export function meterBus(bus: Bus, count: BusCounter): Bus {
  const wrapped = new Map<BusHandler, BusHandler>()
  return {
    get connected() {
      return bus.connected
    },
    publish(topic, payload, options) {
      count('out', topicKind(topic))
      return bus.publish(topic, payload, options)
    },
    subscribe(filter, handler, options) {
      let counted = wrapped.get(handler)
      if (!counted) wrapped.set(handler, (counted = countedHandler(handler, count)))
      return bus.subscribe(filter, counted, options)
    },
    unsubscribe(filter, handler) {
      return bus.unsubscribe(filter, handler && (wrapped.get(handler) ?? handler))
    },
    onConnectionChange: (cb) => bus.onConnectionChange(cb),
    close: () => bus.close(),
  }
}
