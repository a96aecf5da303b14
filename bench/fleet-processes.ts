// The processes bench/fleet runs, and what it reads of them: the hub (the real `bramble hub`
// command), Mosquitto when it is the broker, and the simulated agents' process. Each gets the
// highest open-file limit the machine allows (Node cannot raise its own: the child is started
// through `prlimit --nofile=HARD:HARD`), since the agents' process holds one TLS socket per agent
// and the broker another. What each process got is read back from /proc/PID/limits and printed.
// CPU time and resident memory come from /proc/PID/stat and /proc/PID/status.

import { execFileSync, fork, spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { extname, join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import type { SimulatedAgentsOptions } from './simulated-agents.js'

/** Clock ticks per second of /proc/PID/stat's utime and stime (USER_HZ: 100 on Linux everywhere). */
const TICKS_PER_SECOND = Number(tryRun('getconf', ['CLK_TCK']) ?? 100) || 100

/** This process's hard open-file limit (the most a child may be given). */
export function hardOpenFileLimit(): number {
  return openFileLimit('self').hard
}

/** A process's open-file limit, as /proc/PID/limits states it. */
export function openFileLimit(pid: number | 'self'): { soft: number; hard: number } {
  const line = readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'))
  const [soft, hard] = (line ?? '').trim().split(/\s{2,}/).slice(1, 3).map((v) => (v === 'unlimited' ? Infinity : Number(v)))
  if (soft === undefined || hard === undefined || Number.isNaN(soft) || Number.isNaN(hard)) throw new Error(`/proc/${pid}/limits states no open-file limit`)
  return { soft, hard }
}

/** `command args` run under the hard open-file limit: through prlimit when it is there, as it is. */
function raised(command: string, args: string[]): { command: string; args: string[] } {
  const hard = hardOpenFileLimit()
  if (!Number.isFinite(hard) || tryRun('prlimit', ['--version']) === undefined) return { command, args }
  return { command: 'prlimit', args: [`--nofile=${hard}:${hard}`, command, ...args] }
}

export interface ProcessSample {
  /** User plus system CPU time so far, seconds. */
  cpuSeconds: number
  rssBytes: number
  /** The highest RSS so far (VmHWM). */
  peakRssBytes: number
}

export function sampleProcess(pid: number): ProcessSample {
  // The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // utime and stime are fields 14 and 15 of the whole line: 11 and 12 after the command.
  const cpuSeconds = (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024
  return { cpuSeconds, rssBytes: kib('VmRSS'), peakRssBytes: kib('VmHWM') }
}

/** What a hub process is reached by. */
export interface HubProcess {
  pid: number
  /** https://127.0.0.1:PORT */
  server: string
  /** The admin token and CA of its kubeconfig. */
  token: string
  ca: string
  /** A join token the hub made on first start. */
  joinToken: string
  openFiles: { soft: number; hard: number }
  /** The last lines the hub logged (warn and above). */
  logTail(): string
  stop(): Promise<void>
}

export interface HubProcessOptions {
  dataDir: string
  mqttPort: number
  /** Extra `bramble hub` flags. */
  args: string[]
  /** Extra node flags (--cpu-prof). */
  nodeArgs?: string[]
  timeoutMs: number
}

/** The file of this repository's `bramble` command beside this bench: .js when built, .ts under the test runner's loader. */
function brambleMain(): string {
  return fileURLToPath(new URL(`../src/main${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
}

export async function startHubProcess(o: HubProcessOptions): Promise<HubProcess> {
  mkdirSync(o.dataDir, { recursive: true, mode: 0o700 })
  const hubArgs = ['hub', '--data-dir', o.dataDir, '--listen', '127.0.0.1', '--api-port', '0', '--mqtt-port', String(o.mqttPort), '--log-level', 'warn', ...o.args]
  const { command, args } = raised(process.execPath, [...process.execArgv, ...(o.nodeArgs ?? []), brambleMain(), ...hubArgs])
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', (d) => (log = (log + d).slice(-8_000)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000)
    await exited
    clearTimeout(timer)
  }
  const kubeconfig = join(o.dataDir, 'kubeconfig.yaml')
  const deadline = performance.now() + o.timeoutMs
  while (!existsSync(kubeconfig)) {
    if (child.exitCode !== null) throw new Error(`bramble hub exited with ${child.exitCode}: ${log}`)
    if (performance.now() > deadline) {
      await stop()
      throw new Error(`bramble hub wrote no kubeconfig in time: ${log}`)
    }
    await sleep(50)
  }
  const config = parseYaml(readFileSync(kubeconfig, 'utf8'))
  return {
    pid: child.pid!,
    server: config.clusters[0].cluster.server,
    token: config.users[0].user.token,
    ca: Buffer.from(config.clusters[0].cluster['certificate-authority-data'], 'base64').toString('utf8'),
    joinToken: readFileSync(join(o.dataDir, 'join-token'), 'utf8').trim(),
    openFiles: openFileLimit(child.pid!),
    logTail: () => log,
    stop,
  }
}

export interface MosquittoProcess {
  pid: number
  port: number
  pidFile: string
  openFiles: { soft: number; hard: number }
  stop(): Promise<void>
}

/**
 * Mosquitto over TLS with the hub's own serving certificate (so agents check it against the CA
 * their join gave them), reading the password and ACL files the hub writes into
 * `<hubDataDir>/mosquitto` (empty until the hub starts: nobody gets in before). Persistence off.
 */
export async function startMosquittoProcess(o: { dir: string; hubDataDir: string; port: number; timeoutMs: number }): Promise<MosquittoProcess> {
  const authDir = join(o.hubDataDir, 'mosquitto')
  mkdirSync(authDir, { recursive: true, mode: 0o700 })
  for (const file of ['mosquitto-passwd', 'mosquitto-acl']) if (!existsSync(join(authDir, file))) writeFileSync(join(authDir, file), '', { mode: 0o600 })
  const pidFile = join(o.dir, 'mosquitto.pid')
  const conf = join(o.dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      `user ${process.env.USER ?? 'root'}`, // keep this user: the hub's files are owner-only
      'persistence false',
      // Mosquitto drops QoS 1 messages past 1,000 queued for a client by default: a hub falling
      // behind a rollout lost pod statuses for good (pods stayed Pending to the hub). Bounded, far higher.
      'max_queued_messages 1000000',
      `pid_file ${pidFile}`,
      'log_dest stderr',
      'log_type error',
      'per_listener_settings false',
      'allow_anonymous false',
      `password_file ${join(authDir, 'mosquitto-passwd')}`,
      `acl_file ${join(authDir, 'mosquitto-acl')}`,
      `listener ${o.port} 127.0.0.1`,
      'protocol mqtt',
      `cafile ${join(o.hubDataDir, 'ca.crt')}`,
      `certfile ${join(o.hubDataDir, 'server.crt')}`,
      `keyfile ${join(o.hubDataDir, 'server.key')}`,
      'tls_version tlsv1.2',
      '',
    ].join('\n'),
  )
  const { command, args } = raised('mosquitto', ['-c', conf])
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let log = ''
  child.stderr!.on('data', (d) => (log = (log + d).slice(-4_000)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    await exited
    clearTimeout(timer)
  }
  const deadline = performance.now() + o.timeoutMs
  while (!existsSync(pidFile)) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${log}`)
    if (performance.now() > deadline) {
      await stop()
      throw new Error(`mosquitto wrote no pid file in time: ${log}`)
    }
    await sleep(50)
  }
  return { pid: child.pid!, port: o.port, pidFile, openFiles: openFileLimit(child.pid!), stop }
}

export interface AgentsProcess {
  child: ChildProcess
  openFiles: { soft: number; hard: number }
  /** Resolves once every agent has joined and started; rejects if one failed or the deadline passed. */
  started: Promise<void>
  stop(): Promise<void>
}

/** The simulated agents (bench/simulated-agents.ts) in a child process of their own, with room for their sockets. */
export function forkAgentsProcess(options: SimulatedAgentsOptions, deadline: number, heapMiB: number, extraNodeArgs: string[] = []): AgentsProcess {
  const path = fileURLToPath(new URL(`./simulated-agents${extname(fileURLToPath(import.meta.url))}`, import.meta.url))
  const nodeArgs = [...process.execArgv, `--max-old-space-size=${heapMiB}`, ...extraNodeArgs]
  const { command, args } = raised(process.execPath, nodeArgs)
  // fork runs `execPath execArgv path`: prlimit, then node with its flags, keeping the IPC channel.
  const child = fork(path, [], { execPath: command, execArgv: command === process.execPath ? nodeArgs : args, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the simulated agents did not all start in time')), Math.max(0, deadline - performance.now()))
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the simulated agents' process exited (${code}) before starting`))
    })
    child.on('message', (msg: { type: string; message?: string }) => {
      if (msg.type === 'started') {
        clearTimeout(timer)
        resolve()
      } else if (msg.type === 'error') {
        clearTimeout(timer)
        reject(new Error(`a simulated agent failed to start: ${msg.message}`))
      }
    })
  })
  started.catch(() => {})
  child.send({ type: 'start', options })
  return {
    child,
    openFiles: waitForExec(child.pid!),
    started,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      if (child.connected) child.send({ type: 'stop' })
      else child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 30_000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** The limit of a process started through prlimit, read once prlimit has become node. */
function waitForExec(pid: number): { soft: number; hard: number } {
  for (let i = 0; i < 200; i++) {
    const comm = tryRead(`/proc/${pid}/comm`)?.trim()
    if (comm !== 'prlimit') break
    execFileSync('sleep', ['0.01'])
  }
  return openFileLimit(pid)
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** True when a command can be started here (mosquitto may not be installed). */
export function commandExists(command: string, args: string[] = ['--help']): boolean {
  try {
    execFileSync(command, args, { stdio: 'ignore', timeout: 10_000 })
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ENOENT'
  }
}

function tryRun(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 })
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? undefined : ''
  }
}

function tryRead(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return undefined
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms))
}
