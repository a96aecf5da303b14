// Starts a real `bramble hub` process (the built binary) in a temp data dir, for end-to-end tests,
// with this test process's own cluster CIDR unless the arguments name one (cluster-cidr.ts says why).

import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parse as parseYaml } from 'yaml'
import { testClusterCidr } from './cluster-cidr.js'

/** The checkout's root: the nearest folder above this file with a package.json (also from dist/). */
export const REPO_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)))

function findRoot(dir: string): string {
  for (let d = dir; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'src'))) return d
    if (dirname(d) === d) throw new Error(`no package.json above ${dir}`)
  }
}
export const BRAMBLE_BIN = join(REPO_ROOT, 'dist', 'src', 'main.js')

export interface HubProcess {
  dataDir: string
  kubeconfig: string
  server: string
  token: string
  ca: string
  child: ChildProcess
  /** Sends a signal and waits for the process to exit. */
  stop(signal?: NodeJS.Signals): Promise<void>
  /** Stops the process and removes the data dir. */
  cleanup(): Promise<void>
}

export async function startHubProcess(options: { dataDir?: string; args?: string[]; command?: 'hub' | 'up'; timeoutMs?: number } = {}): Promise<HubProcess> {
  if (!existsSync(BRAMBLE_BIN)) throw new Error(`${BRAMBLE_BIN} is missing: run \`npm run build\` first (npm test does)`)
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'bramble-hub-'))
  const kubeconfig = join(dataDir, 'kubeconfig.yaml')
  rmSync(kubeconfig, { force: true })
  const args = options.args ?? []
  const cidr = args.includes('--cluster-cidr') ? [] : ['--cluster-cidr', testClusterCidr()]
  const child = spawn(process.execPath, [BRAMBLE_BIN, options.command ?? 'hub', '--data-dir', dataDir, '--listen', '127.0.0.1', '--api-port', '0', '--mqtt-port', '0', '--log-level', 'warn', ...cidr, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  const deadline = Date.now() + (options.timeoutMs ?? 20_000)
  while (!existsSync(kubeconfig)) {
    if (child.exitCode !== null) throw new Error(`bramble hub exited with ${child.exitCode}: ${output}`)
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`bramble hub wrote no kubeconfig in time: ${output}`)
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  const config = parseYaml(readFileSync(kubeconfig, 'utf8'))
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal)
    await exited
  }
  return {
    dataDir,
    kubeconfig,
    server: config.clusters[0].cluster.server,
    token: config.users[0].user.token,
    ca: Buffer.from(config.clusters[0].cluster['certificate-authority-data'], 'base64').toString('utf8'),
    child,
    stop,
    async cleanup() {
      await stop()
      rmSync(dataDir, { recursive: true, force: true })
    },
  }
}
