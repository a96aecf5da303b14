// The embedded MQTT 3.1.1 broker (Aedes) over TLS. Authentication and authorization are the
// hooks below, all decided by broker-acl.ts and node-credentials.ts: unknown users and wrong
// passwords are refused at CONNECT, a node may publish only under its own `up/`, subscribe only to
// its own `down/` and the cluster topics, and receives nothing else even by accident (the forward
// hook checks each delivery again). A revoked node is disconnected at once.

import { Aedes, type AuthenticateError, type Client } from 'aedes'
import { createServer, type Server } from 'node:tls'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { MAX_PAYLOAD_BYTES, UP_NAMES } from '../api/protocol.js'
import { duplexPair } from '../lib/duplex-pair.js'
import type { Logger } from '../lib/logger.js'
import { clientIdAllowed, describePrincipal, mayPublish, mayReceive, maySubscribe, principalOf, type Principal } from './broker-acl.js'
import { IndexedMemoryPersistence } from './broker-retained.js'
import { limitPacketSize } from './mqtt-packet-limit.js'
import type { NodeCredentials } from './node-credentials.js'

export interface EmbeddedBrokerOptions {
  /** 0 picks a free port. */
  port: number
  host?: string
  tls: { key: string; cert: string }
  credentials: NodeCredentials
  logger: Logger
}

export interface EmbeddedBroker {
  port: number
  /** `mqtts://<host>:<port>` */
  url: string
  /** Serves a new certificate from the next TLS handshake on; connected clients keep theirs. */
  setTls(tls: { key: string; cert: string }): void
  /**
   * A new connection from inside this process, in memory (no TCP, no TLS): the hub's own client.
   * It authenticates at CONNECT like any other and answers to the same ACL.
   */
  connectInProcess(): Duplex
  close(): Promise<void>
}

export class BrokerStartError extends Error {
  readonly code = 'BRAMBLE_BROKER_START_FAILED'
  constructor(readonly host: string, readonly port: number, cause: unknown) {
    super(`the embedded MQTT broker could not listen on ${host}:${port}: ${(cause as Error)?.message ?? String(cause)}; pick another --mqtt-port`, { cause })
  }
}

// MQTT CONNACK return codes (3.1.1, section 3.2.2.3).
const IDENTIFIER_REJECTED = 2
const BAD_USERNAME_OR_PASSWORD = 4
const NOT_AUTHORIZED = 5

/**
 * Largest MQTT packet a node (or an unauthenticated client) may send: four times the largest
 * message a node may send (so the intake, not the broker, refuses a message just over its kind's
 * limit, with a reason), far below MQTT's own 256 MB.
 */
export const MAX_CLIENT_PACKET_BYTES = 4 * Math.max(...UP_NAMES.map((name) => MAX_PAYLOAD_BYTES[name]))

function authError(returnCode: number, message: string): AuthenticateError {
  return Object.assign(new Error(message), { returnCode }) as AuthenticateError
}

/** Logs each distinct refusal once, so a misbehaving node cannot flood the log. */
class RefusalLog {
  private readonly seen = new Set<string>()
  constructor(private readonly log: Logger, private readonly limit = 10_000) {}
  refuse(fields: Record<string, unknown>, message: string): void {
    const key = JSON.stringify(fields)
    if (this.seen.has(key)) return
    if (this.seen.size >= this.limit) this.seen.clear()
    this.seen.add(key)
    this.log.warn(fields, message)
  }
}

export async function startEmbeddedBroker(opts: EmbeddedBrokerOptions): Promise<EmbeddedBroker> {
  const log = opts.logger.child({ component: 'mqtt-broker' })
  const refusals = new RefusalLog(log)
  const principals = new WeakMap<Client, Principal>()
  const byClientId = new Map<string, Client>()
  const principalFor = (client: Client | null): Principal | undefined => (client ? principals.get(client) : { kind: 'hub' })

  const broker = await Aedes.createBroker({
    maxClientsIdLength: 128, // node names run to 63 characters
    // No cap on messages in delivery at once. With Aedes' default cap (100), one subscriber slow
    // to read (the hub's own connection behind 10,000 nodes) fills every slot and the rest wait in
    // one queue; when a slot frees, each queued message that completes at once (no subscriber, or
    // only the broker's own $SYS listeners) starts the next inside itself, so thousands of them
    // overflowed the stack (aedes#193, #311; test/hub/broker-backlog.test.ts), and one slow reader
    // held up every node's traffic. Uncapped, each message starts delivery as it is published, in
    // publish order (so a topic's messages keep their order); Aedes reads more of a client's socket
    // as its earlier packets are handed to the subscribers' sockets, which still holds back a
    // publisher whose readers lag.
    concurrency: 0,
    // Retained messages found by walking topic levels, not by testing every one per subscription.
    persistence: new IndexedMemoryPersistence(),
    authenticate(client, username, password, done) {
      const principal = principalOf(username)
      if (!principal || !opts.credentials.verify(username, password)) {
        refusals.refuse({ username: username ?? null, clientId: client.id, action: 'connect' }, 'refused an MQTT connection: unknown user or wrong password')
        return done(authError(BAD_USERNAME_OR_PASSWORD, 'bad username or password'), false)
      }
      if (!clientIdAllowed(principal, client.id)) {
        refusals.refuse({ username, clientId: client.id, action: 'connect' }, 'refused an MQTT connection: the client id must be the node name')
        return done(authError(IDENTIFIER_REJECTED, 'client id not allowed for this user'), false)
      }
      // Mosquitto 2.0 refuses a Last Will the client could not publish itself; so do we, at CONNECT
      // rather than when the will fires.
      const will = (client as Client & { _will?: { topic: string } | null })._will
      if (will && !mayPublish(principal, will.topic)) {
        refusals.refuse({ who: describePrincipal(principal), topic: will.topic, action: 'will' }, 'refused an MQTT connection whose Last Will is outside the client\'s topics')
        return done(authError(NOT_AUTHORIZED, 'will topic not allowed'), false)
      }
      principals.set(client, principal)
      done(null, true)
    },
    authorizePublish(client, packet, done) {
      const principal = principalFor(client)
      if (principal && mayPublish(principal, packet.topic)) return done(null)
      refusals.refuse({ who: principal ? describePrincipal(principal) : 'unknown', topic: packet.topic, action: 'publish' }, 'refused an MQTT publish outside the client\'s topics')
      done(new Error(`publish to ${packet.topic} not allowed`))
    },
    authorizeSubscribe(client, subscription, done) {
      const principal = principalFor(client)
      if (principal && maySubscribe(principal, subscription.topic)) return done(null, subscription)
      refusals.refuse({ who: principal ? describePrincipal(principal) : 'unknown', topic: subscription.topic, action: 'subscribe' }, 'refused an MQTT subscription outside the client\'s topics')
      done(null, null) // SUBACK 0x80 for this filter; the connection stays up
    },
    authorizeForward(client, packet) {
      const principal = principals.get(client)
      if (principal && mayReceive(principal, packet.topic)) return packet
      refusals.refuse({ who: principal ? describePrincipal(principal) : 'unknown', topic: packet.topic, action: 'deliver' }, 'withheld an MQTT message from a client not allowed to read it')
      return null
    },
  })

  broker.on('clientReady', (client) => {
    const previous = byClientId.get(client.id)
    if (previous && previous !== client) log.info({ clientId: client.id }, 'a newer connection replaced this client')
    byClientId.set(client.id, client)
  })
  broker.on('clientDisconnect', (client) => {
    if (byClientId.get(client.id) === client) byClientId.delete(client.id)
  })
  broker.on('clientError', (client, err) => log.debug({ clientId: client.id, err: err.message }, 'MQTT client error'))
  broker.on('connectionError', (client, err) => log.debug({ clientId: client?.id, err: err.message }, 'MQTT connection error'))

  const stopWatching = opts.credentials.onChange(({ kind, node }) => {
    if (kind !== 'revoked') return
    const client = byClientId.get(node)
    if (!client) return
    log.info({ node }, 'disconnecting a node whose credentials were revoked')
    client.close()
  })

  const server: Server = createServer({ key: opts.tls.key, cert: opts.tls.cert, minVersion: 'TLSv1.2' }, (socket) => {
    const client = broker.handle(socket)
    // The hub's own connection is trusted with its larger messages; everyone else is held to the limit.
    const limit = () => (principals.get(client)?.kind === 'hub' ? Number.POSITIVE_INFINITY : MAX_CLIENT_PACKET_BYTES)
    limitPacketSize(socket, limit, (reason) => {
      const principal = principals.get(client)
      refusals.refuse({ who: principal ? describePrincipal(principal) : 'unauthenticated', remote: socket.remoteAddress, reason, action: 'packet' }, 'closed an MQTT connection that sent an oversized or malformed packet')
    })
  })
  server.on('tlsClientError', (err) => log.debug({ err: err.message }, 'TLS handshake with an MQTT client failed'))
  const host = opts.host ?? '0.0.0.0'
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(opts.port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
  } catch (err) {
    stopWatching()
    await new Promise<void>((resolve) => broker.close(() => resolve()))
    throw new BrokerStartError(host, opts.port, err)
  }
  const port = (server.address() as AddressInfo).port
  const urlHost = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host
  log.info({ host, port }, 'embedded MQTT broker listening')

  let closing: Promise<void> | undefined
  return {
    port,
    url: `mqtts://${urlHost}:${port}`,
    setTls: (tls) => server.setSecureContext({ key: tls.key, cert: tls.cert, minVersion: 'TLSv1.2' }),
    connectInProcess() {
      const [brokerEnd, clientEnd] = duplexPair()
      broker.handle(brokerEnd)
      return clientEnd
    },
    close() {
      closing ??= (async () => {
        stopWatching()
        const serverClosed = new Promise<void>((resolve) => server.close(() => resolve()))
        await new Promise<void>((resolve) => broker.close(() => resolve()))
        await serverClosed
      })()
      return closing
    },
  }
}
