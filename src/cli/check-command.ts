// `bramble check`: reads the host's facts (the certificates in the data dir, Docker, cgroups,
// WireGuard, the architecture, the clock against the hub, NTP sync, free disk) and prints
// preflight-checks' verdict on each, one line per check. The exit code is 1 when a check failed.

import { execFile } from 'node:child_process'
import { accessSync, constants, existsSync, readFileSync } from 'node:fs'
import { statfs } from 'node:fs/promises'
import { request } from 'node:http'
import { release } from 'node:os'
import { delimiter, dirname, join } from 'node:path'
import { clockSkewMs, fetchHubDate } from '../lib/tls-failure.js'
import { loadClientConfig } from './kubeconfig.js'
import {
  archCheck,
  certificateCheck,
  cgroupsCheck,
  checkExitCode,
  clockCheck,
  diskCheck,
  dockerCheck,
  formatResults,
  parseChronycTracking,
  parseTimedatectl,
  timeSyncCheck,
  wireguardCheck,
  type CertificateFact,
  type CgroupFact,
  type CheckResult,
  type ClockFact,
  type DiskFact,
  type DockerFact,
  type TimeSyncFact,
} from './preflight-checks.js'

export interface CheckOptions {
  dataDir: string
  /** `unix:///var/run/docker.sock` or `tcp://host:port`. */
  dockerHost: string
}

const PROBE_TIMEOUT_MS = 5000

/** Runs every check and prints one line each; returns the exit code. */
export async function checkCommand(options: CheckOptions, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const results = await runChecks(options)
  out.write(formatResults(results))
  return checkExitCode(results)
}

export async function runChecks(options: CheckOptions): Promise<CheckResult[]> {
  const { dataDir } = options
  const identity = readIdentity(dataDir)
  const [docker, clock, timeSync, disk] = await Promise.all([dockerFact(options.dockerHost), clockFact(dataDir, identity), timeSyncFact(), diskFact(dataDir)])
  const now = Date.now()
  return [
    ...certificateResults(dataDir, identity, now),
    dockerCheck(docker, options.dockerHost),
    cgroupsCheck(cgroupFact()),
    wireguardCheck({ kernelModule: hasWireGuardModule(), wireguardGo: onPath('wireguard-go'), wgTool: onPath('wg') }),
    archCheck(process.arch),
    clockCheck(clock, Date.now()),
    timeSyncCheck(timeSync),
    diskCheck(disk),
  ]
}

/** The agent's identity.json, as far as the checks need it. */
interface IdentityFacts {
  path: string
  ca?: string
  apiServer?: string
  unreadable?: boolean
}

function readIdentity(dataDir: string): IdentityFacts | undefined {
  const path = join(dataDir, 'agent', 'identity.json')
  if (!existsSync(path)) return undefined
  try {
    const doc = JSON.parse(readFileSync(path, 'utf8')) as { ca?: unknown; apiServer?: unknown }
    return { path, ca: typeof doc.ca === 'string' ? doc.ca : undefined, apiServer: typeof doc.apiServer === 'string' ? doc.apiServer : undefined }
  } catch {
    return { path, unreadable: true }
  }
}

function certificateResults(dataDir: string, identity: IdentityFacts | undefined, nowMs: number): CheckResult[] {
  const facts: CertificateFact[] = []
  const file = (name: string) => join(dataDir, name)
  if (existsSync(file('ca.crt'))) facts.push({ label: 'ca.crt (cluster CA)', role: 'ca', pem: readFileSync(file('ca.crt'), 'utf8') })
  if (existsSync(file('server.crt'))) facts.push({ label: 'server.crt (hub API and broker)', role: 'serving', pem: readFileSync(file('server.crt'), 'utf8') })
  if (identity) facts.push({ label: "agent/identity.json (the CA this node pinned)", role: 'ca', pem: identity.unreadable ? undefined : identity.ca })
  if (facts.length === 0) return [{ name: 'certificates', status: 'warn', detail: `none in ${dataDir}: not a hub's or a joined node's data dir yet (pass --data-dir)` }]
  return facts.map((fact) => certificateCheck(fact, nowMs))
}

/** Docker's /version over its socket or TCP address. */
function dockerFact(dockerHost: string): Promise<DockerFact> {
  let target: { socketPath: string } | { host: string; port: number }
  if (dockerHost.startsWith('unix://')) target = { socketPath: dockerHost.slice('unix://'.length) }
  else if (dockerHost.startsWith('tcp://')) {
    const url = new URL(dockerHost.replace(/^tcp:/, 'http:'))
    target = { host: url.hostname, port: Number(url.port) }
  } else return Promise.resolve({ error: 'only unix:// and tcp:// addresses are checked' })
  return new Promise((resolve) => {
    const req = request({ ...target, path: '/version', timeout: PROBE_TIMEOUT_MS }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (chunk: string) => (body += chunk))
      res.on('end', () => {
        try {
          const doc = JSON.parse(body) as { Version?: string; ApiVersion?: string }
          resolve(doc.Version ? { version: doc.Version, apiVersion: doc.ApiVersion } : { error: `its /version answered HTTP ${res.statusCode} without a version` })
        } catch {
          resolve({ error: `its /version answered HTTP ${res.statusCode}, not JSON` })
        }
      })
    })
    req.on('timeout', () => req.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS / 1000} s`)))
    req.on('error', (err) => resolve({ error: err.message }))
    req.end()
  })
}

/** cgroup v2 when /sys/fs/cgroup itself is cgroup2; on v1 the controllers /proc/cgroups says are enabled. */
function cgroupFact(): CgroupFact {
  const mounts = readText('/proc/mounts')
  const unified = mounts.split('\n').some((line) => {
    const [, mountPoint, type] = line.split(' ')
    return mountPoint === '/sys/fs/cgroup' && type === 'cgroup2'
  })
  if (unified) return { unified, controllers: readText('/sys/fs/cgroup/cgroup.controllers').trim().split(/\s+/).filter(Boolean) }
  const controllers = readText('/proc/cgroups')
    .split('\n')
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(/\s+/))
    .filter((cols) => cols[3] === '1')
    .map((cols) => cols[0])
  return { unified, controllers }
}

/** Loaded, built in, or available to load for the running kernel. */
function hasWireGuardModule(): boolean {
  if (existsSync('/sys/module/wireguard')) return true
  const modules = join('/lib/modules', release())
  return ['modules.builtin', 'modules.dep'].some((name) => /(^|\/)wireguard\.ko/m.test(readText(join(modules, name))))
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    try {
      accessSync(join(dir, command), constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/** The hub this data dir knows: the agent's identity first, else the hub's own kubeconfig. */
async function clockFact(dataDir: string, identity: IdentityFacts | undefined): Promise<ClockFact> {
  let hub = identity?.apiServer
  const kubeconfig = join(dataDir, 'kubeconfig.yaml')
  if (!hub && existsSync(kubeconfig)) {
    try {
      hub = loadClientConfig(kubeconfig).server
    } catch {
      // an unreadable kubeconfig names no hub: the clock is then not compared
    }
  }
  if (!hub) return { hub: undefined }
  const date = await fetchHubDate(hub, PROBE_TIMEOUT_MS)
  return { hub, skewMs: clockSkewMs(date, Date.now()) }
}

/** The first time service that answers: timedatectl (needs a running systemd), chronyc, then the
 * file systemd-timesyncd leaves once it has synchronized (it says nothing before). */
async function timeSyncFact(): Promise<TimeSyncFact> {
  const rtc = existsSync('/sys/class/rtc/rtc0')
  const timedatectl = parseTimedatectl(await commandOutput('timedatectl', ['show', '-p', 'NTPSynchronized']))
  if (timedatectl !== undefined) return { source: 'timedatectl', synchronized: timedatectl, rtc }
  const chrony = parseChronycTracking(await commandOutput('chronyc', ['-n', 'tracking']))
  if (chrony !== undefined) return { source: 'chronyc', synchronized: chrony, rtc }
  if (existsSync('/run/systemd/timesync/synchronized')) return { source: 'systemd-timesyncd', synchronized: true, rtc }
  return { source: undefined, synchronized: false, rtc }
}

/** A command's stdout, or '' when it is missing, fails or does not answer in time. */
function commandOutput(file: string, args: string[]): Promise<string> {
  return new Promise((resolve) => execFile(file, args, { timeout: PROBE_TIMEOUT_MS }, (err, stdout) => resolve(err ? '' : stdout)))
}

/** Free space where the data dir is (or would be: its nearest existing parent). */
async function diskFact(dataDir: string): Promise<DiskFact> {
  let path = dataDir
  while (!existsSync(path) && dirname(path) !== path) path = dirname(path)
  const stats = await statfs(path)
  return { path, freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize }
}

function readText(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}
