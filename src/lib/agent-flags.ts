// The flags of `bramble up` (AgentFlags), and the checks across them (the image GC thresholds).

import { isIP } from 'node:net'
import { hostname as osHostname } from 'node:os'
import { resolve as resolvePath } from 'node:path'
import { ConfigError } from './config-errors.js'
import { FlagReason, hostnameAsNodeName, parseByteSize, parseDurationMs, parseInteger, parseMilliCpu } from './config-values.js'
import { dataDirFlag, heartbeatFlag, logLevelFlag, type LogLevel } from './common-flags.js'
import { resolveFlags, type FlagSchema, type RawFlags } from './flag-schema.js'

export interface AgentFlags {
  /** The agent keeps its identity, replica and pod files under DIR/agent. */
  dataDir: string
  /** The hubs' API addresses, HOST[:PORT] (port 6443 by default), comma-separated: tried in turn. Only needed to join. */
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

/** A directory flag: an absolute path, normalized. */
function absoluteDir(raw: string): string {
  if (!raw.startsWith('/')) throw new FlagReason(`must be an absolute directory path, got "${raw}"`)
  return resolvePath(raw)
}

export const AGENT_FLAGS: FlagSchema<AgentFlags> = {
  dataDir: dataDirFlag(),
  hub: {
    flag: '--hub',
    valueName: 'HOST[:PORT][,HOST[:PORT]...]',
    description: "the hub's API address, or the addresses of highly available hubs, tried in turn (needed to join)",
    env: 'BRAMBLE_HUB',
    parse: (raw) => {
      const hubs = raw.split(',').map((hub) => hub.trim())
      for (const hub of hubs) {
        if (!/^(\[[0-9a-f:]+\]|[a-z0-9.-]+)(:\d{1,5})?$/i.test(hub)) throw new FlagReason(`must be HOST or HOST:PORT, or several of them comma-separated, got "${hub}" in "${raw}"`)
      }
      return hubs.join(',')
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
    parse: absoluteDir,
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
    parse: absoluteDir,
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
