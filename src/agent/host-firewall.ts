// The HostFirewall port: the few iptables operations the pod network needs (is a chain there, is
// a rule there, add it, list ours by their comment marker, delete one). The real adapter runs `iptables -w` in the
// agent's network namespace; rules are kept as iptables -S prints them.

import { execFile } from 'node:child_process'
import type { FirewallRule } from '../mesh/pod-network.js'
import { HostCommandError } from './errors.js'

export interface HostFirewall {
  hasChain(table: FirewallRule['table'], chain: string): Promise<boolean>
  has(rule: FirewallRule): Promise<boolean>
  /** Puts the rule first in its chain (before Docker's own in POSTROUTING). */
  insert(rule: FirewallRule): Promise<void>
  /** Rules of a chain whose text contains `marker` (our comment). */
  list(table: FirewallRule['table'], chain: string, marker: string): Promise<FirewallRule[]>
  /** Deletes one copy of the rule; nothing when it is not there. */
  delete(rule: FirewallRule): Promise<void>
}

/** iptables through its command line; `-w` waits for the xtables lock Docker also takes. */
export class IptablesFirewall implements HostFirewall {
  constructor(private readonly o: { command?: string; timeoutMs?: number } = {}) {}

  async hasChain(table: FirewallRule['table'], chain: string): Promise<boolean> {
    // The whole table: asking for a missing chain by name fails with a message that differs
    // between iptables-legacy and iptables-nft.
    const out = await this.run(['-t', table, '-S'])
    return out.split('\n').some((line) => line === `-N ${chain}` || line.startsWith(`-P ${chain} `))
  }

  async has(rule: FirewallRule): Promise<boolean> {
    try {
      await this.run(['-t', rule.table, '-C', rule.chain, ...rule.args])
      return true
    } catch (err) {
      // -C exits 1 for "no such rule"; a missing chain is an error worth seeing.
      if (err instanceof HostCommandError && err.exitCode === 1 && !/No chain/i.test(err.stderr)) return false
      throw err
    }
  }

  async insert(rule: FirewallRule): Promise<void> {
    await this.run(['-t', rule.table, '-I', rule.chain, '1', ...rule.args])
  }

  async list(table: FirewallRule['table'], chain: string, marker: string): Promise<FirewallRule[]> {
    const out = await this.run(['-t', table, '-S', chain])
    return out
      .split('\n')
      .filter((line) => line.startsWith(`-A ${chain} `) && line.includes(marker))
      .map((line) => ({ table, chain, args: splitRule(line.slice(`-A ${chain} `.length)) }))
  }

  async delete(rule: FirewallRule): Promise<void> {
    if (await this.has(rule)) await this.run(['-t', rule.table, '-D', rule.chain, ...rule.args])
  }

  private run(args: string[]): Promise<string> {
    const command = this.o.command ?? 'iptables'
    return new Promise((resolve, reject) => {
      execFile(command, ['-w', ...args], { timeout: this.o.timeoutMs ?? 10_000, env: { ...process.env, LC_ALL: 'C' } }, (err, stdout, stderr) => {
        if (err) reject(new HostCommandError(`${command} ${args.join(' ')}`, typeof err.code === 'number' ? err.code : -1, String(stderr).trim(), { cause: err }))
        else resolve(String(stdout))
      })
    })
  }
}

/** `-s 10.42.0.0/16 -m comment --comment "a b" -j ACCEPT` → words, quotes removed (iptables -S quotes comments with spaces). */
export function splitRule(text: string): string[] {
  const words: string[] = []
  for (const m of text.matchAll(/"((?:[^"\\]|\\.)*)"|(\S+)/g)) words.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : m[2]!)
  return words
}
