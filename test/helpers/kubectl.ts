// The real kubectl, as the machine's image pins it (kubectl.1.29 ... kubectl.1.33 on PATH or in
// /usr/lib/google-cloud-sdk/bin), and a way to run one against a hub's kubeconfig.

import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { delimiter, join } from 'node:path'

export const KUBECTL_VERSIONS = ['1.29', '1.30', '1.31', '1.32', '1.33']
const SEARCH = [...(process.env.PATH ?? '').split(delimiter), '/usr/lib/google-cloud-sdk/bin'].filter(Boolean)

export function findKubectl(version: string): string | undefined {
  return SEARCH.map((dir) => join(dir, `kubectl.${version}`)).find((bin) => existsSync(bin))
}

/** Every pinned kubectl found, oldest first. */
export function pinnedKubectls(): Array<{ version: string; bin: string }> {
  return KUBECTL_VERSIONS.map((version) => ({ version, bin: findKubectl(version) })).filter((k): k is { version: string; bin: string } => k.bin !== undefined)
}

export interface KubectlRun {
  code: number
  stdout: string
  stderr: string
}

/** Runs kubectl with its own HOME and discovery cache under `home`; never rejects. */
export function runKubectl(bin: string, kubeconfig: string, home: string, args: string[]): Promise<KubectlRun> {
  return new Promise((resolve) => {
    execFile(
      bin,
      ['--kubeconfig', kubeconfig, '--cache-dir', join(home, `cache-${bin.split('.').slice(-1)[0]}`), ...args],
      { env: { PATH: process.env.PATH, HOME: home }, timeout: 60_000 },
      (err, stdout, stderr) => resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    )
  })
}
