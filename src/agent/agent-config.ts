// The agent's options, as the one config schema (src/lib/config.ts) will hand them over from the
// `bramble agent` flags: --hub, --token, --node-name, --docker-host, --data-dir, --reserve-cpu,
// --reserve-memory, --heartbeat-interval.

import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Quantity } from '../api/quantity.js'
import type { BackoffSettings } from './backoff.js'
import type { ResourceReserve } from './node-status.js'
import type { ImageGcThresholds } from './image-gc-planner.js'

export interface AgentConfig {
  /** Holds `agent/identity.json`, `agent/replica/` and `agent/pods/`. */
  dataDir: string
  /** `host[:port]` of the hub's API (6443 by default); needed only to join. */
  hub?: string
  /** Join token; needed only until this node has joined. */
  token?: string
  /** Defaults to the host name, lower-cased. */
  nodeName?: string
  /** The Docker engine (DOCKER_HOST form); main.ts builds the runtime from it. */
  dockerHost?: string
  /** Kept back from allocatable for the system and the agent (--reserve-cpu 250m, --reserve-memory 256Mi). */
  reserve: ResourceReserve
  /** Heartbeat period (--heartbeat-interval, default 5 s). */
  heartbeatIntervalMs: number
  /** A followed log stream ends after this long (default 10 min); the client may ask again. */
  logsFollowMaxMs?: number
  /** Every pod is looked at again this often, whatever the engine says (default 30 s; engine events drive the rest). */
  resyncMs?: number
  /** One MQTT connection attempt lasts this long before the next starts (default 30 s). */
  mqttConnectAttemptMs?: number
  mqttReconnect?: { minMs: number; maxMs: number }
  /** The WireGuard overlay (--wireguard-interface, --wireguard-port, --wireguard-keepalive, --advertise-address); absent: off. */
  mesh?: { interfaceName: string; listenPort: number; keepaliveSeconds: number; advertiseAddress?: string; mtu?: number }
  /**
   * Services on this node: the proxy rules (with deps.iptables) and the pods' DNS server at
   * `dnsAddress` (default 169.254.20.10, '' for none: a link-local address the agent adds to the
   * loopback interface, so every pod network reaches it), forwarding other names to `upstreams`
   * (default: /etc/resolv.conf's).
   */
  services?: { dnsAddress?: string; dnsPort?: number; upstreams?: string[]; clusterDomain?: string; clusterCidr?: string }
  /** Pod runtime tuning; defaults suit a Pi. */
  pods?: {
    pauseImage?: string
    network?: string
    log?: { maxSize: string; maxFile: number }
    defaultGraceSeconds?: number
    backoff?: BackoffSettings
    /** Memory-backed directory for secret volume files, kept off the SD card (default /run/bramble/<clusterId>/pods; /run is tmpfs on Debian and Raspberry Pi OS). */
    secretsDir?: string
  }
  /** The pod network (with deps.podNetwork): the bridge MTU (--pod-mtu); absent, the tunnel's (link MTU minus WireGuard's 80). */
  podNetwork?: { mtu?: number }
  /** Where the agent serves Prometheus /metrics over HTTP (--metrics-address); absent, it serves none. Port 0 picks a free one. */
  metrics?: { host: string; port: number }
  /** Where the node's devices are looked for and advertised from (--device-dir, default /dev). */
  deviceDir?: string
  /** Image garbage collection (--image-gc-high-threshold, --image-gc-low-threshold; default 85% and 80%) and how often it looks. */
  imageGc?: ImageGcThresholds & { periodMs?: number }
}

export const AGENT_DEFAULTS = {
  /** Where pods find the node's DNS server: link-local, as Kubernetes' NodeLocal DNSCache. */
  clusterDnsAddress: '169.254.20.10',
  heartbeatIntervalMs: 5_000,
  logsFollowMaxMs: 10 * 60_000,
  resyncMs: 30_000,
  mqttConnectAttemptMs: 30_000,
  reserve: { cpuMillis: 100, memoryBytes: 128 * 1024 * 1024 },
  log: { maxSize: '10m', maxFile: 3 },
  defaultGraceSeconds: 30,
  deviceDir: '/dev',
} as const

/** Where secret volumes live unless `pods.secretsDir` says otherwise. */
export function defaultSecretsDir(clusterId: string): string {
  return join('/run/bramble', clusterId, 'pods')
}

/** `--reserve-cpu 250m --reserve-memory 256Mi` → a ResourceReserve; throws QuantityError. */
export function parseReserve(cpu: string | undefined, memory: string | undefined): ResourceReserve {
  return {
    cpuMillis: cpu === undefined ? AGENT_DEFAULTS.reserve.cpuMillis : Number(Quantity.parse(cpu).milliValue()),
    memoryBytes: memory === undefined ? AGENT_DEFAULTS.reserve.memoryBytes : Number(Quantity.parse(memory).value()),
  }
}

let version: string | undefined

/** Bramble's version, from the package.json above this file (src/ or dist/src/). */
export function brambleVersion(): string {
  if (version) return version
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 5; i++, dir = dirname(dir)) {
    const file = join(dir, 'package.json')
    if (!existsSync(file)) continue
    const pkg = JSON.parse(readFileSync(file, 'utf8'))
    if (pkg.name === 'bramble') return (version = String(pkg.version))
  }
  return (version = '0.0.0')
}
