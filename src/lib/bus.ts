// The Bus port: publish/subscribe over a message broker. The MQTT implementation is in
// mqtt-bus.ts; hub and agent take a Bus through their constructors.

export type QoS = 0 | 1

export interface PublishOptions {
  qos: QoS
  retain: boolean
}

export type BusHandler = (topic: string, payload: Buffer) => void

export interface Bus {
  /** True while a session with the broker is established. */
  readonly connected: boolean
  /**
   * Resolves once the broker has the message (QoS 1: PUBACK received). While disconnected, QoS 1
   * messages wait in the client's outgoing queue and go out on reconnect; QoS 0 ones are dropped.
   */
  publish(topic: string, payload: Buffer | string, options: PublishOptions): Promise<void>
  /**
   * Subscribes `handler` to `filter` (MQTT wildcards allowed). Rejects with a BusSubscribeRefusedError
   * when the broker refuses the subscription. Subscriptions are restored after a reconnect.
   */
  subscribe(filter: string, handler: BusHandler, options?: { qos: QoS }): Promise<void>
  /** Removes `handler`; the broker subscription goes when its last handler does. */
  unsubscribe(filter: string, handler?: BusHandler): Promise<void>
  /** Calls `cb` on every change of `connected`; returns a function that removes `cb`. */
  onConnectionChange(cb: (connected: boolean) => void): () => void
  /** Ends the session cleanly (no Last Will). */
  close(): Promise<void>
}

export abstract class BusError extends Error {
  abstract readonly code: string
}

export class BusSubscribeRefusedError extends BusError {
  readonly code = 'BRAMBLE_BUS_SUBSCRIBE_REFUSED'
  constructor(readonly filter: string) {
    super(`the broker refused the subscription to "${filter}"; check this client's topic permissions`)
  }
}

export class BusClosedError extends BusError {
  readonly code = 'BRAMBLE_BUS_CLOSED'
  constructor() {
    super('the bus is closed')
  }
}

/** True when an MQTT topic filter matches a topic (`+` one level, `#` the rest). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  // [MQTT-4.7.2-1]: filters starting with a wildcard do not match $-topics.
  if ((f[0] === '#' || f[0] === '+') && topic.startsWith('$')) return false
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return true
    if (i >= t.length) return false
    if (f[i] !== '+' && f[i] !== t[i]) return false
  }
  return f.length === t.length
}
