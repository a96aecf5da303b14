// The service proxy on a node: programs the kernel so that connections to a ClusterIP:port (or a
// node port) reach the Service's ready endpoints. The rules come from src/mesh/proxy-rules.ts;
// here they are applied in one `iptables-restore --noflush` (atomic per table, touching only our
// chains), then the jumps from the built-in chains are checked and added when missing, so an
// agent restart never duplicates them. Syncs run one at a time.
//
// Each sync first reads the tables (one `iptables-save`). When the rules wanted are those applied
// last and our chains and jumps read as they did right after, nothing is run: a resync every 30 s
// of an unchanged catalog used to start ten iptables processes, most of the agent's child CPU.
// Anyone flushing or editing our chains makes them read differently, and they are applied again.

import { execFile } from 'node:child_process'
import type { KubeObject } from '../api/types.js'
import { chainsFor, hooks, proxyRules, type Chains, type Hook, type Table } from '../mesh/proxy-rules.js'
import type { Logger } from '../lib/logger.js'
import { IptablesError } from './errors.js'

/** The kernel's packet filter, as the proxy uses it. */
export interface Iptables {
  /** Adds the jump first in its built-in chain. */
  addHook(hook: Hook): Promise<void>
  /** `iptables-restore --noflush` of the text. */
  restore(text: string): Promise<void>
  /** `iptables-save` of every table. */
  save(): Promise<string>
}

/**
 * The iptables commands, run directly or under a prefix (`ip netns exec NAME` in tests).
 * Waits for the xtables lock (-w) as other writers (Docker) hold it now and then.
 */
export function commandIptables(prefix: string[] = []): Iptables {
  const run = (cmd: string, args: string[], input?: string) =>
    new Promise<string>((resolve, reject) => {
      const [file, ...rest] = [...prefix, cmd, ...args]
      const child = execFile(file!, rest, { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (err) reject(new IptablesError(`${cmd} ${args.join(' ')}`, String(stderr).trim() || err.message, { cause: err }))
        else resolve(String(stdout))
      })
      if (input !== undefined) child.stdin!.end(input)
    })
  const hookArgs = (h: Hook) => ['-t', h.table, h.chain, '-m', 'comment', '--comment', 'bramble service proxy', '-j', h.target]
  return {
    async addHook(h) {
      const [t, table, chain, ...rest] = hookArgs(h)
      await run('iptables', ['-w', t!, table!, '-I', chain!, '1', ...rest])
    },
    async restore(text) {
      await run('iptables-restore', ['-w', '--noflush'], text)
    },
    save: () => run('iptables-save', []),
  }
}

export interface ServiceProxyOptions {
  iptables: Iptables
  /** The cluster's id: its chains carry a tag of it, so another cluster's on this machine stay. */
  clusterId: string
  logger: Logger
  /** The cluster's pod network: connections to a ClusterIP from outside it are masqueraded. */
  clusterCidr?: string
}

export class ServiceProxy {
  private chain: Promise<void> = Promise.resolve()
  /** The rules last applied, and how our chains and jumps read right after; undefined until applied (or after a failure). */
  private applied: { text: string; ours: string } | undefined
  private readonly log: Logger
  readonly chains: Chains

  constructor(private readonly o: ServiceProxyOptions) {
    this.log = o.logger.child({ component: 'service-proxy' })
    this.chains = chainsFor(o.clusterId)
  }

  /** Makes the rules match these Services and Endpoints. Resolves once applied (or on failure, rejects). */
  sync(services: KubeObject[], endpoints: KubeObject[]): Promise<void> {
    const run = this.chain.then(() => this.apply(services, endpoints))
    this.chain = run.catch(() => {})
    return run
  }

  /**
   * Removes every jump to our chains (duplicates too) and the chains themselves (the agent leaving
   * the node for good): one read of the tables, one restore that flushes our chains, deletes the
   * jumps as they read and then the chains.
   */
  remove(): Promise<void> {
    const run = this.chain.then(async () => {
      this.applied = undefined
      const { chains, jumps } = readTables(await this.o.iptables.save(), this.chains)
      if (chains.nat.length + chains.filter.length + jumps.nat.length + jumps.filter.length === 0) return
      const text = (['nat', 'filter'] as const).flatMap((table) => [
        `*${table}`,
        ...chains[table].map((c) => `:${c} - [0:0]`),
        ...jumps[table].map((rule) => `-D ${rule.slice('-A '.length)}`),
        ...chains[table].map((c) => `-X ${c}`),
        'COMMIT',
      ])
      await this.o.iptables.restore(text.join('\n') + '\n')
    })
    this.chain = run.catch(() => {})
    return run
  }

  private async apply(services: KubeObject[], endpoints: KubeObject[]): Promise<void> {
    const before = readTables(await this.o.iptables.save(), this.chains)
    const text = proxyRules({ chains: this.chains, services, endpoints, existingChains: before.chains, ...(this.o.clusterCidr ? { clusterCidr: this.o.clusterCidr } : {}) })
    if (this.applied?.text === text && this.applied.ours === before.ours) return void this.log.debug({ services: services.length }, 'service rules in place')
    this.applied = undefined
    await this.o.iptables.restore(text)
    for (const hook of hooks(this.chains)) if (!before.hooks.has(hookKey(hook))) await this.o.iptables.addHook(hook)
    this.log.debug({ services: services.length }, 'service rules applied')
    this.applied = { text, ours: readTables(await this.o.iptables.save(), this.chains).ours }
  }
}

/** Our chains, their rules and the jumps to them (each rule as printed, and by hook), as `iptables-save` printed the tables. */
function readTables(saved: string, chains: Chains): { chains: Record<Table, string[]>; jumps: Record<Table, string[]>; hooks: Set<string>; ours: string } {
  const found: Record<Table, string[]> = { nat: [], filter: [] }
  const jumpRules: Record<Table, string[]> = { nat: [], filter: [] }
  const hookKeys = new Set<string>()
  const ours: string[] = []
  let table = ''
  for (const line of saved.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1).trim()
    if (table !== 'nat' && table !== 'filter') continue
    if (line.startsWith(`:${chains.prefix}`)) {
      // A chain's header carries its counters: only its name says what it is.
      const name = line.slice(1).split(' ')[0]!
      found[table].push(name)
      ours.push(`${table} :${name}`)
    } else if (line.startsWith('-A ')) {
      const [, chain] = line.split(' ', 2)
      const jump = / -j (\S+)$/.exec(line)?.[1]
      if (chain!.startsWith(chains.prefix)) ours.push(`${table} ${line}`)
      else if (jump?.startsWith(chains.prefix)) {
        hookKeys.add(`${table} ${chain} ${jump}`)
        jumpRules[table].push(line)
        ours.push(`${table} ${line}`)
      }
    }
  }
  return { chains: found, jumps: jumpRules, hooks: hookKeys, ours: ours.join('\n') }
}

const hookKey = (h: Hook) => `${h.table} ${h.chain} ${h.target}`
