// deploy/pi/install.sh in a fresh Debian root (debootstrap, as a Pi's Raspberry Pi OS is Debian with
// systemd) up to starting the units, which it cannot do with no systemd running: the packages, the
// release's Node and Bramble in /opt/bramble, the `bramble` command, the owner-only data dir and
// agent.env, the units written, valid and enabled; run again, it changes nothing. Bad flags are
// refused with the flag named, before anything is touched.
//
// Needs root, debootstrap and Debian's mirror (deb.debian.org: debootstrap, then the script's
// apt-get inside the root) and the npm registry (scripts/pack-release.sh fetches Node and the
// dependencies). Cached under .cache/: the base root (pi-debian-root), apt's downloads
// (pi-apt-archives) and the release (release/), so a rerun takes well under a minute.

import { execFile, spawnSync } from 'node:child_process'
import { cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { parse } from 'yaml'
import { REPO_ROOT } from '../helpers/hub-process.js'

const execFileP = promisify(execFile)
const INSTALL = join(REPO_ROOT, 'deploy', 'pi', 'install.sh')
const CACHE = join(REPO_ROOT, '.cache')
const BASE_ROOT = join(CACHE, 'pi-debian-root')
const APT_ARCHIVES = join(CACHE, 'pi-apt-archives')
const MIRROR = 'http://deb.debian.org/debian'
const TOKEN = `K10${'ab'.repeat(32)}::abc123.0123456789abcdef`
const RELEASE_ARCH: Record<string, string> = { x64: 'x64', arm64: 'arm64', arm: 'armv7' }

function missingTools(): string | undefined {
  if (process.getuid?.() !== 0) return 'install.sh is tested as root (it installs packages into a Debian root)'
  if (!RELEASE_ARCH[process.arch]) return `no release is packed for ${process.arch}`
  for (const tool of ['debootstrap', 'unshare', 'chroot']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is missing (apt-get install debootstrap util-linux coreutils)`
  }
  return undefined
}

/** Runs a command inside the root, in its own mount, pid and UTS namespaces: /proc and apt's download
 * cache are mounted for it alone, its host name is a Pi's, and every process it leaves behind dies
 * with it. The environment is a login's: tap adds its NODE_OPTIONS to every child's, even to a
 * given env, and Node in the root cannot load tap's modules. */
async function inRoot(root: string, command: string[], timeoutMs = 900_000): Promise<{ code: number; stdout: string; stderr: string }> {
  const setup = [
    'set -e',
    'mount -t proc proc "$ROOT/proc"',
    'mount --bind "$ARCHIVES" "$ROOT/var/cache/apt/archives"',
    'hostname pi-node-7',
    'exec env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 chroot "$ROOT" "$@"',
  ].join('\n')
  try {
    const { stdout, stderr } = await execFileP('unshare', ['--mount', '--pid', '--uts', '--fork', '--kill-child', 'sh', '-c', setup, 'sh', ...command], {
      env: { ROOT: root, ARCHIVES: APT_ARCHIVES, PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' },
      timeout: timeoutMs,
      // unshare holds SIGTERM for its child; SIGKILL takes the whole namespace down.
      killSignal: 'SIGKILL',
      maxBuffer: 64 * 1024 * 1024,
    })
    return { code: 0, stdout, stderr }
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string; message: string }
    if (typeof err.code !== 'number') throw e
    return { code: err.code, stdout: err.stdout ?? '', stderr: err.stderr ?? '' }
  }
}

/** debootstrap once (minbase plus systemd, as on a Pi), kept under .cache; half-made roots are redone. */
async function baseRoot(): Promise<void> {
  if (existsSync(join(BASE_ROOT, '.complete'))) return
  const partial = `${BASE_ROOT}.partial`
  rmSync(partial, { recursive: true, force: true })
  await execFileP('debootstrap', ['--variant=minbase', '--include=systemd,ca-certificates,iproute2', 'bookworm', partial, MIRROR], { timeout: 900_000, maxBuffer: 64 * 1024 * 1024 })
  writeFileSync(join(partial, '.complete'), `${new Date().toISOString()}\n`)
  rmSync(BASE_ROOT, { recursive: true, force: true })
  renameSync(partial, BASE_ROOT)
}

/** A fresh copy of the base root in `root`, set up as a chroot is: DNS, and no service starts. */
async function freshRoot(root: string): Promise<void> {
  // cp -a: the root's /dev holds device nodes, which fs.cpSync cannot copy.
  await execFileP('cp', ['-a', `${BASE_ROOT}/.`, root], { timeout: 300_000 })
  cpSync('/etc/resolv.conf', join(root, 'etc', 'resolv.conf'), { dereference: true })
  // What Debian's container images carry: packages' maintainer scripts must not start daemons here
  // (docker.io's would start a dockerd beside the host's).
  writeFileSync(join(root, 'usr', 'sbin', 'policy-rc.d'), '#!/bin/sh\nexit 101\n', { mode: 0o755 })
  mkdirSync(join(root, 'root', 'bramble'), { recursive: true })
  cpSync(join(REPO_ROOT, 'deploy'), join(root, 'root', 'bramble', 'deploy'), { recursive: true })
}

function mode(path: string): string {
  return (statSync(path).mode & 0o777).toString(8)
}

// debootstrap and two installs into a fresh root: on a loaded 2-core machine past tap's 10 minutes.
t.setTimeout(1_800_000)

t.test('flags are checked before anything else, each error naming the flag', async (t) => {
  const install = (...args: string[]) => spawnSync('bash', [INSTALL, ...args], { encoding: 'utf8', timeout: 30_000 })
  const cases: [string[], RegExp][] = [
    [[], /--role is required: hub or agent/],
    [['--role', 'pi'], /--role must be hub or agent, got 'pi'/],
    [['--role', 'agent', '--token', TOKEN], /--role agent needs --hub HOST\[:PORT\]/],
    [['--role', 'agent', '--hub', '10.0.0.1'], /--role agent needs --token/],
    [['--role', 'agent', '--hub', 'http://hub:6443/x', '--token', TOKEN], /--hub must be HOST, HOST:PORT or https:\/\/HOST:PORT, got 'http:\/\/hub:6443\/x'/],
    [['--role', 'agent', '--hub', '10.0.0.1', '--token', 'secret'], /--token is not a join token/],
    [['--role', 'agent', '--hub', '10.0.0.1', '--token', TOKEN, '--node-name', 'Pi_1'], /--node-name must be a DNS-1123 label/],
    [['--role', 'hub', '--token', TOKEN], /--hub, --token and --node-name are for --role agent/],
    [['--role', 'agent', '--hub', '10.0.0.1', '--token', TOKEN, '--advertise', '10.0.0.2'], /--advertise is for --role hub/],
    [['--role', 'hub', '--source', '/nonexistent/bramble.tar.gz'], /--source \/nonexistent\/bramble\.tar\.gz does not exist/],
    [['--role', 'hub', '--hub'], /--hub needs a value/],
    [['--role', 'hub', '--force'], /unknown option '--force'/],
  ]
  const help = install('--help')
  t.equal(help.status, 0)
  t.match(help.stdout, /^Installs Bramble on Raspberry Pi OS, Ubuntu or Debian/)
  t.match(help.stdout, /install\.sh --role agent --hub HOST\[:PORT\] --token TOKEN/)
  t.notMatch(help.stdout, /set -e|#/, 'the header comment alone, without its marks')
  for (const [args, message] of cases) {
    const r = install(...args)
    t.equal(r.status, 2, `exit 2 for ${args.join(' ') || 'no flags'}`)
    t.match(r.stderr, message)
    t.match(r.stderr, /usage: install\.sh --role hub/)
    t.equal(r.stdout, '', 'nothing done')
  }
})

const missing = missingTools()
t.test('install.sh in a fresh Debian root', { skip: missing }, async (t) => {
  await baseRoot()
  mkdirSync(APT_ARCHIVES, { recursive: true })
  const { stdout: packed } = await execFileP('bash', [join(REPO_ROOT, 'scripts', 'pack-release.sh'), RELEASE_ARCH[process.arch]], { timeout: 600_000, maxBuffer: 16 * 1024 * 1024 })
  const release = packed.trim().split('\n').pop()!
  const root = mkdtempSync(join(tmpdir(), 'pi-install-root-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  await freshRoot(root)
  cpSync(release, join(root, 'root', 'bramble', 'release.tar.gz'))
  const agentArgs = ['--role', 'agent', '--hub', 'https://hub.local:6443/', '--token', TOKEN, '--node-name', 'pi-node-1', '--source', '/root/bramble/release.tar.gz']
  const install = (args: string[]) => inRoot(root, ['bash', '/root/bramble/deploy/pi/install.sh', ...args])
  const file = (path: string) => join(root, path)

  await t.test("a release for another arch and an unbuilt checkout are refused before anything is installed", async (t) => {
    const other = process.arch === 'arm64' ? 'x64' : 'arm64'
    const fake = file('root/other-release')
    mkdirSync(join(fake, 'bramble', 'dist', 'src'), { recursive: true })
    mkdirSync(join(fake, 'bramble', 'bin'))
    for (const name of ['package.json', 'package-lock.json']) cpSync(join(REPO_ROOT, name), join(fake, 'bramble', name))
    writeFileSync(join(fake, 'bramble', 'bin', 'bramble'), '')
    writeFileSync(join(fake, 'bramble', 'RELEASE-ARCH'), `${other}\n`)
    const unbuilt = await install(['--role', 'hub', '--source', '/root/other-release/bramble'])
    t.equal(unbuilt.code, 1)
    t.match(unbuilt.stderr, /\/root\/other-release\/bramble has no dist\/src\/main\.js: run `npm run build` there first/)
    writeFileSync(join(fake, 'bramble', 'dist', 'src', 'main.js'), '')
    await execFileP('tar', ['-czf', join(fake, 'other.tar.gz'), '-C', fake, 'bramble'])
    const foreign = await install(['--role', 'hub', '--source', '/root/other-release/other.tar.gz'])
    t.equal(foreign.code, 1)
    const here = RELEASE_ARCH[process.arch]
    t.match(foreign.stderr, `--source is a release for ${other}; this machine needs the ${here === 'armv7' ? 'armv7l' : here} one (scripts/pack-release.sh ${here})`)
    for (const path of ['opt/bramble', 'etc/bramble', 'usr/local/bin/bramble']) t.notOk(existsSync(file(path)), `no ${path}`)
    t.equal((await inRoot(root, ['dpkg', '-s', 'ca-certificates'])).code, 0)
    t.not((await inRoot(root, ['dpkg', '-s', 'wireguard-tools'])).code, 0, 'no package installed')
  })

  await t.test('--dry-run prints the steps and changes nothing', async (t) => {
    const r = await install([...agentArgs, '--dry-run'])
    t.equal(r.code, 0, 'exit 0') || t.comment(r.stderr)
    t.match(r.stdout, /\+ env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends .*docker\.io/)
    t.match(r.stdout, /\+ install -m 0644 \/root\/bramble\/deploy\/pi\/bramble-agent\.service \/etc\/systemd\/system\/bramble-agent\.service/)
    for (const path of ['opt/bramble', 'etc/bramble', 'var/lib/bramble', 'usr/local/bin/bramble', 'etc/systemd/system/bramble-agent.service']) t.notOk(existsSync(file(path)), `no ${path}`)
  })

  await t.test('an agent: packages, Bramble, data dir, settings and the unit, enabled but not started', async (t) => {
    const r = await install(agentArgs)
    t.equal(r.code, 0, 'exit 0') || t.comment(`${r.stdout}\n${r.stderr}`)
    t.match(r.stdout, /systemd is not running here: bramble-agent\.service is enabled for the next boot, not started/)
    for (const pkg of ['docker.io', 'wireguard-tools', 'iptables']) {
      t.equal((await inRoot(root, ['dpkg', '-s', pkg])).code, 0, `${pkg} is installed`)
    }

    const version = await inRoot(root, ['bramble', '--version'])
    t.equal(version.stdout.trim(), JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version, `bramble --version: ${version.stderr}`)
    t.equal(mode(file('usr/local/bin/bramble')), '755')
    t.match(readFileSync(file('usr/local/bin/bramble'), 'utf8'), /exec \/opt\/bramble\/bin\/bramble "\$@"/)
    t.ok(existsSync(file('opt/bramble/node/bin/node')), "the release's Node is in /opt/bramble/node")

    t.equal(mode(file('var/lib/bramble')), '700', 'the data dir is owner-only')
    t.equal(mode(file('etc/bramble/agent.env')), '600', 'agent.env holds the join token: owner-only')
    const env = readFileSync(file('etc/bramble/agent.env'), 'utf8')
    t.match(env, /^BRAMBLE_HUB=hub\.local:6443$/m, 'the URL as the agent takes it: HOST:PORT')
    t.match(env, new RegExp(`^BRAMBLE_TOKEN=${TOKEN.replace(/\./g, '\\.')}$`, 'm'))
    t.match(env, /^BRAMBLE_AGENT_ARGS=--node-name pi-node-1$/m)

    const unit = 'etc/systemd/system/bramble-agent.service'
    t.equal(readFileSync(file(unit), 'utf8'), readFileSync(join(REPO_ROOT, 'deploy', 'pi', 'bramble-agent.service'), 'utf8'))
    t.equal(lstatSync(file('etc/systemd/system/multi-user.target.wants/bramble-agent.service')).isSymbolicLink(), true, 'enabled for boot')
    const verify = await inRoot(root, ['systemd-analyze', 'verify', '/etc/systemd/system/bramble-agent.service'])
    t.equal(verify.code, 0, verify.stderr)
    t.equal(verify.stderr.split('\n').filter((l) => l.includes('bramble')).join('\n'), '', 'systemd-analyze verify has nothing to say about the unit')
  })

  await t.test('run again with the same flags, it changes nothing', async (t) => {
    const paths = ['usr/local/bin/bramble', 'etc/bramble/agent.env', 'etc/systemd/system/bramble-agent.service', 'opt/bramble/dist/src/main.js', 'opt/bramble/node_modules', 'opt/bramble/node/bin/node']
    const before = paths.map((p) => statSync(file(p)).mtimeMs)
    const r = await install(agentArgs)
    t.equal(r.code, 0, 'exit 0') || t.comment(`${r.stdout}\n${r.stderr}`)
    t.match(r.stdout, /Bramble \S+ is already installed in \/opt\/bramble/)
    t.notMatch(r.stdout, /installing|writing/, 'nothing installed or written')
    t.same(paths.map((p) => statSync(file(p)).mtimeMs), before, 'no file touched')
    t.equal(mode(file('var/lib/bramble')), '700')
    t.equal(mode(file('etc/bramble/agent.env')), '600')
  })

  await t.test('a hub beside it: its unit and the address agents reach it at', async (t) => {
    const r = await install(['--role', 'hub', '--advertise', '192.168.1.10', '--source', '/root/bramble/release.tar.gz'])
    t.equal(r.code, 0, 'exit 0') || t.comment(`${r.stdout}\n${r.stderr}`)
    t.match(r.stdout, /Bramble \S+ is already installed/)
    t.match(readFileSync(file('etc/bramble/hub.env'), 'utf8'), /^BRAMBLE_HUB_ARGS=--advertise 192\.168\.1\.10$/m)
    t.equal(readFileSync(file('etc/systemd/system/bramble-hub.service'), 'utf8'), readFileSync(join(REPO_ROOT, 'deploy', 'pi', 'bramble-hub.service'), 'utf8'))
    t.equal(lstatSync(file('etc/systemd/system/multi-user.target.wants/bramble-hub.service')).isSymbolicLink(), true)
    const verify = await inRoot(root, ['systemd-analyze', 'verify', '/etc/systemd/system/bramble-hub.service'])
    t.equal(verify.code, 0, verify.stderr)
    t.equal(verify.stderr.split('\n').filter((l) => l.includes('bramble')).join('\n'), '')
  })

  await t.test("cloud-init's first-boot script installs the agent from the release on the boot partition", async (t) => {
    const userData = parse(readFileSync(join(REPO_ROOT, 'deploy', 'pi', 'cloud-init', 'user-data.yaml'), 'utf8')) as { write_files: { path: string; content: string }[] }
    const firstboot = userData.write_files.find((f) => f.path === '/usr/local/sbin/bramble-firstboot')!.content
    writeFileSync(file('usr/local/sbin/bramble-firstboot'), firstboot, { mode: 0o700 })
    writeFileSync(file('etc/bramble/firstboot.env'), `BRAMBLE_HUB=10.1.2.3:6443\nBRAMBLE_TOKEN=${TOKEN}\nBRAMBLE_RELEASE=/boot/firmware/bramble.tar.gz\nBRAMBLE_RELEASE_URL=\n`, { mode: 0o600 })
    mkdirSync(file('boot/firmware'), { recursive: true })
    cpSync(release, file('boot/firmware/bramble.tar.gz'))
    const r = await inRoot(root, ['/usr/local/sbin/bramble-firstboot'])
    t.equal(r.code, 0, 'exit 0') || t.comment(`${r.stdout}\n${r.stderr}`)
    t.match(r.stdout, /Bramble \S+ is already installed/, 'the same build: only the settings change')
    const env = readFileSync(file('etc/bramble/agent.env'), 'utf8')
    t.match(env, /^BRAMBLE_HUB=10\.1\.2\.3:6443$/m)
    t.match(env, /^BRAMBLE_AGENT_ARGS=--node-name pi-node-7$/m, 'named after the host')
    t.equal(mode(file('etc/bramble/agent.env')), '600')
    t.notOk(existsSync(file('etc/bramble/firstboot.env')), 'the token is not left behind in firstboot.env')
  })
})
