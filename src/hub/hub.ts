// Starting the hub: data dir, PKI, tokens, store, built-in namespaces, API server, then the
// kubeconfig (written only once the API listens, so a script waiting for the file can use it).
// The node gateway and the controllers are the leader's work: on LMDB the hub always leads; hubs
// sharing an etcd store elect one (leader-election.ts), and its writes are fenced by its term.
// Tokens and the nodes' MQTT credentials live in the data dir on LMDB; hubs sharing an etcd store
// keep them in the store (shared-records.ts), so every hub joins, admits and revokes alike, and
// every hub serves the join routes.

import { randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '../lib/atomic-file.js'
import { coalescedTask } from '../lib/coalesced-task.js'
import type { KubeObject } from '../api/types.js'
import type { Clock } from '../lib/clock.js'
import { isAllInterfaces, type HubConfig } from '../lib/config.js'
import type { Logger } from '../lib/logger.js'
import { startApiServer, type ExtraRoute, type PodLogs, type PodStreamUpgrade } from './api-server.js'
import { ApiError } from './api-errors.js'
import { runEtcdElection, soleLeader, type Election } from './leader-election.js'
import type { EtcdFence, FenceableStore } from './etcd-store.js'
import { openEtcdStore } from './etcd-store.js'
import { ConfigError } from '../lib/config-errors.js'
import { HubMetrics } from './hub-metrics.js'
import { MetricsApi } from './metrics-api.js'
import { startEmbeddedBroker, type EmbeddedBroker } from './broker.js'
import { MosquittoReloader, writeMosquittoAuthFiles } from './mosquitto-config.js'
import { NodeCredentials } from './node-credentials.js'
import { startNodeGateway, type NodeGateway } from './node-gateway.js'
import { Registry } from './registry.js'
import { startControllers } from './controllers.js'
import { StoreExistsError } from './errors.js'
import { kubeconfigPath, readKubeconfigToken, serverUrl, writeKubeconfig } from './kubeconfig.js'
import { openHubStore } from './hub-store.js'
import { EncryptedStore } from './encrypted-store.js'
import { SecretKeyring } from '../lib/secret-keyring.js'
import { backupRoute } from './backup.js'
import { dashboardRoutes } from './dashboard-routes.js'
import { ensurePki, startCertRenewal } from './pki.js'
import type { Store } from './store.js'
import { ensureBootstrapTokens, TokenStore, type BootstrapTokens, type HubTokens } from './tokens.js'
import { ensureSharedBootstrapTokens, SharedTokenStore } from './shared-tokens.js'
import { openSharedNodeCredentials } from './shared-node-credentials.js'
import { recordSharedStore, sharedClusterId } from './shared-records.js'
import { joinRoutes } from './join-endpoint.js'

export interface HubDeps {
  logger: Logger
  clock: Clock
  /** Shown in /version. */
  brambleVersion?: string
  /**
   * The scheduler starts binding once this resolves (at once when absent): bench/sched holds it
   * until its simulated agents have reconnected after a restart, so that it times binding alone.
   */
  schedulerHold?: Promise<void>
}

export interface RunningHub {
  apiPort: number
  /** `https://<advertise>:<port>` */
  url: string
  kubeconfigPath: string
  /** sha256 hex of the CA's DER, as join tokens carry it. */
  caHash: string
  tokens: HubTokens
  store: Store
  /** The MQTT URL agents are told (embedded broker or --mqtt-url). */
  brokerUrl: string
  clusterId: string
  /** True while this hub leads (always, on LMDB): it runs the node gateway, the scheduler and the controllers. */
  readonly leading: boolean
  /** Stops the API server, the scheduler, the gateway and the broker, then closes the store. Safe to call twice. */
  close(): Promise<void>
}

const CLUSTER_ID_FILE = 'cluster-id'

export const BUILT_IN_NAMESPACES = ['default', 'kube-system', 'kube-public'] as const

export async function startHub(config: HubConfig, deps: HubDeps): Promise<RunningHub> {
  const { logger, clock } = deps
  const log = logger.child({ component: 'hub' })
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 })
  chmodSync(config.dataDir, 0o700)

  const pkiOptions = { dataDir: config.dataDir, advertise: config.advertise, listen: config.listen, clock, logger }
  const pki = ensurePki(pkiOptions)
  const fileTokens = TokenStore.open(config.dataDir, clock)

  const clusterIdMadeNow = !existsSync(join(config.dataDir, CLUSTER_ID_FILE))
  let clusterId = ensureClusterId(config.dataDir)
  // Secrets are sealed before they reach the store (encrypted-store.ts), with the data dir's own key.
  const secretsKeyring = SecretKeyring.openOrCreate(join(config.dataDir, 'secrets.key'))
  const etcdStore: FenceableStore | undefined =
    config.store.kind === 'etcd' ? await openEtcdStore({ endpoints: config.store.endpoints, prefix: config.store.prefix, tls: config.store.tls, logger, clock }) : undefined
  const store = new EncryptedStore(etcdStore ?? (await openHubStore(config, logger, clock)), secretsKeyring)
  // Everything started so far, stopped in reverse order on close or on a failed start.
  const stops: Array<() => Promise<void> | void> = [() => store.close()]
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop()
      } catch (err) {
        log.warn({ err }, 'a part of the hub failed to stop cleanly')
      }
    }
  }
  let api
  let tokens: HubTokens = fileTokens
  let adminToken: string
  let brokerUrl: string
  let election: Election
  try {
    // Every Secret opened once: a wrong or lost key file stops the start here, naming the file.
    await store.list({ resource: 'secrets' })
    await ensureNamespaces(store)
    const registry = new Registry(store, clock, logger, { defaultTolerationSeconds: config.defaultTolerationSeconds, serviceCidr: config.serviceCidr })
    await registry.serviceAllocations.repair(clock.now())
    let bootstrap: BootstrapTokens | undefined
    let credentials: NodeCredentials
    if (etcdStore) {
      const shared = await sharedClusterId(store, clusterId, clusterIdMadeNow)
      if (shared !== clusterId) writeFileAtomic(join(config.dataDir, CLUSTER_ID_FILE), `${shared}\n`, 0o600)
      clusterId = shared
      const sharedTokens = await SharedTokenStore.open(store, clock, { importFrom: fileTokens })
      stops.push(() => sharedTokens.close())
      tokens = sharedTokens
      bootstrap = await ensureSharedBootstrapTokens(sharedTokens, config.dataDir, pki.caHash)
      const sharedCredentials = await openSharedNodeCredentials({ store, keyring: secretsKeyring, clock, importFrom: join(config.dataDir, 'mqtt') })
      stops.push(() => sharedCredentials.close())
      credentials = sharedCredentials.credentials
    } else {
      bootstrap = ensureBootstrapTokens(fileTokens, pki.caHash)
      credentials = await NodeCredentials.open(join(config.dataDir, 'mqtt'))
    }
    // `bramble token` on this data dir works on the store named here.
    recordSharedStore(config.dataDir, config.store)
    adminToken = await chooseAdminToken(config.dataDir, tokens, bootstrap, log)
    let hubBusUrl: string
    let embeddedBroker: EmbeddedBroker | undefined
    if (config.mqttUrl) {
      // An external broker (Mosquitto) checks the same credentials and ACLs from files we keep current.
      const dir = join(config.dataDir, 'mosquitto')
      // Coalesced: nodes joining by the thousand make one rewrite and reload per burst, not one each.
      const reloader = config.mosquittoPidFile ? new MosquittoReloader(config.mosquittoPidFile, clock, log) : undefined
      if (reloader) stops.push(() => reloader.close())
      const write = coalescedTask(async () => {
        await writeMosquittoAuthFiles(dir, credentials)
        reloader?.reload()
      })
      await write()
      stops.push(credentials.onChange(() => void write().catch((err) => log.error({ err }, 'could not update the Mosquitto password and ACL files'))))
      brokerUrl = config.mqttUrl
      hubBusUrl = config.mqttUrl
      log.info({ url: config.mqttUrl, files: dir }, 'using an external MQTT broker; point its password_file and acl_file at the files here and reload it when nodes join')
    } else {
      const broker: EmbeddedBroker = await startEmbeddedBroker({ port: config.mqttPort, host: config.listen, tls: { key: pki.serverKeyPem, cert: pki.serverCertPem }, credentials, logger })
      embeddedBroker = broker
      stops.push(() => broker.close())
      brokerUrl = `mqtts://${hostForUrl(config.advertise)}:${broker.port}`
      hubBusUrl = `mqtts://${hostForUrl(isAllInterfaces(config.listen) ? '127.0.0.1' : config.listen)}:${broker.port}`
    }
    let apiPort = 0
    const metrics = new HubMetrics()
    // Routes and handlers of the leader's gateway join the API while this hub leads.
    // Every hub admits agents: Nodes are API objects, and tokens and credentials are shared.
    const joining = joinRoutes({ registry, tokens, credentials, ca: pki.caCertPem, clusterId, apiServer: () => serverUrl(config.advertise, apiPort), brokerUrl, clock, logger, hubVersion: deps.brambleVersion })
    const extraRoutes: ExtraRoute[] = [backupRoute(config.dataDir, store), ...joining]
    let leader: { gateway: NodeGateway; metricsApi: MetricsApi } | undefined
    // Logs, exec and port-forward go through the leader's connection to the nodes: elsewhere a 503,
    // on which a client given several hubs tries the next.
    const leading = (what: string): NodeGateway => {
      if (!leader) throw new ApiError(503, 'ServiceUnavailable', `this hub does not lead now: ${what} go through the leading hub; ask it, or wait for a new leader`)
      return leader.gateway
    }
    const podLogs: PodLogs = (...args) => leading('pod logs').podLogs(...args)
    const podStreams: PodStreamUpgrade = (...args) => leading('exec and port-forward').podStreams(...args)
    api = await startApiServer({
      store,
      logger,
      clock,
      tls: { key: pki.serverKeyPem, cert: pki.serverCertPem },
      authenticate: tokens.authenticate,
      host: config.listen,
      port: config.apiPort,
      brambleVersion: deps.brambleVersion,
      extraRoutes,
      podLogs,
      podStreams,
      defaultTolerationSeconds: config.defaultTolerationSeconds,
      serviceCidr: config.serviceCidr,
      metrics,
      get metricsApi() {
        return leader?.metricsApi
      },
    })
    apiPort = api.port
    stops.push(() => api!.close())
    // The serving certificate is renewed well before expiry and swapped into the running servers.
    const runningApi = api
    const renewal = startCertRenewal({ ...pkiOptions, pki, apply: (tls) => (runningApi.setTls(tls), embeddedBroker?.setTls(tls)) })
    stops.push(() => renewal.stop())

    const leaderStops: Array<() => Promise<void> | void> = []
    let observed = false
    const elected = async (fence: EtcdFence | undefined) => {
      // Every write of the leader's work commits only while its term lasts.
      const leaderRegistry =
        fence && etcdStore
          ? new Registry(new EncryptedStore(etcdStore.fenced(fence), secretsKeyring), clock, logger, { defaultTolerationSeconds: config.defaultTolerationSeconds, serviceCidr: config.serviceCidr })
          : registry
      const gateway: NodeGateway = await startNodeGateway({
      registry: leaderRegistry,
      tokens,
      credentials,
      ca: pki.caCertPem,
      clusterId,
      apiServer: () => serverUrl(config.advertise, apiPort),
      brokerUrl,
      // On its own embedded broker the hub's client talks to it in memory: no second TLS session
      // over loopback for every node message, no kernel queue between the broker and the hub.
      busOptions: { url: hubBusUrl, ca: pki.caCertPem, ...(embeddedBroker ? { stream: embeddedBroker.connectInProcess } : {}) },
      clock,
      logger,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      nodeGracePeriodMs: config.nodeGracePeriodMs,
      hubVersion: deps.brambleVersion,
      countMessage: metrics.mqttMessage,
      heartbeatLag: metrics.heartbeatLag,
      imagesDir: join(config.dataDir, 'images'),
      joinRoutes: false,
      })
      leaderStops.push(() => gateway.close())
      const { nodes, pods, heartbeats } = gateway
      if (!observed) metrics.observeCluster({ store, storeFile: join(config.dataDir, 'store', 'data.mdb'), nodes, pods, heartbeats })
      observed = true
      const routes = [...gateway.extraRoutes, ...dashboardRoutes({ history: gateway.history, heartbeats: gateway.heartbeats, clock })]
      extraRoutes.push(...routes)
      leader = { gateway, metricsApi: new MetricsApi({ heartbeats, nodes, pods, clock, heartbeatIntervalMs: config.heartbeatIntervalMs, staleAfterMs: config.nodeGracePeriodMs }) }
      leaderStops.push(() => {
        leader = undefined
        extraRoutes.splice(0, extraRoutes.length, ...extraRoutes.filter((route) => !routes.includes(route)))
      })
      await startControllers(leaderRegistry, config, deps, leaderStops, metrics)
    }
    const deposed = async () => {
      for (const stop of leaderStops.splice(0).reverse()) {
        try {
          await stop()
        } catch (err) {
          log.warn({ err }, 'a part of the leader work failed to stop cleanly')
        }
      }
    }
    if (config.store.kind === 'etcd') {
      const store = config.store
      let firstTerm: () => void = () => undefined
      const leadsOnce = new Promise<void>((resolve) => (firstTerm = resolve))
      election = runEtcdElection(
        { endpoints: store.endpoints, prefix: store.prefix, tls: store.tls, candidate: serverUrl(config.advertise, apiPort), leaseMs: config.leaderLeaseMs, clock, logger },
        { elected: async (fence) => (await elected(fence), firstTerm()), deposed },
      )
      stops.push(() => election.close())
      if (!config.mqttUrl) {
        // Each hub's embedded broker would hold its own part of the fleet: with it, this hub runs only
        // as the one hub on the store (it waits out the lease of an earlier run of its own).
        const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 2 * config.leaderLeaseMs + 2_000).unref())
        if (!(await Promise.race([leadsOnce.then(() => true), timeout]))) {
          throw new ConfigError('--store', `names an etcd store another hub leads, and this hub has no --mqtt-url: hubs sharing a store need one shared external broker (give every hub --mqtt-url and --mosquitto-pid-file), or give this hub its own store`)
        }
      }
    } else {
      election = await soleLeader({ elected, deposed })
      stops.push(() => election.close())
    }
  } catch (err) {
    await stopAll()
    throw err
  }

  const path = kubeconfigPath(config.dataDir)
  writeKubeconfig(path, { advertise: config.advertise, port: api.port, caCertPem: pki.caCertPem, token: adminToken })
  const url = serverUrl(config.advertise, api.port)
  log.info({ url, kubeconfig: path, listen: config.listen, mqtt: brokerUrl }, 'hub ready')

  let closing: Promise<void> | undefined
  return {
    apiPort: api.port,
    url,
    kubeconfigPath: path,
    caHash: pki.caHash,
    tokens,
    store,
    brokerUrl,
    clusterId,
    get leading() {
      return election.leading
    },
    close() {
      closing ??= (async () => {
        await stopAll()
        log.info('hub stopped')
      })()
      return closing
    },
  }
}

/**
 * The admin token the kubeconfig carries: a fresh one on a first start, else the one in the
 * existing kubeconfig while it still authenticates as admin. A lost kubeconfig gets a new admin
 * token (the old ones stay valid: copies of the old file keep working).
 */
async function chooseAdminToken(dataDir: string, tokens: HubTokens, bootstrap: BootstrapTokens | undefined, log: Logger): Promise<string> {
  if (bootstrap) {
    log.info({ joinTokenFile: join(dataDir, 'join-token') }, 'first start: created admin, read-only and join tokens')
    return bootstrap.admin
  }
  const existing = readKubeconfigToken(kubeconfigPath(dataDir))
  if (existing && (await tokens.authenticate(existing))?.role === 'admin') return existing
  log.warn({ kubeconfig: kubeconfigPath(dataDir) }, 'kubeconfig missing or its token unknown: issued a new admin token')
  return tokens.issueUserToken('admin', 'admin')
}

function namespaceObject(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: { name, labels: { 'kubernetes.io/metadata.name': name } },
    spec: { finalizers: ['kubernetes'] },
    status: { phase: 'Active' },
  } as KubeObject
}

async function ensureNamespaces(store: Store): Promise<void> {
  for (const name of BUILT_IN_NAMESPACES) {
    const key = { resource: 'namespaces', namespace: '', name }
    if (await store.get(key)) continue
    try {
      await store.create(key, namespaceObject(name))
    } catch (err) {
      if (!(err instanceof StoreExistsError)) throw err
    }
  }
}

/** The cluster's id, made on first start: Docker labels carry it so two clusters never share containers. */
function ensureClusterId(dataDir: string): string {
  const path = join(dataDir, CLUSTER_ID_FILE)
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim()
    if (/^[a-z0-9]{8,64}$/.test(id)) return id
  }
  const id = randomBytes(8).toString('hex')
  writeFileAtomic(path, `${id}\n`, 0o600)
  return id
}

function hostForUrl(host: string): string {
  return host.includes(':') ? `[${host}]` : host
}

