// Starts real etcd members (Debian's etcd-server) for tests: one member or a cluster of several,
// each on free loopback client and peer ports with its own data dir in a temp dir, and kills them.
// With `tls`, clients speak TLS to the members (https) and must show a certificate of the CA.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './e2e.js'

export interface EtcdMember {
  name: string
  /** `http://127.0.0.1:PORT` */
  clientUrl: string
  /** The member's data dir (its WAL and database). */
  dataDir: string
  /** SIGKILL: the member dies as on a power cut. */
  kill(): Promise<void>
  /** Starts the member again on the same ports and data dir. */
  restart(): Promise<void>
}

export interface EtcdCluster {
  members: EtcdMember[]
  /** The member that leads now (asked of the members still running). */
  leader(): Promise<EtcdMember>
  endpoints: string[]
  /** `etcd://127.0.0.1:P1,127.0.0.1:P2` (the `--store` value; `etcds://` with TLS). */
  url: string
  /** With TLS: the files a client needs (the CA, and a client certificate and key of it). */
  clientTls?: { ca: string; cert: string; key: string }
  stop(): Promise<void>
}

/** PEM texts: the members' CA, serving certificate and key (for 127.0.0.1), and a client pair. */
export interface EtcdTestTls {
  ca: string
  cert: string
  key: string
  clientCert: string
  clientKey: string
}

/** Undefined when the etcd binary is there; else why the test skips. */
export function etcdMissing(): string | undefined {
  const probe = spawnSync('etcd', ['--version'], { stdio: 'ignore' })
  return probe.error ? 'the etcd binary is missing (apt-get install etcd-server)' : undefined
}

/** Starts `size` members; a start lost to a port taken in between (other tests run too) is tried again once. */
export async function startEtcd(size = 1, extraArgs: string[] = [], tls?: EtcdTestTls): Promise<EtcdCluster> {
  try {
    return await startEtcdOnce(size, extraArgs, tls)
  } catch {
    return startEtcdOnce(size, extraArgs, tls)
  }
}

async function startEtcdOnce(size: number, extraArgs: string[], tls: EtcdTestTls | undefined): Promise<EtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'etc-etcd-'))
  const files = { ca: join(dir, 'ca.crt'), cert: join(dir, 'server.crt'), key: join(dir, 'server.key'), clientCert: join(dir, 'client.crt'), clientKey: join(dir, 'client.key') }
  if (tls) for (const name of Object.keys(files) as Array<keyof typeof files>) await writeFile(files[name], tls[name], { mode: 0o600 })
  const scheme = tls ? 'https' : 'http'
  const tlsArgs = tls ? ['--cert-file', files.cert, '--key-file', files.key, '--client-cert-auth', '--trusted-ca-file', files.ca] : []
  const token = `etc-${randomBytes(4).toString('hex')}`
  const specs: Array<{ name: string; client: number; peer: number }> = []
  const ports = new Set<number>()
  while (ports.size < 2 * size) ports.add(await freePort())
  const [...free] = ports
  for (let i = 0; i < size; i++) specs.push({ name: `etc-m${i}`, client: free[2 * i]!, peer: free[2 * i + 1]! })
  const initialCluster = specs.map((s) => `${s.name}=http://127.0.0.1:${s.peer}`).join(',')
  const running = new Map<string, ChildProcess>()
  const stderrOf = new Map<string, string>()

  const launch = (spec: (typeof specs)[number]): ChildProcess => {
    const child = spawn(
      'etcd',
      [
        '--name', spec.name,
        '--data-dir', join(dir, spec.name),
        '--listen-client-urls', `${scheme}://127.0.0.1:${spec.client}`,
        '--advertise-client-urls', `${scheme}://127.0.0.1:${spec.client}`,
        '--listen-peer-urls', `http://127.0.0.1:${spec.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${spec.peer}`,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', token,
        '--logger', 'zap',
        '--log-level', 'error',
        ...tlsArgs,
        ...extraArgs,
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    stderrOf.set(spec.name, '')
    child.stderr!.on('data', (chunk: Buffer) => stderrOf.set(spec.name, (stderrOf.get(spec.name)! + chunk.toString()).slice(-4000)))
    running.set(spec.name, child)
    return child
  }

  const kill = async (name: string): Promise<void> => {
    const child = running.get(name)
    running.delete(name)
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGKILL')
    await exited
  }

  const members: EtcdMember[] = specs.map((spec) => ({
    name: spec.name,
    clientUrl: `${scheme}://127.0.0.1:${spec.client}`,
    dataDir: join(dir, spec.name),
    kill: () => kill(spec.name),
    restart: async () => {
      await kill(spec.name)
      launch(spec)
      await healthy(`${scheme}://127.0.0.1:${spec.client}`, tls, running.get(spec.name)!, () => stderrOf.get(spec.name)!)
    },
  }))

  const stop = async () => {
    await Promise.all(specs.map((s) => kill(s.name)))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const spec of specs) launch(spec)
    await Promise.all(specs.map((s) => healthy(`${scheme}://127.0.0.1:${s.client}`, tls, running.get(s.name)!, () => stderrOf.get(s.name)!)))
  } catch (error) {
    await stop()
    throw error
  }
  const endpoints = members.map((m) => m.clientUrl)
  const leader = async (): Promise<EtcdMember> => {
    for (const member of members) {
      if (!running.has(member.name)) continue
      try {
        // etcd's JSON gateway for the Maintenance.Status call: the member's own id and the leader's.
        const status = JSON.parse(await get(`${member.clientUrl}/v3/maintenance/status`, tls, '{}')) as { header: { member_id: string }; leader: string }
        if (status.leader === status.header.member_id) return member
      } catch {
        // this member does not answer; ask the next
      }
    }
    throw new Error('no running etcd member says it leads')
  }
  const url = `${tls ? 'etcds' : 'etcd'}://${endpoints.map((e) => e.replace(/^https?:\/\//, '')).join(',')}`
  const clientTls = tls ? { ca: files.ca, cert: files.clientCert, key: files.clientKey } : undefined
  return { members, leader, endpoints, url, clientTls, stop }
}

/** A GET (or a POST of `body`) to a member, over TLS with the client certificate when it has TLS. */
async function get(url: string, tls: EtcdTestTls | undefined, body?: string): Promise<string> {
  if (!tls) {
    const res = await fetch(url, body === undefined ? {} : { method: 'POST', body })
    return res.text()
  }
  return new Promise((resolve, reject) => {
    const req = request(url, { method: body === undefined ? 'GET' : 'POST', ca: tls.ca, cert: tls.clientCert, key: tls.clientKey }, (res) => {
      let text = ''
      res.on('data', (chunk: Buffer) => (text += chunk.toString()))
      res.on('end', () => resolve(text))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/** Waits (generous deadline) until the member reports itself healthy: it has a leader. */
async function healthy(clientUrl: string, tls: EtcdTestTls | undefined, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd at ${clientUrl} exited with ${child.exitCode}: ${stderr()}`)
    try {
      if (JSON.parse(await get(`${clientUrl}/health`, tls)).health === 'true') return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`etcd at ${clientUrl} did not become healthy within 60 s`)
}
