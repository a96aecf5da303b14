// The node's DNS server for its pods (UDP): names in the cluster domain are answered from the
// Services and Endpoints the agent holds (src/mesh/dns.ts decides what they resolve to); any
// other name is forwarded, as it came, to the node's own resolvers (/etc/resolv.conf), the
// first that answers winning. Pods get its address as their nameserver (pod-container-spec.ts).

import { execFile } from 'node:child_process'
import { createSocket, type Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import { isIPv4 } from 'node:net'
import type { KubeObject } from '../api/types.js'
import { CLUSTER_DOMAIN, DnsFormatError, RCODE, TYPE_A, decodeQuery, encodeAnswer, resolveClusterName } from '../mesh/dns.js'
import type { Logger } from '../lib/logger.js'

export interface DnsServerOptions {
  /** The address pods reach the node at (the pod bridge's gateway). */
  host: string
  /** 53 in production; 0 picks a free port (tests). */
  port: number
  /** The Services and Endpoints to answer from, read at each query. */
  cluster: () => { services: KubeObject[]; endpoints: KubeObject[] }
  /** Resolvers for other names, `ip` or `ip:port`. */
  upstreams: string[]
  domain?: string
  /** How long one upstream has to answer before the next is asked. */
  forwardTimeoutMs?: number
  logger: Logger
}

export interface RunningDnsServer {
  address: string
  port: number
  close(): Promise<void>
}

const DEFAULT_FORWARD_TIMEOUT_MS = 2_000

/** The IPv4 `nameserver` lines of a resolv.conf. */
export function resolvConfNameservers(text: string): string[] {
  return text
    .split('\n')
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((ip): ip is string => ip !== undefined && isIPv4(ip))
}

/** The node's resolvers, from /etc/resolv.conf (none when it cannot be read). */
export function nodeResolvers(path = '/etc/resolv.conf'): string[] {
  try {
    return resolvConfNameservers(readFileSync(path, 'utf8'))
  } catch {
    return []
  }
}

export async function startDnsServer(o: DnsServerOptions): Promise<RunningDnsServer> {
  const log = o.logger.child({ component: 'dns-server' })
  const domain = o.domain ?? CLUSTER_DOMAIN
  const timeoutMs = o.forwardTimeoutMs ?? DEFAULT_FORWARD_TIMEOUT_MS
  const socket = createSocket('udp4')
  let upstreams = o.upstreams
  const pending = new Set<Socket>()

  const answer = async (msg: Buffer): Promise<Buffer | undefined> => {
    let query
    try {
      query = decodeQuery(msg)
    } catch (err) {
      if (err instanceof DnsFormatError && msg.length >= 12) {
        log.debug({ err: err.message }, 'malformed query')
        const header = Buffer.from(msg.subarray(0, 12))
        header.writeUInt16BE(0x8000 | RCODE.FORMERR, 2)
        header.fill(0, 4)
        return header
      }
      return undefined
    }
    const { services, endpoints } = o.cluster()
    const cluster = resolveClusterName(query.question.name, services, endpoints, domain)
    if (cluster) return encodeAnswer(query, msg, cluster.rcode, query.question.type === TYPE_A ? cluster.addresses : [], true)
    for (const upstream of upstreams) {
      const reply = await forward(msg, upstream, timeoutMs, pending).catch((err) => {
        log.debug({ upstream, err: (err as Error).message }, 'upstream resolver did not answer')
        return undefined
      })
      if (reply) return reply
    }
    return encodeAnswer(query, msg, RCODE.SERVFAIL, [], false)
  }

  socket.on('message', (msg, from) => {
    answer(msg).then(
      (reply) => reply && socket.send(reply, from.port, from.address),
      (err) => log.warn({ err }, 'could not answer a DNS query'),
    )
  })
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(o.port, o.host, () => {
      socket.off('error', reject)
      socket.on('error', (err) => log.warn({ err }, 'DNS socket error'))
      resolve()
    })
  })
  const { address, port } = socket.address()
  // Our own address would forward to itself forever.
  upstreams = upstreams.filter((u) => {
    const [h, p] = u.split(':')
    return !(h === address && Number(p ?? 53) === port)
  })
  log.info({ address, port, upstreams }, 'cluster DNS listening')
  return {
    address,
    port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of pending) s.close()
        socket.close(() => resolve())
      }),
  }
}

/** Sends the query as it came to one upstream and waits for its reply (same id) or the timeout. */
function forward(msg: Buffer, upstream: string, timeoutMs: number, pending: Set<Socket>): Promise<Buffer> {
  const [host, port] = upstream.split(':') as [string, string | undefined]
  return new Promise((resolve, reject) => {
    const s = createSocket('udp4')
    pending.add(s)
    const done = (err: Error | undefined, reply?: Buffer) => {
      clearTimeout(timer)
      pending.delete(s)
      s.close()
      if (err) reject(err)
      else resolve(reply!)
    }
    const timer = setTimeout(() => done(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs)
    s.on('error', (err) => done(err))
    s.on('message', (reply) => {
      if (reply.length >= 2 && reply.readUInt16BE(0) === msg.readUInt16BE(0)) done(undefined, reply)
    })
    s.send(msg, Number(port ?? 53), host)
  })
}

/** Addresses of the node itself: the DNS server's link-local address must be one. */
export interface NodeAddresses {
  /** Adds `ip/32` to the loopback interface unless it is there already. */
  ensureLoopback(ip: string): Promise<void>
}

/** NodeAddresses through `ip`, run directly or under a prefix (`ip netns exec NAME`). */
export function commandNodeAddresses(prefix: string[] = []): NodeAddresses {
  const run = (args: string[]) =>
    new Promise<string>((resolve, reject) => {
      const [file, ...rest] = [...prefix, 'ip', ...args]
      execFile(file!, rest, { timeout: 10_000 }, (err, stdout, stderr) => (err ? reject(new Error(`ip ${args.join(' ')} failed: ${String(stderr).trim() || err.message}`, { cause: err })) : resolve(String(stdout))))
    })
  return {
    async ensureLoopback(ip) {
      const present = await run(['-4', '-o', 'addr', 'show', 'dev', 'lo'])
      if (present.includes(` ${ip}/`)) return
      await run(['addr', 'add', `${ip}/32`, 'dev', 'lo'])
    },
  }
}
