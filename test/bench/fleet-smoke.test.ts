// bench/fleet at a small size (20 agents, 40 pods), run as `npm run bench:fleet` runs it, with the
// embedded broker and with Mosquitto: every pod ends Running, and what it prints is all there and
// sane: the open-file limit each process got, Nodes Ready, the hub's CPU and memory, heartbeat lag
// p50/p99 (heartbeats were counted), MQTT messages per second and the ratio of the two brokers.
// Speed is the benchmark's to print, not this test's to assert.

import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { commandExists } from '../../bench/fleet-processes.js'

const FLEET = fileURLToPath(new URL('../../bench/fleet.ts', import.meta.url))

function runFleetBench(env: Record<string, string>): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...process.execArgv, FLEET], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    child.stdout!.on('data', (d) => (out += d))
    child.stderr!.on('data', (d) => (out += d))
    const timer = setTimeout(() => child.kill('SIGTERM'), 400_000)
    child.on('error', reject)
    child.on('exit', (code) => {
      clearTimeout(timer)
      resolve({ code, out })
    })
  })
}

/** The figures of one window line: `... heartbeat lag p50 X ms p99 Y ms over N heartbeats, M MQTT messages/s`. */
function windowFigures(line: string) {
  const m = /hub CPU ([\d.]+) s over ([\d.]+) s \((\d+)% of one core\), RSS (\d+) MiB .*heartbeat lag p50 ([\d.]+|n\/a)(?: ms)? p99 ([\d.]+|n\/a)(?: ms)? over (\d+) heartbeats, (\d+) MQTT messages\/s, \d+ agent reconnects, \/metrics answered in ([\d.]+) ms/.exec(line)
  if (!m) return undefined
  const num = (s: string) => (s === 'n/a' ? Number.NaN : Number(s))
  return { cpuSeconds: num(m[1]!), seconds: num(m[2]!), rssMiB: num(m[4]!), p50: num(m[5]!), p99: num(m[6]!), heartbeats: num(m[7]!), messagesPerSecond: num(m[8]!), scrapeMs: num(m[9]!) }
}

t.test('20 simulated agents and 40 pods on each broker: all Running, every figure printed and sane', async (t) => {
  const mosquitto = commandExists('mosquitto', ['-h'])
  if (!mosquitto) t.comment('mosquitto is not installed (apt-get install mosquitto): only the embedded broker runs')
  const brokers = mosquitto ? ['embedded', 'mosquitto'] : ['embedded']
  const { code, out } = await runFleetBench({ BENCH_FLEET_AGENTS: '20', BENCH_FLEET_PODS: '40', BENCH_FLEET_BROKERS: brokers.join(','), BENCH_TIMEOUT_SECONDS: '300' })
  t.equal(code, 0, 'the bench exits 0', { out })
  const lines = out.split('\n')
  t.match(out, /^open-file hard limit: \d+/m, 'the hard limit is stated')
  for (const broker of brokers) {
    const at = lines.findIndex((l) => l.startsWith(`fleet 20 agents, 40 pods, ${broker} broker:`))
    t.ok(at >= 0, `a ${broker} block is printed`)
    const end = lines.findIndex((l, i) => i > at && !l.startsWith('  '))
    const block = lines.slice(at, end < 0 ? undefined : end)
    t.match(block[0], /: done; open-file limit: hub \d+, agents \d+/, `${broker}: the run finished and each process's limit is printed`)
    if (broker === 'mosquitto') t.match(block[0], /mosquitto \d+/, "and Mosquitto's")
    t.match(block[1], /Nodes Ready: 20\/20 in [\d.]+ s/, `${broker}: every Node Ready`)
    const idle = windowFigures(block.find((l) => l.includes('idle fleet:')) ?? '')
    t.ok(idle, `${broker}: the idle window's figures parse`)
    if (idle) {
      t.ok(idle.heartbeats >= 20, `${broker}: heartbeats counted in the idle window (${idle.heartbeats})`)
      t.ok(Number.isFinite(idle.p50) && Number.isFinite(idle.p99) && idle.p50 >= 0 && idle.p99 >= idle.p50, `${broker}: lag p50 ${idle.p50} ms <= p99 ${idle.p99} ms`)
      t.ok(idle.messagesPerSecond > 0, `${broker}: MQTT messages counted`)
      t.ok(idle.rssMiB > 0 && idle.cpuSeconds >= 0 && idle.seconds > 0, `${broker}: the hub's CPU and memory read`)
      t.ok(idle.scrapeMs > 0, `${broker}: the time the hub took to answer /metrics is printed`)
    }
    t.match(block.find((l) => l.includes('rollout:')) ?? '', /all 40 pods Running in [\d.]+ s/, `${broker}: time to all Running printed`)
    t.ok(block.includes('  pods Running at the end: 40/40'), `${broker}: the hub counts 40 pods Running`)
    t.match(block.find((l) => l.includes('heartbeat lag p99, the worse window')) ?? '', /aim: under 1000 ms/, `${broker}: the lag is judged against the aim`)
    t.match(block.find((l) => l.includes('machine load')) ?? '', /[\d.]+ at the start, [\d.]+ at the end/, `${broker}: the machine's load is printed`)
  }
  if (mosquitto) t.match(out, /^ratio Mosquitto vs embedded broker \(20 agents, baseline embedded\): time to all Running [\d.]+/m, 'the ratio of the brokers is printed')
})
