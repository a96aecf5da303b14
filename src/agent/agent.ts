// The node agent: joins once, keeps its desired state in its own replica, runs the pod loop from
// that replica, and talks to the hub over MQTT when it can. The pod loop starts before the bus, so
// with the hub unreachable the pods in the replica run anyway (DESIGN.md, "The agent"). A message
// from the hub only says "look again": it is stored, acknowledged, and the loop resyncs.

import { join } from 'node:path'
import { clusterTopic, encodeMessage, nodeDownFilter, upTopic, type DesiredMessage } from '../api/protocol.js'
import type { Bus } from '../lib/bus.js'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { WireGuard } from '../mesh/wireguard-port.js'
import type { MqttBus } from '../lib/mqtt-bus.js'
import { AGENT_DEFAULTS, brambleVersion, defaultSecretsDir, type AgentConfig } from './agent-config.js'
import { loadOrJoin } from './agent-identity.js'
import { startAgentMetrics } from './agent-metrics-endpoint.js'
import { AgentRpc } from './agent-rpc.js'
import { serviceAgentFor } from './agent-services.js'
import { connectToHub } from './agent-session.js'
import { PodNetworkRefresh, startPodNetwork, type PodNetworkPorts } from './agent-pod-network.js'
import { Uplink } from './agent-uplink.js'
import { DEFAULT_BACKOFF } from './backoff.js'
import type { ContainerRuntime } from './container-runtime.js'
import { DockerRuntime } from './docker-runtime.js'
import { downRouter } from './down-router.js'
import { ReplicaWriteError } from './errors.js'
import { Heartbeat } from './heartbeat.js'
import { scanDevices } from './host-devices.js'
import type { HostInfo } from './host-info.js'
import { pruneVolumeDirs } from './volume-dirs.js'
import { agentDir } from './join-client.js'
import { ensureOwnerOnlyDir } from '../lib/owner-only.js'
import { loadOrMakeSecretsKey, openDesiredSecrets } from './secrets-transit.js'
import { imageEngine } from './image-engine.js'
import { ImageGc, imagesInUse } from './image-gc.js'
import { DEFAULT_IMAGE_GC } from './image-gc-planner.js'
import { isMemoryBacked } from './memory-backed-dir.js'
import { MeshAgent } from './mesh-agent.js'
import type { NodeAddresses } from './dns-server.js'
import type { ServiceAgent } from './service-agent.js'
import { CLUSTER_DOMAIN } from '../mesh/dns.js'
import type { Iptables } from './service-proxy.js'
import { DEFAULT_PAUSE_IMAGE } from './pod-pause-image.js'
import type { PlanSettings } from './pod-planner.js'
import { PodReconciler } from './pod-reconciler.js'
import { openReplica, type Replica } from './replica.js'
import { ReplicaWriteRetry } from './replica-write-retry.js'
import { countedHandler, meterBus } from '../lib/metered-bus.js'
import { meterRuntime } from './metered-runtime.js'
import { CgroupPodUsage } from './pod-usage.js'

export interface AgentDeps {
  runtime: ContainerRuntime
  hostInfo: HostInfo
  clock: Clock
  logger: Logger
  /** `docker://<version>`; asked of the engine when the runtime is Docker, else unknown. */
  runtimeVersion?: () => Promise<string>
  /** Opens the replica in a directory; the LMDB one by default (bench/ swaps in an in-memory one). */
  openReplica?: (path: string) => Promise<Replica>
  /** The node's packet filter; with config.services, the agent programs Service rules through it. */
  iptables?: Iptables
  /** With config.services, the DNS server's address is added to the node's loopback through it. */
  nodeAddresses?: NodeAddresses
  /** The node's WireGuard; with config.mesh, the agent keeps the overlay through it. */
  wireguard?: WireGuard
  /**
   * Docker's networks and the node's packet filter: given, pods get addresses from the node's
   * pod subnet on a bridge network of its own; absent, they stay on Docker's default bridge.
   * `linkMtu` reads the MTU of the node's link (the bridge gets the tunnel's, 80 less).
   */
  podNetwork?: PodNetworkPorts
}

export interface RunningAgent {
  readonly nodeName: string
  readonly clusterId: string
  /** The MQTT session, once one was established (undefined while the hub was never reached). */
  readonly bus: Bus | undefined
  readonly replica: Replica
  /** The node's Services side (proxy rules and DNS), with config.services. */
  readonly services: ServiceAgent | undefined
  /** The port of the /metrics listener, when config.metrics turned it on and it could listen. */
  readonly metricsPort: number | undefined
  /** Resolves once every desired message received so far is applied and the pod loop is idle. */
  idle(): Promise<void>
  /** Stops the agent; pods keep running (a new agent adopts them). Publishes presence offline. */
  close(): Promise<void>
}


export async function startAgent(config: AgentConfig, deps: AgentDeps): Promise<RunningAgent> {
  const { runtime, hostInfo, clock } = deps
  // Secrets come down sealed to this key; the hub learns it at join and with every node status.
  const secretsKey = loadOrMakeSecretsKey(agentDir(config.dataDir))
  const identity = await loadOrJoin(config, hostInfo, deps.logger, secretsKey.publicKey)
  const node = identity.nodeName
  const log = deps.logger.child({ component: 'agent', node })
  const replica = await (deps.openReplica ?? openReplica)(join(agentDir(config.dataDir), 'replica'))
  const uplink = new Uplink(node, clock, log)
  const facts = await hostInfo.facts()
  // prom-client is loaded only when the listener is on: an agent without it stays lighter.
  const metrics = config.metrics ? new (await import('./agent-metrics.js')).AgentMetrics() : undefined
  const podPhases = new Map<string, string>()

  // Services: the kept catalog's rules and the pods' DNS server come back before any pod starts.
  const svc = config.services
  const { services, dnsAddress } = serviceAgentFor(config, deps, identity.clusterId, clock, deps.logger.child({ node }))
  await services?.start()

  // The pod network from the subnet kept in the replica, before any pod starts (offline too).
  const hostIP = facts.addresses[0] ?? '127.0.0.1'
  const podNetwork = deps.podNetwork && !config.pods?.network ? startPodNetwork(deps.podNetwork, config, identity.clusterId, node, hostIP, deps.logger) : undefined
  const initialNetwork = await podNetwork?.sync(replica.node()).catch((err) => {
    log.warn({ err: (err as Error).message }, "could not set up the pod network; pods run on Docker's default bridge for now")
    return undefined
  })

  // Pod volume files keep the modes their pod asks for (a container user must read them); the
  // owner-only pods directory keeps everyone else on the host out.
  const podsDir = join(agentDir(config.dataDir), 'pods')
  ensureOwnerOnlyDir(podsDir)
  const secretsDir = config.pods?.secretsDir ?? defaultSecretsDir(identity.clusterId)
  ensureOwnerOnlyDir(secretsDir)
  if (!(await isMemoryBacked(secretsDir))) log.warn({ path: secretsDir }, `secret volumes go to ${secretsDir}, which is not on tmpfs: their files reach the disk`)
  const settings: PlanSettings = {
    clusterId: identity.clusterId,
    podsDir,
    secretsDir,
    pauseImage: config.pods?.pauseImage ?? DEFAULT_PAUSE_IMAGE,
    ...(config.pods?.network || initialNetwork ? { network: config.pods?.network ?? initialNetwork } : {}),
    log: config.pods?.log ?? AGENT_DEFAULTS.log,
    defaultGraceSeconds: config.pods?.defaultGraceSeconds ?? AGENT_DEFAULTS.defaultGraceSeconds,
    dataDir: agentDir(config.dataDir),
    backoff: config.pods?.backoff ?? DEFAULT_BACKOFF,
    // Resolvers ask port 53 only: a server elsewhere (tests) is not given to pods.
    ...(services?.dnsListening && (svc?.dnsPort ?? 53) === 53 ? { clusterDns: { nameserver: dnsAddress!, domain: svc?.clusterDomain ?? CLUSTER_DOMAIN } } : {}),
  }
  const deviceDir = config.deviceDir ?? AGENT_DEFAULTS.deviceDir
  const reconciler = new PodReconciler({
    runtime: metrics ? meterRuntime(runtime, metrics.containerOperation) : runtime,
    clock,
    logger: deps.logger.child({ node }),
    settings,
    hostIP,
    desired: () => replica.desiredPods(),
    onPodStatus: (key, uid, status) => {
      const [namespace, name] = key.split('/') as [string, string]
      if (metrics) podPhases.set(uid, String(status?.phase ?? 'Pending'))
      void uplink.publish('pod-status', { namespace, name, uid, status })
    },
    onEvent: (e) => uplink.event({ ...e, source: { ...e.source, host: node } }),
    resyncMs: config.resyncMs ?? AGENT_DEFAULTS.resyncMs,
    deviceDir,
  })
  await reconciler.start()
  log.info({ pods: replica.pods().length, revision: replica.revision() }, 'pod loop started from the replica')

  const podNetworkRefresh = podNetwork
    ? new PodNetworkRefresh({ podNetwork, node: () => replica.node(), apply: (network) => reconciler.setPodNetwork(network), clock, periodMs: config.resyncMs ?? AGENT_DEFAULTS.resyncMs, log })
    : undefined
  podNetworkRefresh?.start()

  // The overlay: its key is made here on first start; the interface comes with the first peer.
  const mesh =
    config.mesh && deps.wireguard
      ? new MeshAgent({
          wireguard: deps.wireguard,
          node,
          dir: join(agentDir(config.dataDir), 'wireguard'),
          interfaceName: config.mesh.interfaceName,
          listenPort: config.mesh.listenPort,
          keepaliveSeconds: config.mesh.keepaliveSeconds,
          ...(config.mesh.mtu ? { mtu: config.mesh.mtu } : {}),
          ...(config.mesh.advertiseAddress ? { advertiseAddress: config.mesh.advertiseAddress } : {}),
          internalIP: facts.addresses[0],
          clock,
          logger: deps.logger,
          onChange: () => void heartbeat.checkNodeStatus().catch((err) => log.warn({ err: (err as Error).message }, 'could not read node status')),
        })
      : undefined

  const podUsage = new CgroupPodUsage({ runtime, clusterId: identity.clusterId, clock })
  // Unused images go when the engine's filesystem fills (kubelet-style thresholds); only on Docker.
  const images = imageEngine(deps.runtime)
  const imageGc =
    deps.runtime instanceof DockerRuntime
      ? new ImageGc({
          images,
          thresholds: config.imageGc ?? DEFAULT_IMAGE_GC,
          keep: async () => imagesInUse(settings.pauseImage, await replica.desiredPods()),
          event: (reason, message, type) => uplink.event({ involvedObject: { kind: 'Node', name: node }, reason, type, message }),
          onProblemChange: () => void heartbeat.checkNodeStatus().catch((err) => log.warn({ err: (err as Error).message }, 'could not read node status')),
          onImagesChange: () => void heartbeat.checkNodeStatus().catch((err) => log.warn({ err: (err as Error).message }, 'could not read node status')),
          clock,
          logger: log,
          ...(config.imageGc?.periodMs ? { periodMs: config.imageGc.periodMs } : {}),
        })
      : undefined
  const heartbeat = new Heartbeat({
    hostInfo,
    uplink,
    clock,
    logger: log,
    reserve: config.reserve,
    intervalMs: config.heartbeatIntervalMs || AGENT_DEFAULTS.heartbeatIntervalMs,
    extraFacts: { containerRuntimeVersion: await runtimeVersion(deps), kubeletVersion: `bramble-${brambleVersion()}` },
    ...(mesh ? { mesh: (internalIP: string | undefined) => mesh.report(internalIP) } : {}),
    secretsPublicKey: secretsKey.publicKey,
    podUsage: () => podUsage.read(),
    runtimeDown: () => reconciler.runtimeUnavailable(),
    imageGcProblem: () => imageGc?.problem(),
    images: () => imageGc?.images(),
    devices: () => scanDevices(deviceDir),
  })
  // The engine going away or coming back changes Ready: said at once, not at the next heartbeat.
  reconciler.onRuntimeChange(() => void heartbeat.checkNodeStatus().catch((err) => log.warn({ err: (err as Error).message }, 'could not read node status')))
  await heartbeat.checkNodeStatus(true)
  heartbeat.start()
  imageGc?.start()
  await mesh?.start()

  const rpc = new AgentRpc({
    runtime,
    images,
    identity,
    hubs: config.hub,
    clock,
    logger: log,
    logsFollowMaxMs: config.logsFollowMaxMs ?? AGENT_DEFAULTS.logsFollowMaxMs,
    reply: (replyTopic, reply) => (upBus ? upBus.publish(replyTopic, encodeMessage(reply), { qos: 1, retain: false }) : Promise.resolve()),
    onImageLoaded: () => {
      void reconciler.resync().catch((err) => log.warn({ err: (err as Error).message }, 'resync after an image load failed'))
      void imageGc?.runOnce().catch((err) => log.warn({ err: (err as Error).message }, 'could not list images after a load'))
    },
  })

  // Directories of volumes the hub deleted go, data and all; never before a desired state was received.
  const removeDeletedVolumes = async (): Promise<void> => {
    if (replica.revision() === 0) return
    try {
      const removed = await pruneVolumeDirs(agentDir(config.dataDir), replica.persistentVolumes())
      if (removed.length > 0) log.info({ volumes: removed }, 'removed the directories of deleted volumes')
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not remove the directories of deleted volumes; will retry')
    }
  }
  await removeDeletedVolumes()

  // Desired messages are applied one at a time, in arrival order.
  let desiredChain: Promise<void> = Promise.resolve()
  const replicaWrites = new ReplicaWriteRetry({ clock, logger: log, resync: () => void uplink.publish('sync', { revision: replica.revision() }) })
  const onDesired = async (msg: DesiredMessage): Promise<void> => {
    for (const ref of msg.deletes) if (ref.kind === 'Pod' && ref.uid && ref.gracePeriodSeconds !== undefined) reconciler.setDeletionGrace(ref.uid, ref.gracePeriodSeconds)
    const opened = openDesiredSecrets(msg, node, secretsKey.privateKey, (err) => {
      log.warn({ secret: err.secret, problem: err.problem, err: err.message }, 'could not open a Secret from the hub; pods that use it wait')
      uplink.event({ involvedObject: { kind: 'Node', name: node }, reason: 'SecretUnreadable', type: 'Warning', message: err.message })
    })
    const { outcome, revision } = await replica.applyDesired(opened)
    if (outcome === 'applied') replicaWrites.succeeded()
    if (outcome === 'gap') {
      log.info({ have: revision, since: msg.since }, 'missed desired state; asking the hub for what changed since our revision')
      await uplink.publish('sync', { revision })
      return
    }
    // Stale ones are acknowledged too: the hub learns where we are. The pods start meanwhile.
    await Promise.all([uplink.publish('ack', { revision }), outcome === 'applied' ? afterApplied(msg) : undefined])
  }
  const afterApplied = async (msg: DesiredMessage): Promise<void> => {
    // The pod network follows the Node alone, and syncing it runs iptables several times (behind
    // the host-wide xtables lock): only a message carrying the Node asks; the periodic refresh
    // still looks. Otherwise each message of a Deployment's burst waited its turn behind it.
    if (msg.full || msg.upserts.some((o) => o.kind === 'Node')) await podNetworkRefresh?.refresh()
    await reconciler.desiredChanged()
    await removeDeletedVolumes()
  }

  const onDown = downRouter(node, log, {
    desired: (msg) => {
      desiredChain = desiredChain
        .then(() => onDesired(msg))
        .catch((err) =>
          err instanceof ReplicaWriteError
            ? replicaWrites.failed(err)
            : log.error({ err: (err as Error).message, revision: msg.revision }, 'could not apply desired state; the hub will resend it'),
        )
    },
    rpc: (req) => rpc.handle(req),
  })

  // Every new session: presence, then where we are, then the node status, so the hub can catch up.
  const onSession = (b: Bus): void => {
    const at = clock.now()
    void b.publish(upTopic(node, 'presence'), encodeMessage({ online: true, at }), { qos: 1, retain: true }).catch(() => {})
    void uplink.publish('sync', { revision: replica.revision() })
    void heartbeat.checkNodeStatus(true).catch((err) => log.warn({ err: (err as Error).message }, 'could not read node status'))
  }

  let bus: MqttBus | undefined
  /** The session as the agent publishes through it: counted for /metrics when that is on. */
  let upBus: Bus | undefined
  let closed = false
  const connectLoop = async (): Promise<void> => {
    const b = await connectToHub({
      identity,
      node,
      subscriptions: [
        { filter: nodeDownFilter(node), handler: metrics ? countedHandler(onDown, metrics.mqttMessage) : onDown, qos: 1 },
        ...(mesh ? [{ filter: clusterTopic('mesh'), handler: mesh.onMessage, qos: 1 as const }] : []),
        ...(services ? [{ filter: clusterTopic('services'), handler: services.onMessage, qos: 1 as const }] : []),
      ],
      clock,
      busLogger: deps.logger.child({ node }),
      log,
      connectAttemptMs: config.mqttConnectAttemptMs ?? AGENT_DEFAULTS.mqttConnectAttemptMs,
      ...(config.mqttReconnect ? { reconnect: config.mqttReconnect } : {}),
      closed: () => closed,
    })
    if (!b) return
    bus = b
    const counted = metrics ? meterBus(b, metrics.mqttMessage) : b
    upBus = counted
    uplink.attach(counted)
    b.onConnectionChange((up) => up && onSession(counted))
    onSession(counted)
  }
  void connectLoop()

  const metricsListener = metrics && config.metrics ? await startAgentMetrics(metrics, config.metrics, { replica, podPhases, heartbeat, log }) : undefined

  return {
    nodeName: node,
    clusterId: identity.clusterId,
    get bus() {
      return bus
    },
    replica,
    services,
    metricsPort: metricsListener?.port,
    async idle() {
      await desiredChain
      await reconciler.idle()
    },
    async close() {
      if (closed) return
      closed = true
      podNetworkRefresh?.stop()
      replicaWrites.stop()
      heartbeat.stop()
      await imageGc?.stop()
      await metricsListener?.close()
      mesh?.stop()
      rpc.closeAll()
      uplink.flushEvents()
      await desiredChain
      await mesh?.idle()
      await services?.stop()
      if (bus) {
        if (bus.connected) {
          // Not the Last Will: the hub leaves the node be until it has been silent for its grace period.
          await withTimeout(bus.publish(upTopic(node, 'presence'), encodeMessage({ online: false, at: clock.now(), agentStopped: true }), { qos: 1, retain: true }), 5_000).catch(() => {})
        }
        // A clean end waits for every queued QoS 1 message to be acknowledged: never while the
        // broker is away. Those messages are lost either way; the next session's sync recovers.
        if (bus.connected) await withTimeout(bus.close(), 5_000).catch(() => bus!.abort())
        else bus.abort()
      }
      uplink.close()
      await reconciler.stop()
      await replica.close()
    },
  }
}

async function runtimeVersion(deps: AgentDeps): Promise<string> {
  try {
    if (deps.runtimeVersion) return await deps.runtimeVersion()
    if (deps.runtime instanceof DockerRuntime) return `docker://${(await deps.runtime.docker.version()).Version}`
  } catch (err) {
    deps.logger.warn({ component: 'agent', err: (err as Error).message }, 'could not read the container runtime version')
  }
  return 'unknown://unknown'
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), ms)))]).finally(() => clearTimeout(timer))
}
