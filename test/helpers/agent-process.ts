// Starts a real `bramble agent` process (the built binary) on this machine's Docker engine, for
// end-to-end tests that need no network namespace: its output is kept for failure messages.

import { spawn, type ChildProcess } from 'node:child_process'
import { BRAMBLE_BIN } from './hub-process.js'

export interface AgentProcess {
  child: ChildProcess
  /** The last 30 kB the agent printed. */
  output(): string
  /** Sends a signal (SIGTERM by default) and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
}

/** `token` only for the first start: later ones run from the identity in the data dir. */
export function startAgentProcess(o: { dataDir: string; hub: string; node: string; token?: string; args?: string[] }): AgentProcess {
  const args = [BRAMBLE_BIN, 'agent', '--data-dir', o.dataDir, '--hub', o.hub, '--node-name', o.node, '--log-level', 'info', ...(o.token ? ['--token', o.token] : []), ...(o.args ?? [])]
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  const keep = (d: Buffer) => (output = (output + d).slice(-30_000))
  child.stdout!.on('data', keep)
  child.stderr!.on('data', keep)
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  return {
    child,
    output: () => output,
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
  }
}
