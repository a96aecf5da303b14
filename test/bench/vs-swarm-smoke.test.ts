// bench/vs-swarm at its smallest: its own dockerd in a network namespace, Swarm initialised there
// and a real hub and agent on the same engine, 1 and 3 replicas, a rolling update, a kill and a
// scale of 3. Each side must have reached what every step waited for, the report must name every
// figure, and the run must leave nothing behind (dockerd, namespace, bridge, folder). How fast
// either side was is the benchmark's to print, never this test's to assert.

import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import t from 'tap'
import { DEFAULT_VS_SWARM_OPTIONS, formatVsSwarm, parseVsSwarmArgs, runVsSwarmBench } from '../../bench/vs-swarm.js'
import { netnsUnavailable } from '../helpers/netns-host.js'

t.test('flags: defaults, and a bad value is refused naming its flag', async (t) => {
  t.same(parseVsSwarmArgs([]), DEFAULT_VS_SWARM_OPTIONS)
  t.same(parseVsSwarmArgs(['--replicas', '1,3', '--rounds', '2', '--update-replicas=3', '--scale-to', '4', '--parallelism', '2', '--grace-seconds', '5', '--step-timeout', '60', '--prefix', 'vsx']), {
    replicas: [1, 3],
    rounds: 2,
    updateReplicas: 3,
    scaleTo: 4,
    parallelism: 2,
    graceSeconds: 5,
    stepTimeoutSeconds: 60,
    prefix: 'vsx',
  })
  t.throws(() => parseVsSwarmArgs(['--replicas', '1,x']), /--replicas must be a comma-separated list of whole numbers from 1 to 100, got "1,x"/)
  t.throws(() => parseVsSwarmArgs(['--replicas']), /--replicas must be/)
  t.throws(() => parseVsSwarmArgs(['--update-replicas', '0']), /--update-replicas must be a whole number of replicas of the rolling update and the kill from 1 to 100, got "0"/)
  t.throws(() => parseVsSwarmArgs(['--grace-seconds', '1.5']), /--grace-seconds must be a whole number/)
  t.throws(() => parseVsSwarmArgs(['--rounds', '0']), /--rounds must be a whole number of rounds of each replica-count figure from 1 to 9, got "0"/)
  t.throws(() => parseVsSwarmArgs(['--update-replicas', '2', '--parallelism', '3']), /--parallelism \(3\) must not exceed --update-replicas \(2\)/)
  t.throws(() => parseVsSwarmArgs(['--swarm', '1']), /unknown flag "--swarm"/)
  t.throws(() => parseVsSwarmArgs(['--prefix', 'vs-1']), /--prefix must be two or three lowercase letters, got "vs-1"/)
})

t.test('1 and 3 replicas, an update, a kill and a scale: both sides reach Running, every figure printed, nothing left behind', async (t) => {
  const unavailable = await netnsUnavailable()
  if (unavailable) return t.plan(0, unavailable)
  const r = await runVsSwarmBench({ ...DEFAULT_VS_SWARM_OPTIONS, replicas: [1, 3], rounds: 1, updateReplicas: 3, scaleTo: 4 })
  const report = formatVsSwarm(r)
  t.comment(report)

  t.same(r.pairs.map((p) => p.label), ['1 replica Running', '3 replicas Running', 'rolling update of 3 replicas', 'killed container replaced', 'scale 3 -> 4'])
  for (const p of r.pairs) {
    t.ok(p.running.swarm >= p.replicas, `${p.label}: Swarm said ${p.running.swarm} of ${p.replicas} running`)
    t.ok(p.running.bramble >= p.replicas, `${p.label}: Bramble said ${p.running.bramble} of ${p.replicas} running`)
    t.ok(p.swarm > 0 && p.bramble > 0, `${p.label}: both times measured`)
    t.match(report, new RegExp(`${p.label.replace(/[->]/g, '.')}\\s+\\d+\\.\\d\\d s\\s+\\d+\\.\\d\\d s\\s+\\d+\\.\\d\\d`), `${p.label}: printed with both times and the ratio`)
  }
  // A replica-count step makes at least one container per replica on each side, as the engine's events show.
  for (const p of r.pairs.filter((p) => p.label.endsWith('Running'))) {
    for (const side of ['swarm', 'bramble'] as const) {
      const ph = p.phases[side]
      t.ok(ph && ph.creates >= p.replicas && ph.starts >= p.replicas, `${p.label}: the engine's events show ${side}'s ${p.replicas} containers made (${ph?.creates} created, ${ph?.starts} started)`)
      t.ok(ph && ph.toFirstCreate >= 0 && ph.engine >= 0 && ph.toDone >= 0 && ph.toFirstCreate + ph.engine + ph.toDone <= p[side] + 0.5, `${p.label}: ${side}'s split lies within its time`)
    }
  }
  t.match(report, /where the time went/, 'the split printed')
  t.ok(r.memory.dockerdAfterKiB > 0 && r.memory.dockerdBeforeKiB > 0 && r.memory.hubKiB > 0 && r.memory.agentKiB > 0, 'resident memory read for dockerd, hub and agent')
  t.match(report, /resident memory added\s+-?\d+\.\d MiB\s+\d+\.\d MiB/, 'memory pair printed')
  t.match(report, /floor: bare docker run -d \d+\.\d\d s/, 'the floor printed')
  t.ok(r.floorSeconds > 0, 'bare docker run timed')
  t.same(r.engineFloors.map((f) => f.replicas), [1, 3], 'the engine alone measured for each replica count')
  for (const f of r.engineFloors) {
    t.ok(f.containers > 0 && f.unnetworked > 0 && f.pods > 0, `${f.replicas}: the engine's floor timed for containers, containers without a network, and pods`)
    t.match(report, new RegExp(`\\s${f.replicas}: \\d+\\.\\d\\d s \\| \\d+\\.\\d\\d s \\| \\d+\\.\\d\\d s\\s+swarm \\d+\\.\\d\\d x containers, bramble \\d+\\.\\d\\d x pods, aim \\d+\\.\\d\\d x containers \\(\\d+\\.\\d\\d x without a network\\)`), `${f.replicas}: the floors printed beside both sides`)
  }

  t.notOk(processAlive(r.lab.dockerdPid), "the run's dockerd (and its swarm) is stopped")
  t.notOk(existsSync(r.lab.dir), "the run's folder is removed")
  t.same(readdirSync('/var/run/netns').filter((n) => n.startsWith(`${r.lab.name}-`)), [], "the run's network namespace is removed")
  t.notMatch(execFileSync('ip', ['-o', 'link', 'show']).toString(), new RegExp(`: ${r.lab.name}[:@-]`), "the run's bridge and veth are removed")
})

function processAlive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return false
  }
}
