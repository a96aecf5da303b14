// Small pieces the end-to-end specs share: wait for a condition, run the `bramble` binary as a
// client, list a test cluster's containers by label, pick free ports.

import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import type Docker from 'dockerode'
import { BRAMBLE_BIN } from './hub-process.js'

/** Polls `fn` until it returns something truthy; fails with what it waited for after the deadline. */
export async function until<T>(what: string, fn: () => T | undefined | null | false | Promise<T | undefined | null | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
    } catch (e) {
      lastError = e
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastError ? ` (last error: ${(lastError as Error).message})` : ''}`)
    await new Promise((r) => setTimeout(r, 300))
  }
}

export interface CliRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs `bramble --kubeconfig FILE ...args` (or any binary given as `bin`) to completion. */
export function runCli(args: string[], options: { kubeconfig?: string; bin?: string; stdin?: string } = {}): Promise<CliRun> {
  const [file, argv] = options.bin ? [options.bin, args] : [process.execPath, [BRAMBLE_BIN, ...args]]
  const full = options.kubeconfig ? (options.bin ? ['--kubeconfig', options.kubeconfig, ...argv] : [argv[0]!, '--kubeconfig', options.kubeconfig, ...argv.slice(1)]) : argv
  return new Promise((resolve) => {
    const child = execFile(file, full, { timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof (err as any).code === 'number' ? (err as any).code : 1) : 0, stdout, stderr })
    })
    if (options.stdin !== undefined) child.stdin!.end(options.stdin)
  })
}

/** Containers of a test cluster, optionally narrowed by more labels (`io.bramble.pod.name=web`). */
export async function clusterContainers(docker: Docker, clusterId: string, labels: Record<string, string> = {}, all = true): Promise<Docker.ContainerInfo[]> {
  const label = [`io.bramble.cluster=${clusterId}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)]
  return docker.listContainers({ all, filters: { label } })
}

/** A port nobody listens on right now (for a hub that must come back on the same ports). */
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
