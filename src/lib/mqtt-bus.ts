// The Bus over MQTT 3.1.1 (MQTT.js). A persistent session (clean: false) plus QoS 1 means the
// broker keeps what arrives for this client while it is away, and MQTT.js keeps what this client
// publishes while the link is down; both flow once the link is back. Reconnects back off
// exponentially with full jitter, capped, so a thousand nodes do not return in lock step after a
// hub restart.

import type { Duplex } from 'node:stream'
import mqtt, { MqttClient, type IClientOptions } from 'mqtt'
import type { Logger } from './logger.js'
import { tlsFailureKind } from './tls-failure.js'
import { BusClosedError, BusSubscribeRefusedError, topicMatches, type Bus, type BusHandler, type PublishOptions, type QoS } from './bus.js'

export interface MqttBusOptions {
  /** `mqtts://host:port` (TLS, the default for Bramble) or `mqtt://host:port`. */
  url: string
  /**
   * A new stream to the broker for each connection, used instead of connecting to `url` (which
   * then only names the broker in messages): the hub's own link to its embedded broker.
   */
  stream?: () => Duplex
  username: string
  password: string
  /** PEM of the CA the broker's certificate must chain to; the only CA trusted. */
  ca?: string
  clientId: string
  will?: { topic: string; payload: Buffer | string; qos: QoS; retain: boolean }
  logger: Logger
  reconnect?: { minMs: number; maxMs: number }
  keepaliveSec?: number
  /** How long `connectMqttBus` waits for the first session before it gives up. */
  connectTimeoutMs?: number
  /**
   * Subscriptions in place before the first CONNECT. A persistent session delivers what was
   * queued for this client right after CONNACK; only handlers registered here catch those.
   */
  subscriptions?: Array<{ filter: string; handler: BusHandler; qos?: QoS }>
}

export class MqttConnectError extends Error {
  readonly code = 'BRAMBLE_BUS_CONNECT_FAILED'
  constructor(readonly url: string, cause: unknown) {
    super(`could not connect to the MQTT broker at ${url}: ${(cause as Error)?.message ?? String(cause)}`, { cause })
  }
}

/** Reconnect back-off unless the caller gives its own: from 200 ms, never more than 5 s apart. */
export const DEFAULT_RECONNECT = { minMs: 200, maxMs: 5_000 }
/** How long close() waits for the broker to acknowledge what is in flight. */
const CLOSE_GRACE_MS = 2_000

/** Delay before reconnect attempt `attempt` (0-based): full jitter over an exponential ceiling. */
export function backoffDelayMs(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30))
  return Math.round(minMs + random() * Math.max(0, ceiling - minMs))
}

interface Subscription {
  qos: QoS
  handlers: Set<BusHandler>
}

export class MqttBus implements Bus {
  private readonly subs = new Map<string, Subscription>()
  private readonly listeners = new Set<(connected: boolean) => void>()
  private attempt = 0
  private reconnectTimer: NodeJS.Timeout | undefined
  private closed = false
  /** Rejections of the publishes waiting for the broker's acknowledgement. */
  private readonly unacknowledged = new Set<(err: Error) => void>()
  private wasConnected = false

  constructor(private readonly client: MqttClient, private readonly opts: MqttBusOptions, private readonly log: Logger) {
    for (const { filter, handler, qos } of opts.subscriptions ?? []) {
      const sub = this.subs.get(filter)
      if (sub) sub.handlers.add(handler)
      else this.subs.set(filter, { qos: qos ?? 1, handlers: new Set([handler]) })
    }
    client.on('connect', (connack) => {
      this.attempt = 0
      this.log.info({ sessionPresent: connack.sessionPresent }, 'connected to the MQTT broker')
      // Listeners hear "connected" only once the subscriptions are back: an agent's first act is to
      // ask for what changed, and an answer that arrives before the broker has its subscription
      // again (a restarted broker forgets sessions) would be lost.
      void this.restoreSubscriptions().then(() => {
        if (this.client.connected) this.setConnected(true)
      })
    })
    client.on('close', () => {
      this.setConnected(false)
      this.scheduleReconnect()
    })
    client.on('error', (err) => this.log.warn({ err: err.message, code: (err as any).code }, 'MQTT connection error'))
    client.on('message', (topic, payload) => this.dispatch(topic, payload))
  }

  get connected(): boolean {
    return this.client.connected
  }

  publish(topic: string, payload: Buffer | string, options: PublishOptions): Promise<void> {
    if (this.closed) return Promise.reject(new BusClosedError())
    return new Promise((resolve, reject) => {
      this.unacknowledged.add(reject)
      this.client.publish(topic, payload, { qos: options.qos, retain: options.retain }, (err) => {
        this.unacknowledged.delete(reject)
        if (err) reject(err)
        else resolve()
      })
    })
  }

  async subscribe(filter: string, handler: BusHandler, options: { qos: QoS } = { qos: 1 }): Promise<void> {
    if (this.closed) throw new BusClosedError()
    const existing = this.subs.get(filter)
    if (existing) {
      existing.handlers.add(handler)
      if (existing.qos >= options.qos) return
      existing.qos = options.qos
    } else {
      this.subs.set(filter, { qos: options.qos, handlers: new Set([handler]) })
    }
    try {
      await this.sendSubscribe(filter, options.qos)
    } catch (err) {
      this.subs.get(filter)?.handlers.delete(handler)
      if (this.subs.get(filter)?.handlers.size === 0) this.subs.delete(filter)
      throw err
    }
  }

  async unsubscribe(filter: string, handler?: BusHandler): Promise<void> {
    const sub = this.subs.get(filter)
    if (!sub) return
    if (handler) sub.handlers.delete(handler)
    else sub.handlers.clear()
    if (sub.handlers.size > 0) return
    this.subs.delete(filter)
    if (this.closed || !this.client.connected) return
    await new Promise<void>((resolve, reject) => this.client.unsubscribe(filter, (err) => (err ? reject(err) : resolve())))
  }

  onConnectionChange(cb: (connected: boolean) => void): () => void {
    this.listeners.add(cb)
    return () => this.listeners.delete(cb)
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    clearTimeout(this.reconnectTimer)
    await new Promise<void>((resolve) => {
      // Disconnected, nothing in flight can be acknowledged: waiting for it would wait forever
      // (a hub told to stop after its broker died never stopped).
      if (!this.client.connected) return void this.client.end(true, {}, () => resolve())
      // Connected, in-flight messages get a moment to be acknowledged, then the connection goes.
      const giveUp = setTimeout(() => {
        this.client.stream?.destroy()
        resolve()
      }, CLOSE_GRACE_MS)
      this.client.end(false, {}, () => {
        clearTimeout(giveUp)
        resolve()
      })
    })
    this.failUnacknowledged()
    this.setConnected(false)
  }

  /** Publishes the broker never acknowledged fail with the bus: mqtt.js keeps a persistent session's callbacks forever. */
  private failUnacknowledged(): void {
    for (const reject of this.unacknowledged) reject(new BusClosedError())
    this.unacknowledged.clear()
  }

  /**
   * Drops the connection without a DISCONNECT packet, as a crash or a pulled cable would: the
   * broker publishes the Last Will. The bus stays closed afterwards.
   */
  abort(): void {
    this.closed = true
    clearTimeout(this.reconnectTimer)
    this.client.stream?.destroy()
    this.client.end(true)
    this.failUnacknowledged()
    this.setConnected(false)
  }

  private sendSubscribe(filter: string, qos: QoS): Promise<void> {
    if (!this.client.connected) {
      // Sent with the others once the session is up (restoreSubscriptions).
      return new Promise((resolve, reject) => {
        const off = this.onConnectionChange((up) => {
          if (!up) return
          off()
          this.sendSubscribe(filter, qos).then(resolve, reject)
        })
      })
    }
    return new Promise((resolve, reject) => {
      this.client.subscribe(filter, { qos }, (err, granted) => {
        if (err) return reject(err)
        if (!granted || granted.some((g) => g.qos === 128)) return reject(new BusSubscribeRefusedError(filter))
        resolve()
      })
    })
  }

  /** After every (re)connect: the broker may have lost the session, so subscribe again. */
  private async restoreSubscriptions(): Promise<void> {
    await Promise.all(
      [...this.subs].map(([filter, sub]) =>
        this.sendSubscribe(filter, sub.qos).catch((err) => this.log.error({ filter, err: (err as Error).message }, 'could not restore a subscription after reconnecting')),
      ),
    )
  }

  private dispatch(topic: string, payload: Buffer): void {
    for (const [filter, sub] of this.subs) {
      if (!topicMatches(filter, topic)) continue
      for (const handler of sub.handlers) {
        try {
          handler(topic, payload)
        } catch (err) {
          this.log.error({ topic, err: (err as Error).message }, 'a bus message handler threw')
        }
      }
    }
  }

  private setConnected(connected: boolean): void {
    if (connected === this.wasConnected) return
    this.wasConnected = connected
    for (const cb of [...this.listeners]) cb(connected)
  }

  private scheduleReconnect(): void {
    if (this.closed || this.reconnectTimer) return
    const { minMs, maxMs } = this.opts.reconnect ?? DEFAULT_RECONNECT
    const delay = backoffDelayMs(this.attempt++, minMs, maxMs)
    this.log.debug({ delayMs: delay, attempt: this.attempt }, 'reconnecting to the MQTT broker')
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined
      // Hand the stores back: reconnect() without them starts empty ones and would drop
      // the QoS 1 messages still waiting for their PUBACK.
      if (!this.closed && !this.client.connected) this.client.reconnect({ incomingStore: this.client.incomingStore, outgoingStore: this.client.outgoingStore })
    }, delay)
    this.reconnectTimer.unref?.()
  }
}

/**
 * Connects and resolves once the first session is established (or rejects with
 * MqttConnectError after `connectTimeoutMs`, default 30 s). Later losses reconnect on their own.
 */
export async function connectMqttBus(opts: MqttBusOptions): Promise<MqttBus> {
  const log = opts.logger.child({ component: 'mqtt-bus', clientId: opts.clientId })
  const url = new URL(opts.url)
  const clientOptions: IClientOptions = {
    clientId: opts.clientId,
    username: opts.username,
    password: opts.password,
    protocolVersion: 4,
    clean: false,
    keepalive: opts.keepaliveSec ?? 30,
    reconnectPeriod: 0, // reconnects are ours: back-off with jitter
    connectTimeout: 10_000,
    queueQoSZero: false,
    writeCache: false, // mqtt-packet's cache of all 65,536 message ids costs ~6 MB of heap
    resubscribe: false, // restoreSubscriptions does it, knowing which were refused
    rejectUnauthorized: true,
    ...(opts.ca ? { ca: [opts.ca] } : {}),
    ...(url.hostname && !/^[\d.:[\]]+$/.test(url.hostname) ? { servername: url.hostname } : {}),
    ...(opts.will ? { will: { ...opts.will, payload: Buffer.from(opts.will.payload) } } : {}),
  }
  const client = opts.stream ? new MqttClient(opts.stream, { ...clientOptions, manualConnect: true }) : mqtt.connect(opts.url, { ...clientOptions, manualConnect: true })
  const bus = new MqttBus(client, opts, log)
  client.connect()
  await new Promise<void>((resolve, reject) => {
    let lastError: unknown = new Error('no answer from the broker')
    const onError = (err: Error) => {
      lastError = err
      // A certificate failure does not heal by retrying: say so now rather than after the timeout.
      if (!tlsFailureKind(err)) return
      cleanup()
      bus.abort()
      reject(new MqttConnectError(opts.url, err))
    }
    const timer = setTimeout(() => {
      cleanup()
      bus.abort()
      reject(new MqttConnectError(opts.url, lastError))
    }, opts.connectTimeoutMs ?? 30_000)
    const off = bus.onConnectionChange((up) => {
      if (!up) return
      cleanup()
      resolve()
    })
    const cleanup = () => {
      clearTimeout(timer)
      off()
      client.off('error', onError)
    }
    client.on('error', onError)
  })
  return bus
}
