// The agent's MQTT session with the hub: connecting until the broker answers, with the node's Last
// Will and its subscriptions in place before the first CONNECT. The hub unreachable is retried
// quietly (pods run on from the replica); a certificate failure is said once, in words to act on.

import type { JoinResponse } from '../api/join.js'
import { encodeMessage, upTopic } from '../api/protocol.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { connectMqttBus, type MqttBus, type MqttBusOptions } from '../lib/mqtt-bus.js'
import { explainTlsFailure, tlsFailureKind, type TlsFailureKind } from '../lib/tls-failure.js'

export interface HubSessionOptions {
  identity: JoinResponse
  node: string
  subscriptions: NonNullable<MqttBusOptions['subscriptions']>
  clock: Clock
  /** The bus's own logger. */
  busLogger: Logger
  /** The agent's logger: unreachable hub and certificate failures. */
  log: Logger
  connectAttemptMs: number
  reconnect?: { minMs: number; maxMs: number }
  /** True once the agent is stopping: no more attempts, and a session that comes too late is closed. */
  closed: () => boolean
}

/** Connects until a session is up; undefined when the agent stopped first. */
export async function connectToHub(o: HubSessionOptions): Promise<MqttBus | undefined> {
  const { identity, node, clock, log } = o
  let lastCertificateFailure: TlsFailureKind | undefined
  while (!o.closed()) {
    try {
      const b = await connectMqttBus({
        url: identity.mqtt.url,
        username: identity.mqtt.username,
        password: identity.mqtt.password,
        clientId: identity.mqtt.clientId,
        ca: identity.ca,
        logger: o.busLogger,
        will: { topic: upTopic(node, 'presence'), payload: encodeMessage({ online: false, at: clock.now() }), qos: 1, retain: true },
        subscriptions: o.subscriptions,
        connectTimeoutMs: o.connectAttemptMs,
        ...(o.reconnect ? { reconnect: o.reconnect } : {}),
      })
      if (o.closed()) {
        await b.close()
        return undefined
      }
      return b
    } catch (err) {
      if (o.closed()) return undefined
      const certificate = await explainTlsFailure(err, `the MQTT broker at ${identity.mqtt.url}`, identity.apiServer, () => clock.now())
      if (!certificate) {
        log.warn({ err: (err as Error).message, url: identity.mqtt.url }, 'hub unreachable; pods keep running from the replica, retrying')
        continue
      }
      // A certificate failure fails fast: said once (until it changes), then retried at the usual pace.
      if (tlsFailureKind(err) !== lastCertificateFailure) log.error({ url: identity.mqtt.url }, certificate)
      lastCertificateFailure = tlsFailureKind(err)
      await new Promise<void>((resolve) => clock.setTimeout(resolve, o.connectAttemptMs))
    }
  }
  return undefined
}
