// The HostInfo port: what the node is (read once) and how it is doing (read cheaply, often). The
// adapter reads /etc/os-release and /proc/cpuinfo for the static facts and only syscalls and /proc or
// /sys reads for the dynamic ones, so an idle agent stays well under 1% of a core on a Pi. (It used
// systeminformation, whose sources alone held 2 MB of the agent's memory for two strings.)

import { execFile } from 'node:child_process'
import { readFile, stat, statfs } from 'node:fs/promises'
import os from 'node:os'
import { dirname } from 'node:path'

export interface HostFacts {
  /** Kubernetes architecture name: amd64, arm64, arm, ... */
  architecture: string
  /** `linux` */
  operatingSystem: string
  /** e.g. `Debian GNU/Linux 12 (bookworm)` */
  osImage: string
  kernelVersion: string
  hostname: string
  /** Non-loopback IPv4 addresses, the first being the node's InternalIP. */
  addresses: string[]
  cpu: { cores: number; model: string }
  memory: { totalBytes: number; availableBytes: number }
  /** The filesystem the agent keeps its data on (the root filesystem unless told otherwise). */
  disk: DiskFacts
  /** The filesystem the container engine writes images and containers to, when it is another one. */
  imageDisk?: DiskFacts
  /** SoC temperature in °C, where the board reports one. */
  temperatureC?: number
  /** Raspberry Pi firmware's throttling flags (`vcgencmd get_throttled`); absent elsewhere. */
  throttling?: { throttledNow: boolean; underVoltageNow: boolean; raw: string }
}

export interface DiskFacts {
  totalBytes: number
  /** Free for unprivileged writers (statfs bavail). */
  freeBytes: number
  /** A directory on the filesystem. */
  path?: string
}

export interface HostUsage {
  /** Fraction of all cores in use since the previous call (0..1). */
  cpu: number
  memoryUsedBytes: number
  temperatureC?: number
}

export interface HostInfo {
  facts(): Promise<HostFacts>
  usage(): Promise<HostUsage>
}

/** Node's `process.arch` / `uname -m` names to Kubernetes' (GOARCH) names. */
export function kubernetesArch(arch: string): string {
  const map: Record<string, string> = { x64: 'amd64', x86_64: 'amd64', amd64: 'amd64', arm64: 'arm64', aarch64: 'arm64', arm: 'arm', armv7l: 'arm', armv6l: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }
  return map[arch] ?? arch
}

/** Decodes `throttled=0x50005`: bit 0 under-voltage now, bit 2 throttled now, bit 3 soft temperature limit now. */
export function parseThrottled(output: string): HostFacts['throttling'] | undefined {
  const m = /throttled=(0x[0-9a-f]+)/i.exec(output)
  if (!m) return undefined
  const bits = Number.parseInt(m[1]!, 16)
  return { throttledNow: (bits & 0b1100) !== 0, underVoltageNow: (bits & 0b1) !== 0, raw: m[1]! }
}

export interface SystemHostInfoOptions {
  /** A directory on the filesystem whose size is reported: the agent's data dir (default `/`). */
  rootPath?: string
  /** A directory on the filesystem the container engine writes to (Docker's data root), when known. */
  imageFsPath?: string
  thermalZonePath?: string
  /** Throttling is asked of the firmware at most this often (it spawns a process). */
  throttlingEveryMs?: number
}

type StaticFacts = Pick<HostFacts, 'architecture' | 'operatingSystem' | 'osImage' | 'kernelVersion' | 'hostname' | 'cpu'>

export class SystemHostInfo implements HostInfo {
  private staticFacts: Promise<StaticFacts> | undefined
  private vcgencmd: boolean | undefined
  private throttling: { at: number; value: HostFacts['throttling'] } | undefined
  private lastCpu = cpuTimes()

  constructor(private readonly o: SystemHostInfoOptions = {}) {}

  async facts(): Promise<HostFacts> {
    const fixed = await (this.staticFacts ??= readStaticFacts())
    const { facts: disk, device } = await diskFacts(this.o.rootPath ?? '/')
    const image = this.o.imageFsPath ? await diskFacts(this.o.imageFsPath).catch(() => undefined) : undefined
    const temperatureC = await this.temperature()
    const throttling = await this.throttlingFlags()
    return {
      ...fixed,
      addresses: ipv4Addresses(),
      memory: { totalBytes: os.totalmem(), availableBytes: os.freemem() },
      disk,
      ...(image && image.device !== device ? { imageDisk: image.facts } : {}),
      ...(temperatureC !== undefined ? { temperatureC } : {}),
      ...(throttling ? { throttling } : {}),
    }
  }

  async usage(): Promise<HostUsage> {
    const now = cpuTimes()
    const total = now.total - this.lastCpu.total
    const busy = total - (now.idle - this.lastCpu.idle)
    this.lastCpu = now
    const temperatureC = await this.temperature()
    return {
      cpu: total > 0 ? Math.min(1, Math.max(0, busy / total)) : 0,
      // os.freemem() is MemAvailable on Linux: page cache counts as free.
      memoryUsedBytes: os.totalmem() - os.freemem(),
      ...(temperatureC !== undefined ? { temperatureC } : {}),
    }
  }

  private async temperature(): Promise<number | undefined> {
    try {
      const milli = Number((await readFile(this.o.thermalZonePath ?? '/sys/class/thermal/thermal_zone0/temp', 'utf8')).trim())
      return Number.isFinite(milli) ? Math.round(milli / 100) / 10 : undefined
    } catch {
      return undefined
    }
  }

  private async throttlingFlags(): Promise<HostFacts['throttling'] | undefined> {
    if (this.vcgencmd === false) return undefined
    const every = this.o.throttlingEveryMs ?? 30_000
    if (this.throttling && Date.now() - this.throttling.at < every) return this.throttling.value
    const output = await new Promise<string | undefined>((resolve) =>
      execFile('vcgencmd', ['get_throttled'], { timeout: 2_000 }, (err, stdout) => resolve(err ? undefined : stdout)),
    )
    if (output === undefined && this.vcgencmd === undefined) {
      this.vcgencmd = false // not a Raspberry Pi (or no firmware tools): never ask again
      return undefined
    }
    this.vcgencmd = true
    this.throttling = { at: Date.now(), value: output === undefined ? undefined : parseThrottled(output) }
    return this.throttling.value
  }
}

async function readStaticFacts(): Promise<StaticFacts> {
  const [osRelease, cpuinfo] = await Promise.all([readOr('/etc/os-release'), readOr('/proc/cpuinfo')])
  return {
    architecture: kubernetesArch(process.arch),
    operatingSystem: os.platform(),
    osImage: osImage(osRelease) ?? os.type(),
    kernelVersion: os.release(),
    hostname: os.hostname(),
    cpu: { cores: os.availableParallelism(), model: cpuModel(cpuinfo) ?? (os.cpus()[0]?.model.trim() || 'unknown') },
  }
}

async function readOr(path: string): Promise<string> {
  return readFile(path, 'utf8').catch(() => '')
}

/** What the kubelet reports as osImage: os-release's PRETTY_NAME (`Debian GNU/Linux 12 (bookworm)`). */
export function osImage(osRelease: string): string | undefined {
  const fields = new Map<string, string>()
  for (const line of osRelease.split('\n')) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) fields.set(m[1]!, m[2]!.replace(/^(["'])(.*)\1$/, '$2'))
  }
  const name = fields.get('NAME')
  const fallback = name && [name, fields.get('VERSION') ?? fields.get('VERSION_ID')].filter(Boolean).join(' ')
  return fields.get('PRETTY_NAME') || fallback || undefined
}

/** ARM's CPU part numbers (implementer 0x41) on the boards Bramble meets; arm64 kernels print no model name. */
const ARM_CORES: Record<string, string> = { '0xb76': 'ARM1176', '0xc07': 'Cortex-A7', '0xc08': 'Cortex-A8', '0xc09': 'Cortex-A9', '0xc0f': 'Cortex-A15', '0xd03': 'Cortex-A53', '0xd04': 'Cortex-A35', '0xd05': 'Cortex-A55', '0xd07': 'Cortex-A57', '0xd08': 'Cortex-A72', '0xd09': 'Cortex-A73', '0xd0a': 'Cortex-A75', '0xd0b': 'Cortex-A76', '0xd0c': 'Neoverse-N1', '0xd40': 'Neoverse-V1', '0xd49': 'Neoverse-N2' }

/** The processor's name from /proc/cpuinfo: ARM's core by its part number where ARM designed it, else the model name. */
export function cpuModel(cpuinfo: string): string | undefined {
  const field = (key: string): string | undefined => new RegExp(`^${key}\\s*:\\s*(.+)$`, 'mi').exec(cpuinfo)?.[1]?.trim()
  const part = field('CPU part')?.toLowerCase()
  const armCore = field('CPU implementer')?.toLowerCase() === '0x41' && part ? ARM_CORES[part] : undefined
  if (armCore) return `ARM ${armCore}`
  return field('model name') || undefined
}

/** The filesystem of `path`, or of its nearest existing parent (the data dir may not exist yet at the first call), and its device. */
async function diskFacts(path: string): Promise<{ facts: DiskFacts; device: number }> {
  for (let p = path; ; p = dirname(p)) {
    try {
      const [fs, st] = await Promise.all([statfs(p), stat(p)])
      return { facts: { totalBytes: fs.blocks * fs.bsize, freeBytes: fs.bavail * fs.bsize, path }, device: st.dev }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || dirname(p) === p) throw err
    }
  }
}

function ipv4Addresses(): string[] {
  const out: string[] = []
  for (const [name, list] of Object.entries(os.networkInterfaces())) {
    // Docker's and WireGuard's own interfaces are not how other nodes reach this one.
    if (/^(docker|br-|veth|wg|bramble)/.test(name)) continue
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.push(a.address)
  }
  return out
}

function cpuTimes(): { idle: number; total: number } {
  let idle = 0
  let total = 0
  for (const c of os.cpus()) {
    idle += c.times.idle
    total += c.times.user + c.times.nice + c.times.sys + c.times.idle + c.times.irq
  }
  return { idle, total }
}
