// Runs a compiled benchmark (`dist/bench/NAME.js`, from `npm run build`) as a child process, the way
// `npm run bench` does, for the benches' smoke tests: its output, exit code and how long it took.
// A bench past its time limit is killed with its whole process group (the hub and agents it started).

import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { REPO_ROOT } from './hub-process.js'

export interface BenchRun {
  code: number | null
  stdout: string
  stderr: string
  seconds: number
}

export async function runBench(name: string, env: Record<string, string>, timeLimitSeconds: number): Promise<BenchRun> {
  const script = join(REPO_ROOT, 'dist', 'bench', `${name}.js`)
  if (!existsSync(script)) throw new Error(`${script} is missing: run \`npm run build\` first`)
  const started = Date.now()
  const child = spawn(process.execPath, [script], { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d) => (stdout += d))
  child.stderr.on('data', (d) => (stderr = (stderr + d).slice(-20_000)))
  const timer = setTimeout(() => {
    stderr += `\n(killed after its time limit of ${timeLimitSeconds} s)`
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // already gone
    }
  }, timeLimitSeconds * 1000)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  clearTimeout(timer)
  return { code, stdout, stderr, seconds: (Date.now() - started) / 1000 }
}

/** The first line of `output` that `pattern` matches, its groups as numbers; fails naming the missing line. */
export function figuresOf(output: string, pattern: RegExp, what: string): number[] {
  const m = pattern.exec(output)
  if (!m) throw new Error(`the bench printed no ${what} line (${pattern}); it printed:\n${output}`)
  return m.slice(1).map(Number)
}
