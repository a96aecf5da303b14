// `bramble check`'s verdicts: each check takes the facts check-command.ts gathered from the host and
// says ok, warn or fail with one line a person can act on. Pure, so every verdict is testable.

import { X509Certificate } from 'node:crypto'
import { CA_WARN_BEFORE_MS, renewalDue } from '../lib/cert-lifetime.js'
import { CLOCK_SKEW_TOLERANCE_MS, describeDuration } from '../lib/tls-failure.js'

export type CheckStatus = 'ok' | 'warn' | 'fail'

export interface CheckResult {
  name: string
  status: CheckStatus
  detail: string
}

export interface CertificateFact {
  /** What the line calls it: `ca.crt (cluster CA)`. */
  label: string
  /** A CA is never renewed automatically; a serving certificate is, by the hub. */
  role: 'ca' | 'serving'
  /** Undefined when the file is there but holds no certificate. */
  pem: string | undefined
}

function day(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10)
}

export function certificateCheck(fact: CertificateFact, nowMs: number): CheckResult {
  const name = `certificate ${fact.label}`
  let cert: X509Certificate
  try {
    cert = new X509Certificate(fact.pem ?? '')
  } catch {
    return { name, status: 'fail', detail: 'holds no readable certificate; move it away and let the hub make a new one (a CA copy: join again)' }
  }
  const from = Date.parse(cert.validFrom)
  const to = Date.parse(cert.validTo)
  if (nowMs < from) {
    return { name, status: 'fail', detail: `not valid until ${new Date(from).toISOString()} by this machine's clock (${new Date(nowMs).toISOString()}): the clock is probably wrong; set the time (enable NTP)` }
  }
  if (nowMs >= to) {
    const fix = fact.role === 'serving' ? 'restart the hub: it renews its serving certificate at start' : 'the cluster needs a new CA: make one on the hub and join the nodes again'
    return { name, status: 'fail', detail: `expired on ${day(to)} (${describeDuration(nowMs - to)} ago); ${fix}` }
  }
  const left = `expires ${day(to)} (in ${describeDuration(to - nowMs)})`
  if (fact.role === 'ca' && to - nowMs < CA_WARN_BEFORE_MS) {
    return { name, status: 'warn', detail: `${left}; a CA is not renewed automatically because agents pin it: plan a new CA and join the nodes again before then` }
  }
  if (fact.role === 'serving' && renewalDue(cert, nowMs)) {
    return { name, status: 'warn', detail: `${left}; the hub renews it at start and daily: is the hub running?` }
  }
  return { name, status: 'ok', detail: left }
}

/** What Docker's /version answered, or why it could not be asked. */
export type DockerFact = { version: string; apiVersion?: string } | { error: string }

export function dockerCheck(fact: DockerFact, dockerHost: string): CheckResult {
  if ('error' in fact) return { name: 'docker', status: 'fail', detail: `cannot reach Docker at ${dockerHost}: ${fact.error}; start dockerd (or pass --docker-host)` }
  return { name: 'docker', status: 'ok', detail: `Docker ${fact.version}${fact.apiVersion ? ` (API ${fact.apiVersion})` : ''} at ${dockerHost}` }
}

export interface CgroupFact {
  /** A cgroup2 file system is mounted at /sys/fs/cgroup (the unified hierarchy). */
  unified: boolean
  /** Controllers available: cgroup.controllers on v2, the mounted hierarchies on v1. */
  controllers: string[]
}

/** Raspberry Pi OS ships with the memory controller off; memory limits then do nothing. */
const PI_MEMORY_FIX = 'on Raspberry Pi OS add `cgroup_enable=memory cgroup_memory=1` to the one line of /boot/firmware/cmdline.txt (/boot/cmdline.txt before Bookworm) and reboot'

export function cgroupsCheck(fact: CgroupFact): CheckResult {
  const name = 'cgroups'
  const version = fact.unified ? 'v2' : 'v1'
  if (!fact.controllers.includes('memory')) return { name, status: 'fail', detail: `cgroup ${version} without the memory controller: pod memory limits cannot be enforced; ${PI_MEMORY_FIX}` }
  if (!fact.unified) return { name, status: 'warn', detail: 'cgroup v1 with the memory controller: works, but v2 (systemd.unified_cgroup_hierarchy=1) is what Bramble is tested on' }
  return { name, status: 'ok', detail: `cgroup v2, controllers: ${fact.controllers.join(' ')}` }
}

export interface WireGuardFact {
  kernelModule: boolean
  wireguardGo: boolean
  wgTool: boolean
}

/** The overlay is needed only between nodes, so a missing WireGuard is a warning, not a failure. */
export function wireguardCheck(fact: WireGuardFact): CheckResult {
  const name = 'wireguard'
  const install = 'install `wireguard-tools` (and `wireguard-go` where the kernel has no WireGuard); a one-node cluster runs without it'
  if (!fact.wgTool) return { name, status: 'warn', detail: `no \`wg\` command: pods on this node cannot reach other nodes; ${install}` }
  if (!fact.kernelModule && !fact.wireguardGo) return { name, status: 'warn', detail: `\`wg\` is there but neither the kernel module nor wireguard-go; ${install}` }
  return { name, status: 'ok', detail: fact.kernelModule ? 'kernel module and `wg`' : 'wireguard-go and `wg` (no kernel module)' }
}

const MACHINE_OF_ARCH: Record<string, string> = { arm64: 'arm64', arm: 'armv7', x64: 'amd64' }

export function archCheck(nodeArch: string): CheckResult {
  const machine = MACHINE_OF_ARCH[nodeArch]
  if (!machine) return { name: 'arch', status: 'warn', detail: `${nodeArch}: not one Bramble is built and tested for (arm64, armv7, amd64)` }
  return { name: 'arch', status: 'ok', detail: machine }
}

/** The hub this node knows (its identity or kubeconfig) and what its Date header said. */
export type ClockFact = { hub: undefined } | { hub: string; skewMs: number | undefined }

export function clockCheck(fact: ClockFact, nowMs: number): CheckResult {
  const name = 'clock'
  const local = new Date(nowMs).toISOString()
  if (fact.hub === undefined) return { name, status: 'ok', detail: `${local} (no hub known in this data dir to compare with)` }
  if (fact.skewMs === undefined) return { name, status: 'warn', detail: `${local}; the hub at ${fact.hub} did not answer, so the clock could not be compared` }
  if (Math.abs(fact.skewMs) <= CLOCK_SKEW_TOLERANCE_MS) return { name, status: 'ok', detail: `${local}, within ${describeDuration(fact.skewMs)} of the hub's` }
  const direction = fact.skewMs > 0 ? 'behind' : 'ahead of'
  return { name, status: 'warn', detail: `${describeDuration(fact.skewMs)} ${direction} the hub's (${local}); TLS fails once it passes the certificates' backdating: set the time (enable NTP)` }
}

/** Whether the kernel's clock is kept by NTP, as the first of timedatectl, chronyc and
 * systemd-timesyncd that answered told; and whether the board has a real-time clock. */
export interface TimeSyncFact {
  /** `timedatectl`, `chronyc` or `systemd-timesyncd`; undefined when none of them answered. */
  source: string | undefined
  synchronized: boolean
  /** `/sys/class/rtc/rtc0`: most Pis before the Pi 5 have none and boot at the last saved time. */
  rtc: boolean
}

/** `timedatectl show -p NTPSynchronized` says `NTPSynchronized=yes|no`; undefined for anything else. */
export function parseTimedatectl(text: string): boolean | undefined {
  const m = /^NTPSynchronized=(yes|no)$/m.exec(text)
  return m ? m[1] === 'yes' : undefined
}

/** `chronyc tracking` says `Leap status : Normal` once synchronized, `Not synchronised` before. */
export function parseChronycTracking(text: string): boolean | undefined {
  const m = /^Leap status\s*:\s*(.+?)\s*$/m.exec(text)
  return m ? m[1] !== 'Not synchronised' : undefined
}

const TIME_SYNC_FIX = 'enable NTP: `sudo timedatectl set-ntp true` (systemd-timesyncd) or install chrony; a site with no Internet needs an NTP server of its own (chrony on the hub can serve one)'

export function timeSyncCheck(fact: TimeSyncFact): CheckResult {
  const name = 'time sync'
  // Without a real-time clock a power cut sends the clock back to the last saved time (fake-hwclock):
  // certificates then look not yet valid until NTP has set it.
  const noRtc = fact.rtc ? '' : '; this machine has no real-time clock, so after each boot the time is right only once NTP has set it'
  if (fact.source === undefined) return { name, status: 'warn', detail: `no time service answered (timedatectl, chronyc, systemd-timesyncd)${noRtc}; ${TIME_SYNC_FIX}` }
  if (fact.synchronized) return { name, status: 'ok', detail: `synchronized (${fact.source})${fact.rtc ? '' : '; no real-time clock: the time comes from NTP after each boot'}` }
  return { name, status: 'warn', detail: `not synchronized (${fact.source})${noRtc}; ${TIME_SYNC_FIX}` }
}

export interface DiskFact {
  path: string
  freeBytes: number
  totalBytes: number
}

const MIB = 1024 * 1024
const DISK_FAIL_BYTES = 200 * MIB
const DISK_WARN_BYTES = 1024 * MIB

export function diskCheck(fact: DiskFact): CheckResult {
  const name = 'disk'
  const free = `${Math.floor(fact.freeBytes / MIB)} MiB free of ${Math.floor(fact.totalBytes / MIB)} MiB at ${fact.path}`
  if (fact.freeBytes < DISK_FAIL_BYTES) return { name, status: 'fail', detail: `${free}: too little for the store and images; free some space` }
  if (fact.freeBytes < DISK_WARN_BYTES || fact.freeBytes < fact.totalBytes / 10) return { name, status: 'warn', detail: `${free}: running low` }
  return { name, status: 'ok', detail: free }
}

/** One line per check: status, name, detail, in columns. */
export function formatResults(results: CheckResult[]): string {
  const width = Math.max(...results.map((r) => r.name.length))
  return results.map((r) => `${r.status.padEnd(4)}  ${r.name.padEnd(width)}  ${r.detail}\n`).join('')
}

/** 1 when any check failed, else 0 (warnings pass). */
export function checkExitCode(results: CheckResult[]): number {
  return results.some((r) => r.status === 'fail') ? 1 : 0
}
