// The flags of `bramble hub` (HubConfig), and the checks across them (the address ranges).
//
// Adding a hub flag is one entry in HUB_FLAGS (and one field in HubConfig): main, the help text,
// validation and the tests of the schema pick it up from there.

import { isIP } from 'node:net'
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from './config-errors.js'
import { FlagReason, isDnsName, parseByteSize, parseDecimal, parseDurationMs, parseInteger } from './config-values.js'
import { dataDirFlag, heartbeatFlag, logLevelFlag, type LogLevel } from './common-flags.js'
import { resolveFlags, type FlagSchema, type RawFlags } from './flag-schema.js'
import { parseCidr } from './ipv4-cidr.js'
import { etcdTlsFlag, parseStoreUrl, withEtcdTls, type StoreLocation } from './store-url.js'

export interface HubConfig {
  /** Where the CA, tokens, store and kubeconfig live. */
  dataDir: string
  /** Bind address of the API; `0.0.0.0` or `::` for all interfaces. */
  listen: string
  /** Address written into the kubeconfig, join answers and the serving certificate. */
  advertise: string
  /** HTTPS port of the API; 0 picks a free port. */
  apiPort: number
  logLevel: LogLevel
  /** Where cluster state lives: LMDB in the data dir, or an etcd cluster. */
  store: StoreLocation
  /** TLS to an `etcds://` store: etcd's CA, and this hub's client certificate and key. */
  storeCa: string | undefined
  storeCert: string | undefined
  storeKey: string | undefined
  /** Upper bound of the LMDB map (the store's largest size on disk). */
  storeMapSizeBytes: number
  /** Port of the embedded MQTT broker (TLS); 0 picks a free port. */
  mqttPort: number
  /** An external MQTT broker (Mosquitto) to use instead of the embedded one; '' for embedded. */
  mqttUrl: string
  /** The external Mosquitto's pid file: the hub sends it SIGHUP after rewriting its auth files. */
  mosquittoPidFile: string
  /** How often agents send a heartbeat. */
  heartbeatIntervalMs: number
  /** A node silent this long becomes NotReady. */
  nodeGracePeriodMs: number
  /** With an etcd store: the leader's lease; a dead leader is replaced this long after its last keepalive. */
  leaderLeaseMs: number
  /** Pods without their own get tolerations of the not-ready and unreachable taints for this many seconds. */
  defaultTolerationSeconds: number
  /** Evictions pause while at least this fraction of the nodes (and at least 3) are NotReady. */
  unhealthyZoneThreshold: number
  /** At most this many nodes per second have their pods evicted. */
  nodeEvictionRatePerSecond: number
  /** How the scheduler scores nodes: spread (least allocated) or binpack (most allocated). */
  schedulerStrategy: 'spread' | 'binpack'
  /** IPv4 range Services' cluster IPs are leased from. */
  serviceCidr: string
  /** IPv4 range of pod addresses; every node leases a subnet of it. */
  clusterCidr: string
  /** Prefix length of each node's pod subnet (24: a /24 per node). */
  nodeCidrMaskSize: number
}

const ALL_INTERFACES = new Set(['0.0.0.0', '::', ''])

export const HUB_FLAGS: FlagSchema<HubConfig> = {
  dataDir: dataDirFlag(),
  listen: {
    flag: '--listen',
    valueName: 'ADDR',
    description: 'bind address of the API (0.0.0.0 or :: for all interfaces)',
    parse: (raw) => {
      if (isIP(raw) === 0 && raw !== 'localhost') throw new FlagReason(`must be an IP address, got "${raw}"`)
      return raw
    },
    defaultValue: () => '0.0.0.0',
    defaultText: '0.0.0.0',
  },
  advertise: {
    flag: '--advertise',
    valueName: 'ADDR',
    description: 'address written into the kubeconfig, join answers and certificates',
    parse: (raw) => {
      if (isIP(raw) === 0 && !isDnsName(raw)) throw new FlagReason(`must be an IP address or a DNS name, got "${raw}"`)
      return raw
    },
    defaultValue: (resolved) => (resolved.listen && !isAllInterfaces(resolved.listen) ? resolved.listen : '127.0.0.1'),
    defaultText: 'the listen address when specific, else 127.0.0.1',
  },
  apiPort: {
    flag: '--api-port',
    valueName: 'N',
    description: 'HTTPS port of the API; 0 picks a free one',
    parse: (raw) => parseInteger(raw, 0, 65535, 'an integer 0-65535'),
    defaultValue: () => 6443,
    defaultText: '6443',
  },
  logLevel: logLevelFlag(),
  store: {
    flag: '--store',
    valueName: 'URL',
    description: 'keep cluster state in an etcd cluster: etcd://HOST[:PORT][,HOST[:PORT]...][/PREFIX/] (port 2379, prefix /bramble/ by default; etcds:// over TLS)',
    parse: (raw) => parseStoreUrl(raw),
    defaultValue: () => ({ kind: 'lmdb' }),
    defaultText: 'lmdb: LMDB in DATA_DIR/store',
  },
  storeCa: etcdTlsFlag('--store-ca', "with --store etcds://: the CA that signed etcd's serving certificates (else the system's CAs)"),
  storeCert: etcdTlsFlag('--store-cert', 'with --store etcds://: a client certificate for etcd (with --client-cert-auth)'),
  storeKey: etcdTlsFlag('--store-key', "with --store etcds://: the client certificate's key"),
  storeMapSizeBytes: {
    flag: '--store-map-size',
    valueName: 'SIZE',
    description: 'largest size of the store on disk, in bytes or with a unit (512Mi, 2Gi)',
    parse: (raw) => parseByteSize(raw),
    defaultValue: () => 1024 ** 3,
    defaultText: '1Gi',
  },
  mqttPort: {
    flag: '--mqtt-port',
    valueName: 'N',
    description: 'port of the embedded MQTT broker (TLS with the hub CA); 0 picks a free one',
    parse: (raw) => parseInteger(raw, 0, 65535, 'an integer 0-65535'),
    defaultValue: () => 8883,
    defaultText: '8883',
  },
  mqttUrl: {
    flag: '--mqtt-url',
    valueName: 'URL',
    description: 'use this external MQTT broker (mqtt:// or mqtts://) instead of the embedded one',
    parse: (raw) => {
      if (!/^mqtts?:\/\/[^/\s]+(:\d+)?\/?$/.test(raw)) throw new FlagReason(`must be an mqtt:// or mqtts:// URL with a host, got "${raw}"`)
      return raw.replace(/\/$/, '')
    },
    defaultValue: () => '',
    defaultText: 'the embedded broker',
  },
  mosquittoPidFile: {
    flag: '--mosquitto-pid-file',
    valueName: 'FILE',
    description: "with --mqtt-url: Mosquitto's pid_file; the hub makes it reload its password and ACL files when nodes join or go",
    parse: (raw) => {
      if (raw.trim() === '') throw new FlagReason('must name a file, got ""')
      return resolvePath(raw)
    },
    defaultValue: () => '',
    defaultText: 'none: reload Mosquitto yourself',
  },
  heartbeatIntervalMs: heartbeatFlag(),
  nodeGracePeriodMs: {
    flag: '--node-grace-period',
    valueName: 'DURATION',
    description: 'a node silent this long becomes NotReady (20s, 1m)',
    parse: (raw) => parseDurationMs(raw),
    defaultValue: () => 20_000,
    defaultText: '20s',
  },
  leaderLeaseMs: {
    flag: '--leader-lease',
    valueName: 'DURATION',
    description: 'with --store etcd://: the leading hub\'s lease; another hub takes over this long after the leader dies (whole seconds, 2s-60s)',
    parse: (raw) => {
      const ms = parseDurationMs(raw)
      if (ms < 2_000 || ms > 60_000 || ms % 1_000 !== 0) throw new FlagReason(`must be whole seconds from 2s to 60s (etcd leases count seconds), got "${raw}"`)
      return ms
    },
    defaultValue: () => 5_000,
    defaultText: '5s',
  },
  defaultTolerationSeconds: {
    flag: '--default-toleration-seconds',
    valueName: 'N',
    description: 'seconds a pod stays on a NotReady or unreachable node before it is evicted, unless it says otherwise',
    parse: (raw) => parseInteger(raw, 0, 86_400 * 365, 'a whole number of seconds'),
    defaultValue: () => 30,
    defaultText: '30',
  },
  unhealthyZoneThreshold: {
    flag: '--unhealthy-zone-threshold',
    valueName: 'FRACTION',
    description: 'evictions pause while this fraction of the nodes (and at least 3) are NotReady: the hub is more likely cut off than they',
    parse: (raw) => parseDecimal(raw, 0, 1, 'a fraction above 0 and at most 1 (0.55)'),
    defaultValue: () => 0.55,
    defaultText: '0.55',
  },
  nodeEvictionRatePerSecond: {
    flag: '--node-eviction-rate',
    valueName: 'N',
    description: 'at most this many nodes per second have their pods evicted (0.1: one node every 10 s)',
    parse: (raw) => parseDecimal(raw, 0, 1000, 'a number of nodes per second above 0 (0.1)'),
    defaultValue: () => 0.1,
    defaultText: '0.1',
  },
  schedulerStrategy: {
    flag: '--scheduler',
    valueName: 'STRATEGY',
    description: 'spread (least allocated nodes first) or binpack (fill nodes up)',
    parse: (raw) => {
      if (raw !== 'spread' && raw !== 'binpack') throw new FlagReason(`must be spread or binpack, got "${raw}"`)
      return raw
    },
    defaultValue: () => 'spread',
    defaultText: 'spread',
  },
  serviceCidr: {
    flag: '--service-cidr',
    valueName: 'CIDR',
    description: "IPv4 range Services' cluster IPs come from (/8 to /30)",
    parse: (raw) => {
      try {
        return parseCidr(raw).text
      } catch (err) {
        throw new FlagReason((err as Error).message)
      }
    },
    defaultValue: () => '10.43.0.0/16',
    defaultText: '10.43.0.0/16',
  },
  clusterCidr: {
    flag: '--cluster-cidr',
    valueName: 'CIDR',
    description: 'IPv4 range pod addresses come from; each node leases a subnet of it (/8 to /28)',
    parse: (raw) => {
      try {
        return parseCidr(raw).text
      } catch (err) {
        throw new FlagReason((err as Error).message)
      }
    },
    defaultValue: () => '10.42.0.0/16',
    defaultText: '10.42.0.0/16',
  },
  nodeCidrMaskSize: {
    flag: '--node-cidr-mask-size',
    valueName: 'N',
    description: "prefix length of each node's pod subnet, at least the cluster CIDR's (24: 254 pods per node)",
    parse: (raw) => parseInteger(raw, 8, 28, 'a prefix length between 8 and 28'),
    defaultValue: () => 24,
    defaultText: '24',
  },
}

const STORE_TLS_FLAGS = { url: '--store', ca: '--store-ca', cert: '--store-cert', key: '--store-key' }

export function resolveHubConfig(raw: RawFlags, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const config = resolveFlags(HUB_FLAGS, raw, env)
  config.store = withEtcdTls(config.store, { ca: config.storeCa, cert: config.storeCert, key: config.storeKey }, STORE_TLS_FLAGS)
  checkAddressRanges(config)
  return config
}

/** The pod and Service ranges must not overlap, and a node's subnet must fit in the cluster CIDR. */
function checkAddressRanges(config: HubConfig): void {
  const cluster = parseCidr(config.clusterCidr)
  const service = parseCidr(config.serviceCidr)
  if (cluster.base < service.base + service.size && service.base < cluster.base + cluster.size) {
    throw new ConfigError('--cluster-cidr', `${config.clusterCidr} overlaps --service-cidr ${config.serviceCidr}; pick ranges apart`)
  }
  if (config.nodeCidrMaskSize < cluster.prefix) {
    throw new ConfigError('--node-cidr-mask-size', `must be at least the prefix length of --cluster-cidr ${config.clusterCidr} (/${cluster.prefix}), got ${config.nodeCidrMaskSize}`)
  }
  if (config.nodeCidrMaskSize - cluster.prefix > 16) {
    throw new ConfigError('--node-cidr-mask-size', `may split --cluster-cidr ${config.clusterCidr} into at most 65536 node subnets (at most /${cluster.prefix + 16}), got ${config.nodeCidrMaskSize}`)
  }
}

export function isAllInterfaces(address: string): boolean {
  return ALL_INTERFACES.has(address)
}
