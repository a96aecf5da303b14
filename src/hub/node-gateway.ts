// The hub's side of the node protocol, in one place hub.ts starts: the join routes, desired state
// going down, status coming up, node lifecycle and pod logs, over one MQTT connection of the
// hub's own (`bramble.hub:gateway`). Deleting a Node revokes its MQTT credentials at once (the
// embedded broker then disconnects it), and the join token it joined with cannot bring it back.

import { KINDS } from '../api/kinds.js'
import { ALL_UP_FILTER } from '../api/protocol.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import { countedHandler, meterBus, type BusCounter } from '../lib/metered-bus.js'
import { connectMqttBus, type MqttBusOptions } from '../lib/mqtt-bus.js'
import type { ExtraRoute, PodLogs, PodStreamUpgrade } from './api-server.js'
import { DesiredState } from './desired-state.js'
import { Heartbeats } from './heartbeats.js'
import { NodeHistory } from './node-history.js'
import { Informer } from './informer.js'
import { MeshPublisher } from './mesh-publisher.js'
import { ServicePublisher } from './service-publisher.js'
import { ANNOTATION_JOIN_TOKEN, joinRoutes } from './join-endpoint.js'
import type { NodeCredentials } from './node-credentials.js'
import { NodeLifecycle } from './node-lifecycle.js'
import { NodeStatusIntake } from './node-status-intake.js'
import { PodLogsRpc } from './pod-logs.js'
import { PodStreams } from './pod-streams.js'
import { PodStreamWebSockets } from './pod-stream-websocket.js'
import { ImageTransfers } from './image-transfers.js'
import { ImageSharing } from './image-sharing.js'
import { EventRecorder } from './event-recorder.js'
import type { Registry } from './registry.js'
import { ApiError } from './api-errors.js'
import type { HubTokens } from './tokens.js'

const kind = (name: string) => KINDS.find((k) => k.kind === name)!

export const GATEWAY_CLIENT_ID_SUFFIX = 'gateway'

export interface NodeGatewayOptions {
  registry: Registry
  tokens: HubTokens
  credentials: NodeCredentials
  /** The hub CA, PEM. */
  ca: string
  clusterId: string
  /** The API URL agents are told, e.g. https://10.0.0.1:6443; a function when the port is known only once the API listens. */
  apiServer: string | (() => string)
  /** The broker URL agents are told: the embedded broker's, or `--mqtt-url`. */
  brokerUrl: string | (() => string)
  /**
   * The hub's own connection: url (may differ from brokerUrl, e.g. loopback), ca; username,
   * password and clientId default to the hub's credentials and `bramble.hub:gateway`.
   */
  busOptions?: Partial<MqttBusOptions> & { url: string }
  /** Or a connected Bus to use instead (closed by close()). */
  bus?: Bus
  clock: Clock
  logger: Logger
  /** The agents' heartbeat interval; silence is judged against nodeGracePeriodMs. */
  heartbeatIntervalMs?: number
  nodeGracePeriodMs?: number
  /** Delay that coalesces bursts of changes into one desired-state message. */
  coalesceMs?: number
  /** How long a node has to answer an RPC (logs). */
  rpcTimeoutMs?: number
  /** Told of every MQTT message the gateway receives or sends, by kind (the /metrics counter). */
  countMessage?: BusCounter
  /** Told how long each heartbeat took from its node to being recorded, in seconds (the /metrics histogram). */
  heartbeatLag?: (seconds: number) => void
  /** Bramble's version: a joining agent must be of its minor version or the one before. */
  hubVersion?: string
  /** Where image archives wait for nodes to load them (`bramble image load`); absent, those routes are not served. */
  imagesDir?: string
  /** Whether extraRoutes include the join routes (default true); the hub serves them itself, on every hub. */
  joinRoutes?: boolean
}

export interface NodeGateway {
  /** For startApiServer: CA, join, join tokens. */
  extraRoutes: ExtraRoute[]
  /** For startApiServer: pod logs through the node. */
  podLogs: PodLogs
  /** For startApiServer: exec and port-forward through the node. */
  podStreams: PodStreamUpgrade
  heartbeats: Heartbeats
  /** The gateway's caches of Nodes and Pods (read by /metrics and metrics.k8s.io). */
  nodes: Informer
  pods: Informer
  /** Every node's last hour of heartbeat figures, for the dashboard. */
  history: NodeHistory
  desired: DesiredState
  lifecycle: NodeLifecycle
  /** Resolves once accepted status writes are done and no desired state is being sent. */
  idle(): Promise<void>
  close(): Promise<void>
}

export async function startNodeGateway(o: NodeGatewayOptions): Promise<NodeGateway> {
  const log = o.logger.child({ component: 'node-gateway' })
  if (!o.bus && !o.busOptions) throw new TypeError('startNodeGateway needs either bus or busOptions')
  if (o.heartbeatIntervalMs !== undefined && o.nodeGracePeriodMs !== undefined && o.nodeGracePeriodMs < 2 * o.heartbeatIntervalMs) {
    log.warn({ heartbeatIntervalMs: o.heartbeatIntervalMs, nodeGracePeriodMs: o.nodeGracePeriodMs }, 'the node grace period is shorter than two heartbeats: one lost heartbeat will mark a node NotReady')
  }

  const pods = new Informer(o.registry, kind('Pod'))
  const configMaps = new Informer(o.registry, kind('ConfigMap'))
  const secrets = new Informer(o.registry, kind('Secret'))
  const nodes = new Informer(o.registry, kind('Node'))
  const persistentVolumes = new Informer(o.registry, kind('PersistentVolume'))
  const history = new NodeHistory()
  const heartbeats = new Heartbeats(history)

  // The bus comes first in use but last in start: handlers need synced caches.
  let bus: Bus | undefined = o.bus
  const lazyBus: Bus = {
    get connected() {
      return bus?.connected ?? false
    },
    publish: (topic, payload, options) => bus!.publish(topic, payload, options),
    subscribe: (filter, handler, options) => bus!.subscribe(filter, handler, options),
    unsubscribe: (filter, handler) => bus!.unsubscribe(filter, handler),
    onConnectionChange: (cb) => bus!.onConnectionChange(cb),
    close: () => bus!.close(),
  }

  const desired = new DesiredState({ bus: lazyBus, pods, configMaps, secrets, nodes, persistentVolumes, clock: o.clock, logger: o.logger, coalesceMs: o.coalesceMs })
  const logs = new PodLogsRpc({ bus: lazyBus, clock: o.clock, logger: o.logger, timeoutMs: o.rpcTimeoutMs })
  const streams = new PodStreams({ bus: lazyBus, clock: o.clock, logger: o.logger, openTimeoutMs: o.rpcTimeoutMs })
  const streamSockets = new PodStreamWebSockets(streams, o.logger)
  const images = o.imagesDir ? new ImageTransfers({ dir: o.imagesDir, bus: lazyBus, nodes, credentials: o.credentials, clock: o.clock, logger: o.logger }) : undefined
  // A pod waiting for an image another node has gets it copied through the hub.
  if (images) {
    const events = new EventRecorder(o.registry, o.clock, o.logger, { component: 'image-sharing' })
    new ImageSharing({ pods, nodes, copy: (image, from, to) => images.copyImage(image, from, to), events, clock: o.clock, logger: o.logger }).start()
  }
  let intake: NodeStatusIntake
  const lifecycle = new NodeLifecycle({
    registry: o.registry,
    nodes,
    heartbeats,
    clock: o.clock,
    logger: o.logger,
    gracePeriodMs: o.nodeGracePeriodMs,
    reportedReady: (node) => intake.reportedReady(node),
  })
  intake = new NodeStatusIntake({
    registry: o.registry,
    pods,
    nodes,
    heartbeats,
    clock: o.clock,
    logger: o.logger,
    onSync: (node, revision) => desired.onSync(node, revision),
    onAck: (node, revision) => desired.onAck(node, revision),
    onRpcReply: (node, reply) => (streams.owns(reply.id) ? streams.onReply(node, reply) : images?.onReply(node, reply) || logs.onReply(node, reply)),
    onAlive: (node) => lifecycle.onMessage(node),
    onHeartbeat: (node) => desired.onHeartbeat(node),
    onOffline: (node) => lifecycle.onOffline(node),
    onHeartbeatLag: o.heartbeatLag,
  })

  /**
   * A Node deleted while no gateway ran (hubs sharing a store, between two leaders) left its
   * credentials behind: no deletion reached this one. A join makes the Node before the
   * credentials, so a name with credentials and no Node (read again from the store, not the cache,
   * which may not yet hold a Node joined through another hub a moment ago) was deleted.
   */
  async function revokeOrphans(): Promise<void> {
    for (const name of o.credentials.nodes()) {
      if (nodes.get(name)) continue
      const stored = await o.registry.get(kind('Node'), '', name).catch((err: unknown) => {
        if (err instanceof ApiError && err.reason === 'NotFound') return undefined
        throw err
      })
      if (stored) continue
      if (await o.credentials.revoke(name)) log.info({ node: name }, 'node deleted while no hub led: its MQTT credentials are revoked')
    }
  }

  nodes.onChange((type, node) => {
    if (type !== 'DELETED') return
    const name = node.metadata.name!
    desired.forget(name)
    heartbeats.forget(name)
    intake.forget(name)
    o.credentials.revoke(name, node.metadata.annotations?.[ANNOTATION_JOIN_TOKEN]).then(
      (revoked) => revoked && log.info({ node: name }, 'node deleted: its MQTT credentials are revoked'),
      (err) => log.error({ node: name, err }, 'could not revoke the credentials of a deleted node'),
    )
  })

  for (const informer of [nodes, pods, configMaps, secrets, persistentVolumes]) await informer.start()
  await revokeOrphans()
  desired.start()
  lifecycle.start()

  const count = o.countMessage
  const handleUp = count ? countedHandler(intake.handle, count) : intake.handle
  // QoS 1 keeps a message through a lost link. An in-memory link to the broker in this process is
  // lost only with the process (and the broker's sessions with it): QoS 0 spares the broker a
  // packet id, a session record and an acknowledgement for every node message.
  const upQos = o.busOptions?.stream ? 0 : 1
  try {
    if (bus) await bus.subscribe(ALL_UP_FILTER, handleUp, { qos: upQos })
    else {
      const hub = o.credentials.hubCredentials()
      bus = await connectMqttBus({
        username: hub.username,
        password: hub.password,
        clientId: `${hub.username}:${GATEWAY_CLIENT_ID_SUFFIX}`,
        logger: o.logger,
        ...o.busOptions!,
        subscriptions: [{ filter: ALL_UP_FILTER, handler: handleUp, qos: upQos }],
      })
    }
    if (count) bus = meterBus(bus, count)
  } catch (err) {
    await Promise.all([desired.stop(), lifecycle.stop()])
    for (const informer of [nodes, pods, configMaps, secrets, persistentVolumes]) informer.stop()
    throw err
  }
  // The mesh goes out on the hub's own connection, once it exists and the Nodes are synced.
  const mesh = new MeshPublisher({ bus: bus!, nodes, clock: o.clock, logger: o.logger })
  mesh.start()
  // So does the service catalog: every node's proxy rules and DNS read it.
  const services = new Informer(o.registry, kind('Service'))
  const endpoints = new Informer(o.registry, kind('Endpoints'))
  for (const informer of [services, endpoints]) await informer.start()
  const catalog = new ServicePublisher({ bus: bus!, services, endpoints, clock: o.clock, logger: o.logger })
  catalog.start()
  log.info({ nodes: nodes.list().length }, 'node gateway ready')

  let closing: Promise<void> | undefined
  return {
    extraRoutes: [
      ...(o.joinRoutes === false ? [] : joinRoutes({ registry: o.registry, tokens: o.tokens, credentials: o.credentials, ca: o.ca, clusterId: o.clusterId, apiServer: o.apiServer, brokerUrl: o.brokerUrl, clock: o.clock, logger: o.logger, hubVersion: o.hubVersion })),
      ...(images?.routes() ?? []),
    ],
    podLogs: logs.podLogs,
    podStreams: (req, socket, head, pod, subresource, query) => streamSockets.upgrade(req, socket, head, pod, subresource, query),
    heartbeats,
    nodes,
    pods,
    history,
    desired,
    lifecycle,
    async idle() {
      await intake.idle()
      await desired.idle()
    },
    close() {
      closing ??= (async () => {
        logs.close()
        streams.close()
        images?.close()
        // The publishers take no new work; what they have in flight ends with the bus (acknowledged
        // within its close grace, or failed: a broker that is gone would be waited for forever).
        const publishersStopped = Promise.all([desired.stop(), lifecycle.stop(), mesh.stop(), catalog.stop()])
        await intake.idle()
        await bus?.close()
        await publishersStopped
        for (const informer of [nodes, pods, configMaps, secrets, persistentVolumes, services, endpoints]) informer.stop()
      })()
      return closing
    },
  }
}
