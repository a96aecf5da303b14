// Starts real etcd members (Debian's etcd-server) for tests: one member or a cluster of several,
// each on free loopback client and peer ports with its own data dir in a temp dir, and kills them.

import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
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
  /** `etcd://127.0.0.1:P1,127.0.0.1:P2` (the `--store` value). */
  url: string
  stop(): Promise<void>
}

/** Undefined when the etcd binary is there; else why the test skips. */
export function etcdMissing(): string | undefined {
  const probe = spawnSync('etcd', ['--version'], { stdio: 'ignore' })
  return probe.error ? 'the etcd binary is missing (apt-get install etcd-server)' : undefined
}

/** Starts `size` members; a start lost to a port taken in between (other tests run too) is tried again once. */
export async function startEtcd(size = 1, extraArgs: string[] = []): Promise<EtcdCluster> {
  try {
    return await startEtcdOnce(size, extraArgs)
  } catch {
    return startEtcdOnce(size, extraArgs)
  }
}

async function startEtcdOnce(size: number, extraArgs: string[]): Promise<EtcdCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'etc-etcd-'))
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
        '--listen-client-urls', `http://127.0.0.1:${spec.client}`,
        '--advertise-client-urls', `http://127.0.0.1:${spec.client}`,
        '--listen-peer-urls', `http://127.0.0.1:${spec.peer}`,
        '--initial-advertise-peer-urls', `http://127.0.0.1:${spec.peer}`,
        '--initial-cluster', initialCluster,
        '--initial-cluster-state', 'new',
        '--initial-cluster-token', token,
        '--logger', 'zap',
        '--log-level', 'error',
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
    clientUrl: `http://127.0.0.1:${spec.client}`,
    dataDir: join(dir, spec.name),
    kill: () => kill(spec.name),
    restart: async () => {
      await kill(spec.name)
      launch(spec)
      await healthy(`http://127.0.0.1:${spec.client}`, running.get(spec.name)!, () => stderrOf.get(spec.name)!)
    },
  }))

  const stop = async () => {
    await Promise.all(specs.map((s) => kill(s.name)))
    await rm(dir, { recursive: true, force: true })
  }
  try {
    for (const spec of specs) launch(spec)
    await Promise.all(specs.map((s) => healthy(`http://127.0.0.1:${s.client}`, running.get(s.name)!, () => stderrOf.get(s.name)!)))
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
        const res = await fetch(`${member.clientUrl}/v3/maintenance/status`, { method: 'POST', body: '{}' })
        const status = (await res.json()) as { header: { member_id: string }; leader: string }
        if (status.leader === status.header.member_id) return member
      } catch {
        // this member does not answer; ask the next
      }
    }
    throw new Error('no running etcd member says it leads')
  }
  return { members, leader, endpoints, url: `etcd://${endpoints.map((e) => e.replace('http://', '')).join(',')}`, stop }
}

/** Waits (generous deadline) until the member reports itself healthy: it has a leader. */
async function healthy(clientUrl: string, child: ChildProcess, stderr: () => string): Promise<void> {
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`etcd at ${clientUrl} exited with ${child.exitCode}: ${stderr()}`)
    try {
      const res = await fetch(`${clientUrl}/health`)
      if (res.ok && (await res.json()).health === 'true') return
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`etcd at ${clientUrl} did not become healthy within 60 s`)
}
