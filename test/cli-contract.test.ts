// The `bramble` binary's contract (DESIGN.md, "Command line"): usage errors exit 2 with one
// sentence on stderr, help exits 0, `hub` and `up` start and stop cleanly, and a client command
// does not load the hub's heavy modules. Runs the built binary (`npm test` builds first).

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { pathToFileURL } from 'node:url'
import t, { type Test } from 'tap'
import { kubeconfigYaml } from '../src/hub/kubeconfig.js'
import { testClusterCidr } from './helpers/cluster-cidr.js'
import { removeClusterRules } from './helpers/docker.js'
import { BRAMBLE_BIN, REPO_ROOT, startHubProcess } from './helpers/hub-process.js'

if (!existsSync(BRAMBLE_BIN)) throw new Error(`${BRAMBLE_BIN} is missing: run \`npm run build\` first (npm test does)`)

const CLIENT_WIRED = readFileSync(join(REPO_ROOT, 'src', 'main.ts'), 'utf8').includes('registerClientCommands(program)')

const scratch = mkdtempSync(join(tmpdir(), 'bramble-cli-'))
t.teardown(() => rmSync(scratch, { recursive: true, force: true }))

function bramble(args: string[], nodeArgs: string[] = []) {
  const env = { ...process.env, BRAMBLE_DATA_DIR: join(scratch, 'default-data'), KUBECONFIG: '' }
  const r = spawnSync(process.execPath, [...nodeArgs, BRAMBLE_BIN, ...args], { encoding: 'utf8', env, timeout: 60_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

function assertUsageError(t: Test, args: string[], mentions: string | RegExp) {
  const r = bramble(args)
  t.equal(r.code, 2, `bramble ${args.join(' ')} exits 2`)
  t.equal(r.stderr.trim().split('\n').length, 1, 'one line on stderr')
  t.match(r.stderr, mentions)
  t.match(r.stderr, /^bramble: /)
  t.equal(r.stdout, '', 'nothing on stdout')
}

t.test('an unknown command is a usage error', async (t) => assertUsageError(t, ['frobnicate'], /unknown command 'frobnicate'/))
t.test('an unknown flag is a usage error', async (t) => assertUsageError(t, ['hub', '--no-such-flag'], /unknown option '--no-such-flag'/))
t.test('a flag missing its value is a usage error', async (t) => assertUsageError(t, ['hub', '--api-port'], /--api-port/))
t.test('a bad flag value is a usage error naming the flag', async (t) =>
  assertUsageError(t, ['hub', '--data-dir', join(scratch, 'never'), '--api-port', 'abc'], '--api-port must be an integer 0-65535, got "abc"'))
t.test('a bad flag of up is a usage error too', async (t) => assertUsageError(t, ['up', '--log-level', 'loud'], /--log-level must be one of/))

t.test('no command at all prints the usage on stderr and exits 2', async (t) => {
  const r = bramble([])
  t.equal(r.code, 2)
  t.match(r.stderr, /Usage: bramble/)
})

t.test('--help lists the commands and exits 0', async (t) => {
  const r = bramble(['--help'])
  t.equal(r.code, 0)
  for (const command of ['hub', 'up', 'token', ...(CLIENT_WIRED ? ['get', 'apply'] : [])]) t.match(r.stdout, new RegExp(`\\n\\s+${command}\\b`), `lists ${command}`)
  t.match(r.stdout, /--kubeconfig/)
  const hub = bramble(['hub', '--help'])
  t.equal(hub.code, 0)
  for (const flag of ['--data-dir', '--listen', '--advertise', '--api-port', '--log-level']) t.match(hub.stdout, flag)
})

t.test('--version prints the version and exits 0', async (t) => {
  const r = bramble(['--version'])
  t.equal(r.code, 0)
  t.match(r.stdout.trim(), /^\d+\.\d+\.\d+/)
})

t.test('a client command does not load LMDB or the hub', { skip: !CLIENT_WIRED && 'src/cli/index.ts is not wired into main yet' }, async (t) => {
  const log = join(scratch, 'loaded.txt')
  const hooks = join(scratch, 'hooks.mjs')
  writeFileSync(
    hooks,
    `import { appendFileSync } from 'node:fs'
export async function resolve(specifier, context, next) {
  const result = await next(specifier, context)
  appendFileSync(${JSON.stringify(log)}, result.url + '\\n')
  return result
}`,
  )
  const register = join(scratch, 'register.mjs')
  writeFileSync(register, `import { register } from 'node:module'\nregister(${JSON.stringify(pathToFileURL(hooks).href)})\n`)
  writeFileSync(log, '')
  // A hub that is not there: the command gets as far as dialling it.
  const kubeconfig = join(scratch, 'nowhere.yaml')
  writeFileSync(kubeconfig, kubeconfigYaml({ advertise: '127.0.0.1', port: 1, caCertPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n', token: 't' }))
  const r = bramble(['--kubeconfig', kubeconfig, 'get', 'pods'], ['--import', pathToFileURL(register).href])
  t.equal(r.code, 1, 'an unreachable hub is exit 1')
  t.match(r.stderr, /^bramble: /)
  const loaded = readFileSync(log, 'utf8')
  t.match(loaded, /dist\/src\/main\.js/, 'the hook saw the binary load')
  t.notMatch(loaded, /node_modules\/lmdb\//, 'lmdb is not loaded')
  t.notMatch(loaded, /dist\/src\/hub\//, 'no hub module is loaded')
})

t.test('`up` serves (with its local agent, or says in one sentence why not) and stops cleanly on SIGTERM', async (t) => {
  const dataDir = join(scratch, 'up')
  const child = spawn(process.execPath, [BRAMBLE_BIN, 'up', '--data-dir', dataDir, '--listen', '127.0.0.1', '--api-port', '0', '--mqtt-port', '0', '--log-level', 'silent', '--cluster-cidr', testClusterCidr()], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.teardown(() => child.kill('SIGKILL'))
  const deadline = Date.now() + 30_000
  while (!existsSync(join(dataDir, 'kubeconfig.yaml')) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25))
  t.ok(existsSync(join(dataDir, 'kubeconfig.yaml')), 'the kubeconfig is written once the API answers')
  t.match(stderr, /^(|bramble: the local agent could not start \([^\n]+\); the hub keeps running without it\.\n)$/, 'silent, or one sentence about the agent')
  child.kill('SIGTERM')
  t.equal(await exited, 0, 'exit code 0 after SIGTERM')
  // Its agent's service rules outlive it, as a node's do; they go with the test's cluster.
  await removeClusterRules(readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim())
})

t.test('`hub` stops cleanly on SIGINT too', async (t) => {
  const hub = await startHubProcess({ dataDir: join(scratch, 'hub') })
  t.teardown(() => hub.cleanup())
  await hub.stop('SIGINT')
  t.equal(hub.child.exitCode, 0)
})

t.test('a hub whose port is taken exits 1 with one sentence', async (t) => {
  const running = await startHubProcess({ dataDir: join(scratch, 'taken') })
  t.teardown(() => running.cleanup())
  const port = new URL(running.server).port
  const r = bramble(['hub', '--data-dir', join(scratch, 'second'), '--listen', '127.0.0.1', '--api-port', port, '--mqtt-port', '0', '--log-level', 'silent'])
  t.equal(r.code, 1)
  t.match(r.stderr, new RegExp(`${port} is already in use`))
})

t.test('`token create` prints a join token alone on stdout for a hub data dir', async (t) => {
  const hub = await startHubProcess({ dataDir: join(scratch, 'tokens') })
  t.teardown(() => hub.cleanup())
  const r = bramble(['token', 'create', '--data-dir', hub.dataDir, '--ttl', '2h'])
  t.equal(r.code, 0, r.stderr)
  t.match(r.stdout, /^K10[0-9a-f]{64}::[a-z0-9]{6}\.[a-z0-9]{16}\n$/)
  t.equal(bramble(['token', 'create', '--data-dir', hub.dataDir, '--ttl', 'soon']).code, 2, 'a bad --ttl is a usage error')
  const none = bramble(['token', 'create', '--data-dir', join(scratch, 'no-hub-here')])
  t.equal(none.code, 1, 'no hub CA in that data dir')
  t.match(none.stderr, /holds no hub CA/)
})

t.test('bin/bramble', async (t) => {
  // A fake checkout: the real launcher, a stand-in main.js that reports how it was called, and a
  // stand-in npm that records what the launcher asked of it.
  const root = join(scratch, 'launcher-root')
  const fakeBin = join(scratch, 'launcher-bin')
  const npmLog = join(scratch, 'npm.log')
  const old = new Date(Date.now() - 3_600_000)
  const older = new Date(Date.now() - 7_200_000)
  const setup = () => {
    rmSync(root, { recursive: true, force: true })
    for (const d of ['bin', 'src', 'dist/src', 'node_modules']) mkdirSync(join(root, d), { recursive: true })
    writeFileSync(join(root, 'bin', 'bramble'), readFileSync(join(REPO_ROOT, 'bin', 'bramble')), { mode: 0o755 })
    for (const f of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/main.ts']) {
      writeFileSync(join(root, f), '{}')
      utimesSync(join(root, f), older, older)
    }
    writeFileSync(join(root, 'node_modules', '.package-lock.json'), '{}')
    utimesSync(join(root, 'node_modules', '.package-lock.json'), old, old)
    writeFileSync(join(root, 'dist/src/main.js'), 'console.log(JSON.stringify({ argv: process.argv.slice(2), cwd: process.cwd() })); process.exit(Number(process.argv[2] === "fail" ? 2 : 0))\n')
    utimesSync(join(root, 'dist/src/main.js'), old, old)
    mkdirSync(fakeBin, { recursive: true })
    writeFileSync(
      join(fakeBin, 'npm'),
      `#!/bin/sh\necho "$*" >> ${JSON.stringify(npmLog)}\ncase "$1" in ci) mkdir -p node_modules && touch node_modules/.package-lock.json ;; run) touch dist/src/main.js ;; esac\n`,
      { mode: 0o755 },
    )
    writeFileSync(npmLog, '')
  }
  const run = (args: string[]) => {
    const link = join(scratch, 'launcher-links', 'bramble')
    rmSync(link, { force: true })
    mkdirSync(dirname(link), { recursive: true })
    symlinkSync(join(root, 'bin', 'bramble'), link)
    const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${fakeBin}:${process.env.PATH}` }
    delete env.NODE_OPTIONS
    const r = spawnSync(link, args, { cwd: tmpdir(), encoding: 'utf8', env, timeout: 60_000 })
    return { code: r.status, out: r.stdout ? JSON.parse(r.stdout) : undefined, stderr: r.stderr, npm: readFileSync(npmLog, 'utf8').trim() }
  }

  t.test('runs the binary through a symlink, from any directory, passing arguments and exit code', async (t) => {
    setup()
    const r = run(['get', 'pods', '-n', 'kube system'])
    t.equal(r.code, 0, r.stderr)
    t.same(r.out, { argv: ['get', 'pods', '-n', 'kube system'], cwd: realpathSync(tmpdir()) })
    t.equal(r.npm, "", "an up-to-date checkout needs no npm")
    t.equal(run(['fail']).code, 2, 'the exit code passes through')
  })

  t.test('builds when a source file is newer than dist/', async (t) => {
    setup()
    utimesSync(join(root, 'src/main.ts'), new Date(), new Date())
    const r = run(['--version'])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.npm, 'run --silent build')
    t.match(r.stderr, /building/)
  })

  t.test('with a Node older than 20, fetches node-linux-<arch>@20 through npm into .cache/node and runs on it', async (t) => {
    setup()
    // A Node 18 first on PATH (it answers the version probe as 18, runs anything else on the real
    // Node), and an npm whose `pack` hands over a package whose bin/node reports itself as 20.
    const real = process.execPath
    writeFileSync(join(fakeBin, 'node'), `#!/bin/sh\ncase "$*" in *process.versions.node*) printf 18; exit 0;; --version) echo v18.19.0; exit 0;; esac\nexec ${real} "$@"\n`, { mode: 0o755 })
    const pkg = join(scratch, 'node-pkg')
    rmSync(pkg, { recursive: true, force: true })
    mkdirSync(join(pkg, 'package', 'bin'), { recursive: true })
    writeFileSync(join(pkg, 'package', 'bin', 'node'), `#!/bin/sh\ncase "$*" in *process.versions.node*) printf 20; exit 0;; esac\nexec ${real} "$@"\n`, { mode: 0o755 })
    spawnSync('tar', ['-czf', join(pkg, 'node-linux-x.tgz'), '-C', pkg, 'package'])
    writeFileSync(
      join(fakeBin, 'npm'),
      `#!/bin/sh\necho "$*" >> ${JSON.stringify(npmLog)}\ncase "$1" in pack) cp ${JSON.stringify(join(pkg, 'node-linux-x.tgz'))} . ;; esac\n`,
      { mode: 0o755 },
    )
    try {
      const r = run(['--version'])
      t.equal(r.code, 0, r.stderr)
      t.match(r.stderr, /older than 20; fetching node-linux-\S+@20 into \.cache\/node/)
      t.match(r.npm, /^pack --silent node-linux-(x64|arm64|armv7l)@20$/)
      t.ok(existsSync(join(root, '.cache', 'node', 'bin', 'node')), 'the fetched Node is kept for later runs')
      writeFileSync(npmLog, '')
      t.equal(run(['--version']).npm, '', 'a second run uses the kept Node and fetches nothing')
    } finally {
      rmSync(join(fakeBin, 'node'), { force: true })
    }
  })

  t.test('installs dependencies when node_modules is missing or older than package-lock.json', async (t) => {
    setup()
    rmSync(join(root, 'node_modules'), { recursive: true })
    t.equal(run([]).npm, 'ci --no-audit --no-fund')
    setup()
    utimesSync(join(root, 'package-lock.json'), new Date(), new Date())
    t.equal(run([]).npm, 'ci --no-audit --no-fund')
  })
})
