// `bramble check`: each verdict from given facts (pure), then the real binary on a real `bramble up`
// data dir: every certificate with its expiry, the clock compared with the running hub, and exit 1
// once a certificate in the data dir has expired.

import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import {
  archCheck,
  certificateCheck,
  cgroupsCheck,
  checkExitCode,
  clockCheck,
  diskCheck,
  dockerCheck,
  formatResults,
  parseChronycTracking,
  parseTimedatectl,
  timeSyncCheck,
  wireguardCheck,
} from '../../src/cli/preflight-checks.js'
import { makeCert } from '../helpers/cert-factory.js'
import { dockerClient, removeClusterContainers } from '../helpers/docker.js'
import { BRAMBLE_BIN, startHubProcess } from '../helpers/hub-process.js'

const DAY_MS = 86_400_000
const MIB = 1024 * 1024
const NOW = Date.parse('2026-06-01T00:00:00Z')

t.test('certificates: ok with their expiry, warned near renewal, failed when expired, not yet valid or unreadable', async (t) => {
  const serving = (from: number, to: number) => ({ label: 'server.crt', role: 'serving' as const, pem: makeCert(from, to).certPem })
  const fresh = certificateCheck(serving(NOW - 7 * DAY_MS, NOW + 358 * DAY_MS), NOW)
  t.same(fresh, { name: 'certificate server.crt', status: 'ok', detail: 'expires 2027-05-25 (in 358 days)' })

  const due = certificateCheck(serving(NOW - 300 * DAY_MS, NOW + 65 * DAY_MS), NOW)
  t.equal(due.status, 'warn', 'a serving certificate in its last third')
  t.match(due.detail, /expires 2026-08-05 \(in 65 days\); the hub renews it at start and daily: is the hub running\?/)

  const expired = certificateCheck(serving(NOW - 400 * DAY_MS, NOW - 35 * DAY_MS), NOW)
  t.equal(expired.status, 'fail')
  t.match(expired.detail, /^expired on 2026-04-27 \(35 days ago\); restart the hub/)

  const future = certificateCheck(serving(NOW + 2 * DAY_MS, NOW + 300 * DAY_MS), NOW)
  t.equal(future.status, 'fail')
  t.match(future.detail, /not valid until 2026-06-03T00:00:00\.000Z by this machine's clock \(2026-06-01T00:00:00\.000Z\): the clock is probably wrong/)

  const caSoon = certificateCheck({ label: 'ca.crt', role: 'ca', pem: makeCert(NOW - 3000 * DAY_MS, NOW + 200 * DAY_MS).certPem }, NOW)
  t.equal(caSoon.status, 'warn', 'a CA within a year of expiry')
  t.match(caSoon.detail, /not renewed automatically because agents pin it/)
  t.equal(certificateCheck({ label: 'ca.crt', role: 'ca', pem: makeCert(NOW - DAY_MS, NOW + 3000 * DAY_MS).certPem }, NOW).status, 'ok')

  const garbage = certificateCheck({ label: 'agent/identity.json', role: 'ca', pem: 'not a certificate' }, NOW)
  t.equal(garbage.status, 'fail')
  t.match(garbage.detail, /holds no readable certificate/)
})

t.test('docker: its version, or why it cannot be reached', async (t) => {
  t.same(dockerCheck({ version: '20.10.24', apiVersion: '1.41' }, 'unix:///var/run/docker.sock'), { name: 'docker', status: 'ok', detail: 'Docker 20.10.24 (API 1.41) at unix:///var/run/docker.sock' })
  const down = dockerCheck({ error: 'connect ENOENT /var/run/docker.sock' }, 'unix:///var/run/docker.sock')
  t.equal(down.status, 'fail')
  t.match(down.detail, /cannot reach Docker at unix:\/\/\/var\/run\/docker\.sock: connect ENOENT .*start dockerd/)
})

t.test('cgroups: v2 with memory is ok, v1 a warning, no memory controller a failure with the Pi fix', async (t) => {
  t.equal(cgroupsCheck({ unified: true, controllers: ['cpuset', 'cpu', 'io', 'memory', 'pids'] }).status, 'ok')
  t.equal(cgroupsCheck({ unified: false, controllers: ['cpu', 'memory'] }).status, 'warn')
  const pi = cgroupsCheck({ unified: true, controllers: ['cpuset', 'cpu', 'io', 'pids'] })
  t.equal(pi.status, 'fail')
  t.match(pi.detail, /on Raspberry Pi OS add `cgroup_enable=memory cgroup_memory=1` to the one line of \/boot\/firmware\/cmdline\.txt \(\/boot\/cmdline\.txt before Bookworm\) and reboot/)
  t.equal(cgroupsCheck({ unified: false, controllers: ['cpu', 'cpuset'] }).status, 'fail', 'v1 without memory too')
})

t.test('wireguard: the kernel module or wireguard-go, and wg; missing is a warning (one node runs without)', async (t) => {
  t.equal(wireguardCheck({ kernelModule: true, wireguardGo: false, wgTool: true }).status, 'ok')
  t.same(wireguardCheck({ kernelModule: false, wireguardGo: true, wgTool: true }).detail, 'wireguard-go and `wg` (no kernel module)')
  t.equal(wireguardCheck({ kernelModule: true, wireguardGo: true, wgTool: false }).status, 'warn')
  t.match(wireguardCheck({ kernelModule: false, wireguardGo: false, wgTool: true }).detail, /neither the kernel module nor wireguard-go/)
})

t.test('arch: the boards Bramble is built for', async (t) => {
  t.same(archCheck('arm64'), { name: 'arch', status: 'ok', detail: 'arm64' })
  t.same(archCheck('arm'), { name: 'arch', status: 'ok', detail: 'armv7' })
  t.equal(archCheck('riscv64').status, 'warn')
})

t.test('clock: compared with the hub when one is known, warned past a minute', async (t) => {
  t.equal(clockCheck({ hub: undefined }, NOW).status, 'ok')
  t.match(clockCheck({ hub: undefined }, NOW).detail, /no hub known/)
  t.equal(clockCheck({ hub: 'https://10.0.0.1:6443', skewMs: 40_000 }, NOW).status, 'ok')
  const behind = clockCheck({ hub: 'https://10.0.0.1:6443', skewMs: 3 * DAY_MS }, NOW)
  t.equal(behind.status, 'warn')
  t.match(behind.detail, /^3 days behind the hub's/)
  t.match(clockCheck({ hub: 'https://10.0.0.1:6443', skewMs: -5 * 60_000 }, NOW).detail, /^5 min ahead of the hub's/)
  t.match(clockCheck({ hub: 'https://10.0.0.1:6443', skewMs: undefined }, NOW), { status: 'warn', detail: /did not answer/ })
})

t.test('time sync: read from timedatectl or chronyc; unsynchronized is a warning with the fix, stronger without an RTC', async (t) => {
  t.equal(parseTimedatectl('NTPSynchronized=yes\n'), true)
  t.equal(parseTimedatectl('NTPSynchronized=no\n'), false)
  t.equal(parseTimedatectl(''), undefined, 'no answer (no systemd running) says nothing')
  const chronySynced = 'Reference ID    : C0A80101 (192.168.1.1)\nStratum         : 3\nSystem time     : 0.000012345 seconds fast of NTP time\nLeap status     : Normal\n'
  const chronyUnsynced = 'Reference ID    : 00000000 ()\nStratum         : 0\nRef time (UTC)  : Thu Jan 01 00:00:00 1970\nLeap status     : Not synchronised\n'
  t.equal(parseChronycTracking(chronySynced), true)
  t.equal(parseChronycTracking(chronyUnsynced), false)
  t.equal(parseChronycTracking('506 Cannot talk to daemon\n'), undefined)

  t.same(timeSyncCheck({ source: 'timedatectl', synchronized: true, rtc: true }), { name: 'time sync', status: 'ok', detail: 'synchronized (timedatectl)' })
  t.same(timeSyncCheck({ source: 'chronyc', synchronized: true, rtc: false }), { name: 'time sync', status: 'ok', detail: 'synchronized (chronyc); no real-time clock: the time comes from NTP after each boot' })
  const pi = timeSyncCheck({ source: 'timedatectl', synchronized: false, rtc: false })
  t.equal(pi.status, 'warn')
  t.match(pi.detail, /^not synchronized \(timedatectl\); this machine has no real-time clock, so after each boot the time is right only once NTP has set it; enable NTP: `sudo timedatectl set-ntp true`/)
  const withRtc = timeSyncCheck({ source: 'chronyc', synchronized: false, rtc: true })
  t.equal(withRtc.status, 'warn')
  t.notMatch(withRtc.detail, /real-time clock/, 'a board with an RTC is not told it lacks one')
  const none = timeSyncCheck({ source: undefined, synchronized: false, rtc: false })
  t.equal(none.status, 'warn')
  t.match(none.detail, /^no time service answered \(timedatectl, chronyc, systemd-timesyncd\); this machine has no real-time clock.*install chrony/)
})

t.test('disk: failed under 200 MiB, warned when low', async (t) => {
  t.equal(diskCheck({ path: '/var/lib/bramble', freeBytes: 100 * MIB, totalBytes: 16_000 * MIB }).status, 'fail')
  t.equal(diskCheck({ path: '/var/lib/bramble', freeBytes: 900 * MIB, totalBytes: 16_000 * MIB }).status, 'warn')
  t.equal(diskCheck({ path: '/var/lib/bramble', freeBytes: 1500 * MIB, totalBytes: 64_000 * MIB }).status, 'warn', 'under a tenth')
  t.same(diskCheck({ path: '/var/lib/bramble', freeBytes: 8000 * MIB, totalBytes: 16_000 * MIB }), { name: 'disk', status: 'ok', detail: '8000 MiB free of 16000 MiB at /var/lib/bramble' })
})

t.test('one aligned line per check; the exit code is 1 only when one failed', async (t) => {
  const results = [archCheck('arm64'), clockCheck({ hub: undefined }, NOW), diskCheck({ path: '/d', freeBytes: 100 * MIB, totalBytes: 1000 * MIB })]
  t.equal(formatResults(results).split('\n')[0], 'ok    arch   arm64')
  t.match(formatResults(results), /\nfail  disk   100 MiB free/)
  t.equal(checkExitCode(results), 1)
  t.equal(checkExitCode(results.slice(0, 2)), 0, 'warnings and oks pass')
  t.equal(checkExitCode([wireguardCheck({ kernelModule: false, wireguardGo: false, wgTool: false })]), 0)
})

t.test('the bramble binary on a `bramble up` data dir', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'bramble-check-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const dataDir = join(root, 'data')
  const hub = await startHubProcess({ dataDir, command: 'up' })
  t.teardown(async () => {
    await hub.stop()
    // The local agent's pod network and rules, if it made them before the test ended.
    await removeClusterContainers(dockerClient(), readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim())
  })
  const identity = join(dataDir, 'agent', 'identity.json')
  for (let i = 0; i < 300 && !existsSync(identity); i++) await new Promise((r) => setTimeout(r, 100))
  t.ok(existsSync(identity), 'the local agent joined')
  const check = (dir: string) => spawnSync(process.execPath, [BRAMBLE_BIN, 'check', '--data-dir', dir], { encoding: 'utf8', timeout: 60_000 })

  t.test('a healthy data dir: every certificate ok with its expiry, the clock within a minute of the hub', async (t) => {
    const r = check(dataDir)
    const lines = r.stdout.trim().split('\n')
    t.match(lines, [
      /^ok {4}certificate ca\.crt \(cluster CA\) +expires \d{4}-\d\d-\d\d \(in 365\d days\)$/,
      /^ok {4}certificate server\.crt \(hub API and broker\) +expires \d{4}-\d\d-\d\d \(in 36[45] days( \d+ h)?\)$/,
      /^ok {4}certificate agent\/identity\.json \(the CA this node pinned\) +expires/,
      /^(ok|fail) +docker /,
      /^(ok|warn|fail) +cgroups /,
      /^(ok|warn) +wireguard /,
      /^(ok|warn) +arch /,
      /^ok {4}clock +\S+, within \d+ s of the hub's$/,
      /^(ok|warn) +time sync +(synchronized|not synchronized|no time service answered)/,
      /^(ok|warn|fail) +disk /,
    ])
    t.equal(r.status, lines.some((l) => l.startsWith('fail')) ? 1 : 0, 'exit code 1 exactly when a line says fail')
    t.equal(r.stderr, '')
  })

  t.test('an expired serving certificate fails the check with exit code 1', async (t) => {
    const copy = join(root, 'expired')
    cpSync(dataDir, copy, { recursive: true, filter: (src) => !src.includes(join('agent', 'replica')) && !src.endsWith('store') })
    const ca = { certPem: readFileSync(join(dataDir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dataDir, 'ca.key'), 'utf8') }
    writeFileSync(join(copy, 'server.crt'), makeCert(Date.now() - 400 * DAY_MS, Date.now() - 10 * DAY_MS, ca).certPem)
    const r = check(copy)
    t.equal(r.status, 1)
    t.match(r.stdout, /^fail  certificate server\.crt \(hub API and broker\) +expired on \d{4}-\d\d-\d\d \(10 days ago\); restart the hub: it renews its serving certificate at start$/m)
    t.match(r.stdout, /^ok {4}certificate ca\.crt/m, 'the others are still reported')
  })
})
