// Starts a real Mosquitto 2.0 on a free loopback port, over TLS with the test CA, with the
// password and ACL files the hub writes (allow_anonymous false, persistence off), and stops it.
// Or, for end-to-end tests of a hub started with --mqtt-url, one that reads the files a hub
// process writes into its data dir and tells its pid through a pid file (--mosquitto-pid-file).

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MOSQUITTO_ACL_FILE, MOSQUITTO_PASSWORD_FILE, mosquittoListenerConfig, writeMosquittoAuthFiles } from '../../src/hub/mosquitto-config.js'
import type { NodeCredentials } from '../../src/hub/node-credentials.js'
import { testTls } from './tls.js'

export interface RunningMosquitto {
  port: number
  url: string
  ca: string
  /** Rewrites the password file from the credentials and makes Mosquitto reload it. */
  reload(): Promise<void>
  /** Stops Mosquitto and starts it again on the same port (sessions are not persisted). */
  restart(): Promise<void>
  stop(): Promise<void>
}

export function mosquittoAvailable(): Promise<boolean> {
  return new Promise((resolve) => {
    const p = spawn('mosquitto', ['-h'], { stdio: 'ignore' })
    p.on('error', () => resolve(false))
    p.on('exit', () => resolve(true))
  })
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

async function waitForPort(port: number, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 15_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${stderr()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1')
      c.once('connect', () => (c.destroy(), resolve(true)))
      c.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 50))
  }
  throw new Error(`mosquitto did not listen on ${port}: ${stderr()}`)
}

export async function startMosquitto(credentials: NodeCredentials): Promise<RunningMosquitto> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-mosquitto-'))
  const tls = testTls()
  await writeFile(join(dir, 'ca.pem'), tls.ca)
  await writeFile(join(dir, 'cert.pem'), tls.cert)
  await writeFile(join(dir, 'key.pem'), tls.key, { mode: 0o600 })
  const { passwordFile, aclFile } = await writeMosquittoAuthFiles(dir, credentials)
  const port = await freePort()
  const conf = join(dir, 'mosquitto.conf')
  await writeFile(
    conf,
    [
      `user ${process.env.USER ?? 'root'}`, // keep the test user: the auth files are owner-only
      'persistence false',
      'log_dest stderr',
      'log_type error',
      'log_type warning',
      mosquittoListenerConfig({
        port,
        host: '127.0.0.1',
        passwordFile,
        aclFile,
        tls: { cafile: join(dir, 'ca.pem'), certfile: join(dir, 'cert.pem'), keyfile: join(dir, 'key.pem') },
      }),
    ].join('\n'),
  )
  let stderr = ''
  const launch = async () => {
    const c = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    c.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
    await waitForPort(port, c, () => stderr)
    return c
  }
  const halt = async (c: ChildProcess) => {
    if (c.exitCode !== null) return
    const exited = new Promise((r) => c.once('exit', r))
    c.kill('SIGTERM')
    await exited
  }
  let child = await launch()
  return {
    port,
    url: `mqtts://127.0.0.1:${port}`,
    ca: tls.ca,
    async reload() {
      await writeMosquittoAuthFiles(dir, credentials)
      child.kill('SIGHUP')
      // Mosquitto reloads asynchronously; give it a moment (a deadline, not a measurement).
      await new Promise((r) => setTimeout(r, 300))
    },
    async restart() {
      await halt(child)
      child = await launch()
    },
    async stop() {
      await halt(child)
      await rm(dir, { recursive: true, force: true })
    },
  }
}

export interface HubMosquitto {
  port: number
  pidFile: string
  child: ChildProcess
  /** Resolves when Mosquitto has exited (it writes its persistence file on the way out). */
  exited: Promise<void>
}

/**
 * Mosquitto for a hub process started with `--mqtt-url` and `--mosquitto-pid-file`: it reads the
 * password and ACL files the hub writes into `<hubDataDir>/mosquitto`, empty until the hub starts
 * (nobody gets in before). Its config and pid file go into `dir`; `persistenceDir` turns
 * persistence on there. The caller stops it (SIGTERM to `child`).
 */
export async function startHubMosquitto(o: { dir: string; hubDataDir: string; host?: string; persistenceDir?: string }): Promise<HubMosquitto> {
  const host = o.host ?? '127.0.0.1'
  const authDir = join(o.hubDataDir, 'mosquitto')
  mkdirSync(authDir, { recursive: true, mode: 0o700 })
  const passwordFile = join(authDir, MOSQUITTO_PASSWORD_FILE)
  const aclFile = join(authDir, MOSQUITTO_ACL_FILE)
  for (const file of [passwordFile, aclFile]) if (!existsSync(file)) writeFileSync(file, '', { mode: 0o600 })
  const port = await freePort()
  const pidFile = join(o.dir, 'mosquitto.pid')
  const conf = join(o.dir, 'mosquitto.conf')
  writeFileSync(
    conf,
    [
      `user ${process.env.USER ?? 'root'}`, // keep the test user: the hub's files are owner-only
      ...(o.persistenceDir ? ['persistence true', `persistence_location ${o.persistenceDir}/`] : ['persistence false']),
      `pid_file ${pidFile}`,
      'log_dest stderr',
      'log_type error',
      mosquittoListenerConfig({ port, host, passwordFile, aclFile }),
    ].join('\n'),
  )
  const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (d) => (stderr = (stderr + d).slice(-4000)))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const deadline = Date.now() + 10_000
  while (!existsSync(pidFile)) {
    if (child.exitCode !== null) throw new Error(`mosquitto exited with ${child.exitCode}: ${stderr}`)
    // Older builds write the pid file only when daemonised: fall back to the child's pid.
    if (Date.now() > deadline) writeFileSync(pidFile, `${child.pid}\n`)
    else await new Promise((r) => setTimeout(r, 50))
  }
  return { port, pidFile, child, exited }
}
