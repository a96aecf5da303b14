// The one configuration schema: every flag of `bramble hub` and `bramble up`, its default, its unit
// and its validation. main registers the flags from here; nothing else reads process.env.
//
// Adding a flag is one entry in HUB_FLAGS (and one field in HubConfig): main, the help text,
// validation and the tests of the schema pick it up from there.

import { isIP } from 'node:net'
import { hostname as osHostname } from 'node:os'
import { resolve as resolvePath, join } from 'node:path'
import { ConfigError } from './config-errors.js'
import { FlagReason, hostnameAsNodeName, isDnsName, parseByteSize, parseDecimal, parseDurationMs, parseInteger, parseMilliCpu } from './config-values.js'
import { defaultDataDir } from './data-dir.js'
import { parseCidr } from './ipv4-cidr.js'

export { FlagReason, hostnameAsNodeName, parseByteSize, parseDurationMs, parseMilliCpu } from './config-values.js'

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

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** One flag: how it is typed, parsed, defaulted and explained. */
export interface FlagSpec<C, K extends keyof C> {
  /** As typed: `--api-port`. */
  flag: string
  /** Placeholder in help: `N`, `ADDR`. */
  valueName: string
  description: string
  /** An environment variable that sets the flag when it is not given. */
  env?: string
  /** Turns the typed text into a value, or throws FlagReason naming what is wrong. */
  parse(raw: string): C[K]
  /** The value when neither the flag nor its variable is set; sees the flags resolved before it. */
  defaultValue(resolved: Partial<C>, env: NodeJS.ProcessEnv): C[K]
  /** The default as help shows it. */
  defaultText: string
}

export type FlagSchema<C> = { [K in keyof C]: FlagSpec<C, K> }

const ALL_INTERFACES = new Set(['0.0.0.0', '::', ''])

/** `--data-dir`, shared by every command that works on a data dir. */
function dataDirFlag<C extends { dataDir: string }>(): FlagSpec<C, 'dataDir'> {
  return {
    flag: '--data-dir',
    valueName: 'DIR',
    description: 'where the hub keeps its CA, tokens, store and kubeconfig',
    env: 'BRAMBLE_DATA_DIR',
    parse: (raw) => {
      if (raw.trim() === '') throw new FlagReason('must name a directory, got ""')
      return resolvePath(raw) as C['dataDir']
    },
    defaultValue: (_, env) => resolvePath(defaultDataDir(env)) as C['dataDir'],
    defaultText: '/var/lib/bramble as root, else ~/.bramble',
  }
}

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

function logLevelFlag<C extends { logLevel: LogLevel }>(): FlagSpec<C, 'logLevel'> {
  return {
    flag: '--log-level',
    valueName: 'LEVEL',
    description: `log level: ${LOG_LEVELS.join(', ')}`,
    env: 'BRAMBLE_LOG_LEVEL',
    parse: (raw) => {
      if (!(LOG_LEVELS as readonly string[]).includes(raw)) throw new FlagReason(`must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`)
      return raw as C['logLevel']
    },
    defaultValue: () => 'info' as C['logLevel'],
    defaultText: 'info',
  }
}

function heartbeatFlag<C extends { heartbeatIntervalMs: number }>(): FlagSpec<C, 'heartbeatIntervalMs'> {
  return {
    flag: '--heartbeat-interval',
    valueName: 'DURATION',
    description: 'how often agents send a heartbeat (5s)',
    parse: (raw) => parseDurationMs(raw) as C['heartbeatIntervalMs'],
    defaultValue: () => 5000 as C['heartbeatIntervalMs'],
    defaultText: '5s',
  }
}

export interface AgentFlags {
  /** The agent keeps its identity, replica and pod files under DIR/agent. */
  dataDir: string
  /** The hub's API, HOST[:PORT] (port 6443 by default); only needed to join. */
  hub: string
  /** A join token; only needed the first time. */
  token: string
  /** This node's name (a DNS-1123 label). */
  nodeName: string
  /** The Docker Engine API: unix:///var/run/docker.sock, tcp://host:2375. */
  dockerHost: string
  /** CPU kept back from pods for the system, in millicores. */
  reserveCpuMilli: number
  /** Memory kept back from pods for the system, in bytes. */
  reserveMemoryBytes: number
  heartbeatIntervalMs: number
  logLevel: LogLevel
  /** The pod bridge's MTU; 0 for the tunnel's (the link's minus WireGuard's 80 bytes). */
  podMtu: number
  /** The WireGuard interface of the overlay; '' when turned off (`--wireguard-interface none`). */
  wireguardInterface: string
  /** UDP port WireGuard listens on. */
  wireguardPort: number
  /** The address other nodes reach this one at; '' for the node's InternalIP. */
  advertiseAddress: string
  /** Persistent keepalive towards every peer (keeps NAT mappings open), seconds; 0 is off. */
  wireguardKeepaliveSeconds: number
  /** The pods' DNS server address on this node; '' turns the cluster DNS off (`--cluster-dns none`). */
  clusterDns: string
  /** Memory-backed directory for secret volume files; '' for /run/bramble/<clusterId>/pods. */
  secretsDir: string
  /** Where the agent serves Prometheus /metrics (HTTP); undefined when turned off (`--metrics-address none`). */
  metricsAddress: { host: string; port: number } | undefined
  /** Where serial, I2C, video and GPIO devices are looked for and advertised from. */
  deviceDir: string
  /** Percent of the image filesystem in use at which unused images are removed (kubelet's image-gc-high-threshold). */
  imageGcHighPercent: number
  /** Percent of the image filesystem in use that image garbage collection brings it down to. */
  imageGcLowPercent: number
}

export const AGENT_FLAGS: FlagSchema<AgentFlags> = {
  dataDir: dataDirFlag(),
  hub: {
    flag: '--hub',
    valueName: 'HOST[:PORT]',
    description: "the hub's API address (needed to join)",
    env: 'BRAMBLE_HUB',
    parse: (raw) => {
      if (!/^(\[[0-9a-f:]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(raw.trim())) throw new FlagReason(`must be HOST or HOST:PORT, got "${raw}"`)
      return raw.trim()
    },
    defaultValue: () => '',
    defaultText: 'none: the stored identity',
  },
  token: {
    flag: '--token',
    valueName: 'TOKEN',
    description: 'a join token from `bramble token create` (needed the first time only)',
    env: 'BRAMBLE_TOKEN',
    parse: (raw) => raw.trim(),
    defaultValue: () => '',
    defaultText: 'none: the stored identity',
  },
  nodeName: {
    flag: '--node-name',
    valueName: 'NAME',
    description: "this node's name, a DNS-1123 label",
    parse: (raw) => {
      if (!/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/.test(raw)) throw new FlagReason(`must be a DNS-1123 label (lower-case letters, digits and '-', at most 63), got "${raw}"`)
      return raw
    },
    defaultValue: () => hostnameAsNodeName(osHostname()),
    defaultText: 'the host name',
  },
  dockerHost: {
    flag: '--docker-host',
    valueName: 'URL',
    description: 'the Docker Engine API the agent runs pods through',
    env: 'DOCKER_HOST',
    parse: (raw) => {
      if (!/^(unix:\/\/\/.+|tcp:\/\/[^/]+:\d+|npipe:.+)$/.test(raw)) throw new FlagReason(`must be unix:///path or tcp://host:port, got "${raw}"`)
      return raw
    },
    defaultValue: () => 'unix:///var/run/docker.sock',
    defaultText: 'unix:///var/run/docker.sock',
  },
  reserveCpuMilli: {
    flag: '--reserve-cpu',
    valueName: 'CPU',
    description: 'CPU kept back from pods for the system (100m, 0.5)',
    parse: (raw) => parseMilliCpu(raw),
    defaultValue: () => 100,
    defaultText: '100m',
  },
  reserveMemoryBytes: {
    flag: '--reserve-memory',
    valueName: 'SIZE',
    description: 'memory kept back from pods for the system (128Mi)',
    parse: (raw) => parseByteSize(raw),
    defaultValue: () => 128 * 1024 ** 2,
    defaultText: '128Mi',
  },
  heartbeatIntervalMs: heartbeatFlag(),
  logLevel: logLevelFlag(),
  secretsDir: {
    flag: '--secrets-dir',
    valueName: 'DIR',
    description: "where secret volume files live, on tmpfs so they never reach the SD card (the agent warns when it is not)",
    parse: (raw) => {
      if (!raw.startsWith('/')) throw new FlagReason(`must be an absolute directory path, got "${raw}"`)
      return resolvePath(raw)
    },
    defaultValue: () => '',
    defaultText: '/run/bramble/<clusterId>/pods',
  },
  podMtu: {
    flag: '--pod-mtu',
    valueName: 'BYTES',
    description: "MTU of the node's pod bridge; it must fit inside the WireGuard tunnel's (0: the link's minus 80)",
    parse: (raw) => {
      const mtu = parseInteger(raw, 0, 65535, 'an MTU in bytes (576-9000), or 0 for the link MTU minus 80')
      if (mtu !== 0 && (mtu < 576 || mtu > 9000)) throw new FlagReason(`must be an MTU in bytes (576-9000), or 0 for the link MTU minus 80, got "${raw}"`)
      return mtu
    },
    defaultValue: () => 0,
    defaultText: '0: the link MTU minus 80',
  },
  wireguardInterface: {
    flag: '--wireguard-interface',
    valueName: 'NAME',
    description: "the overlay's WireGuard interface (unique per network namespace on one machine); none turns the overlay off",
    parse: (raw) => {
      if (raw === 'none') return ''
      if (!/^[a-zA-Z0-9_=+.-]{1,15}$/.test(raw)) throw new FlagReason(`must be an interface name of 1-15 letters, digits or _=+.-, or none, got "${raw}"`)
      return raw
    },
    defaultValue: () => 'bramble0',
    defaultText: 'bramble0',
  },
  wireguardPort: {
    flag: '--wireguard-port',
    valueName: 'PORT',
    description: 'UDP port WireGuard listens on',
    parse: (raw) => parseInteger(raw, 1, 65535, 'a port 1-65535'),
    defaultValue: () => 51820,
    defaultText: '51820',
  },
  advertiseAddress: {
    flag: '--advertise-address',
    valueName: 'IP',
    description: "the address other nodes reach this one at (WireGuard's endpoint)",
    parse: (raw) => {
      if (isIP(raw) === 0) throw new FlagReason(`must be an IP address, got "${raw}"`)
      return raw
    },
    defaultValue: () => '',
    defaultText: "the node's InternalIP",
  },
  wireguardKeepaliveSeconds: {
    flag: '--wireguard-keepalive',
    valueName: 'DURATION',
    description: 'persistent keepalive towards every peer, for nodes behind NAT (0 turns it off)',
    parse: (raw) => {
      const ms = raw.trim() === '0' ? 0 : parseDurationMs(raw)
      if (ms % 1000 !== 0 || ms > 65_535_000) throw new FlagReason(`must be whole seconds up to 65535s, got "${raw}"`)
      return ms / 1000
    },
    defaultValue: () => 25,
    defaultText: '25s',
  },
  clusterDns: {
    flag: '--cluster-dns',
    valueName: 'IP',
    description: "the address pods ask for names (<svc>.<ns>.svc.cluster.local); the agent answers there and adds it to the loopback; none turns it off",
    parse: (raw) => {
      if (raw === 'none') return ''
      if (isIP(raw) !== 4) throw new FlagReason(`must be an IPv4 address or none, got "${raw}"`)
      return raw
    },
    defaultValue: () => '169.254.20.10',
    defaultText: '169.254.20.10',
  },
  metricsAddress: {
    flag: '--metrics-address',
    valueName: 'HOST:PORT',
    description: "where the agent serves Prometheus /metrics over plain HTTP (keep it on loopback unless the network is trusted); none turns it off",
    parse: (raw) => parseListenAddress(raw),
    defaultValue: () => ({ host: '127.0.0.1', port: 10255 }),
    defaultText: '127.0.0.1:10255',
  },
  deviceDir: {
    flag: '--device-dir',
    valueName: 'DIR',
    description: 'where the node looks for serial (ttyUSB*, ttyACM*), i2c-*, video* and gpiochip* devices, advertised as devices.bramble.dev/<class> resources',
    parse: (raw) => {
      if (!raw.startsWith('/')) throw new FlagReason(`must be an absolute directory path, got "${raw}"`)
      return resolvePath(raw)
    },
    defaultValue: () => '/dev',
    defaultText: '/dev',
  },
  imageGcHighPercent: {
    flag: '--image-gc-high-threshold',
    valueName: 'PERCENT',
    description: "when the engine's image filesystem is this full, unused images are removed, least recently used first (never one a pod uses)",
    parse: (raw) => parseInteger(raw, 1, 100, 'a whole percent from 1 to 100'),
    defaultValue: () => 85,
    defaultText: '85',
  },
  imageGcLowPercent: {
    flag: '--image-gc-low-threshold',
    valueName: 'PERCENT',
    description: 'image garbage collection removes images until the filesystem is no fuller than this (below --image-gc-high-threshold)',
    parse: (raw) => parseInteger(raw, 0, 99, 'a whole percent from 0 to 99'),
    defaultValue: () => 80,
    defaultText: '80',
  },
}

/** `HOST:PORT` (`[::1]:PORT` for IPv6) with an IP address, or `none`: undefined. */
function parseListenAddress(raw: string): { host: string; port: number } | undefined {
  if (raw === 'none') return undefined
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(raw.trim())
  const host = m?.[1] ?? m?.[2]
  const port = Number(m?.[3])
  if (!m || !host || isIP(host) === 0 || port > 65535) throw new FlagReason(`must be IP:PORT with a port 0-65535 (127.0.0.1:10255, [::1]:10255) or none, got "${raw}"`)
  return { host, port }
}

export function resolveAgentFlags(raw: RawFlags, env: NodeJS.ProcessEnv = process.env): AgentFlags {
  const flags = resolveFlags(AGENT_FLAGS, raw, env)
  if (flags.imageGcLowPercent >= flags.imageGcHighPercent) {
    throw new ConfigError(AGENT_FLAGS.imageGcLowPercent.flag, `must be below --image-gc-high-threshold (${flags.imageGcHighPercent}), got ${flags.imageGcLowPercent}`)
  }
  return flags
}

export interface TokenCreateConfig {
  dataDir: string
  /** How long a new join token stays valid. */
  joinTokenTtlMs: number
}

/** Commands that only need the data dir (`token list`, `token revoke`). */
export const DATA_DIR_FLAGS: FlagSchema<{ dataDir: string }> = { dataDir: dataDirFlag() }

/** `bramble check`: the data dir whose certificates and hub it looks at, and the Docker it asks. */
export const CHECK_FLAGS: FlagSchema<{ dataDir: string; dockerHost: string }> = { dataDir: dataDirFlag(), dockerHost: AGENT_FLAGS.dockerHost }

/** `bramble token create`: works on the hub's data dir directly. */
export const TOKEN_CREATE_FLAGS: FlagSchema<TokenCreateConfig> = {
  dataDir: dataDirFlag(),
  joinTokenTtlMs: {
    flag: '--ttl',
    valueName: 'DURATION',
    description: 'how long the join token stays valid (30m, 24h, 7d)',
    parse: (raw) => parseDurationMs(raw),
    defaultValue: () => 24 * 3_600_000,
    defaultText: '24h',
  },
}

/** Flag values as commander hands them over (keyed by commander's camelCase attribute name). */
export type RawFlags = Record<string, unknown>

/** Commander's attribute name for a flag: `--api-port` → `apiPort`. */
export function optionAttribute(flag: string): string {
  return flag.replace(/^--/, '').replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())
}

/**
 * Resolves every flag of a schema, in the schema's order: the flag, else its environment variable,
 * else its default. Throws ConfigError naming the first bad flag.
 */
export function resolveFlags<C>(schema: FlagSchema<C>, raw: RawFlags, env: NodeJS.ProcessEnv = process.env): C {
  const resolved: Partial<C> = {}
  for (const key of Object.keys(schema) as (keyof C)[]) {
    const spec = schema[key]
    const given = raw[optionAttribute(spec.flag)]
    const fromEnv = spec.env ? env[spec.env] : undefined
    let value: C[keyof C]
    if (given !== undefined) value = parseWith(spec, String(given), spec.flag)
    else if (fromEnv !== undefined && fromEnv !== '') value = parseWith(spec, fromEnv, spec.env!)
    else value = spec.defaultValue(resolved, env)
    resolved[key] = value
  }
  return resolved as C
}

export function resolveHubConfig(raw: RawFlags, env: NodeJS.ProcessEnv = process.env): HubConfig {
  const config = resolveFlags(HUB_FLAGS, raw, env)
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

/** The kubeconfig a client command uses: `--kubeconfig`, else `KUBECONFIG` (its first entry), else the data dir's. */
export function resolveKubeconfigPath(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  if (flag !== undefined && flag !== '') return resolvePath(flag)
  const fromEnv = env.KUBECONFIG?.split(':').find((p) => p !== '')
  if (fromEnv) return resolvePath(fromEnv)
  return join(resolvePath(defaultDataDir(env)), 'kubeconfig.yaml')
}

export function isAllInterfaces(address: string): boolean {
  return ALL_INTERFACES.has(address)
}

function parseWith<C, K extends keyof C>(spec: FlagSpec<C, K>, raw: string, name: string): C[K] {
  try {
    return spec.parse(raw)
  } catch (err) {
    if (err instanceof FlagReason) throw new ConfigError(name, err.message)
    throw err
  }
}

