// Per-pod usage from cgroup files: the parsers, and CgroupPodUsage over a cgroup tree laid out as
// Docker's systemd driver (v2) and cgroupfs driver (v1) make it, in a temp dir, with the fake
// runtime standing for the engine's container list.

import t from 'tap'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { LABELS } from '../../src/agent/container-runtime.js'
import { CgroupPodUsage, cpuRate, parseCpuStatUsec, workingSetBytes } from '../../src/agent/pod-usage.js'
import { FakeClock } from './fake-clock.js'
import { FakeRuntime } from './fake-runtime.js'

const CLUSTER = 'mtcluster'

t.test('cpu.stat gives usage_usec; a file without it is an error', async (t) => {
  t.equal(parseCpuStatUsec('usage_usec 123456\nuser_usec 100000\nsystem_usec 23456\n'), 123456)
  t.throws(() => parseCpuStatUsec('user_usec 1\n'), /usage_usec/)
})

t.test('the working set is usage less inactive file pages, never below zero', async (t) => {
  t.equal(workingSetBytes(10_000_000, 'anon 6000000\ninactive_file 3000000\nactive_file 1000000\n', 2), 7_000_000)
  t.equal(workingSetBytes(10_000_000, 'cache 4000000\ntotal_inactive_file 2500000\n', 1), 7_500_000)
  t.equal(workingSetBytes(10_000_000, 'anon 6000000\n', 2), 10_000_000, 'no inactive_file line: all of it')
  t.equal(workingSetBytes(1_000, 'inactive_file 5000\n', 2), 1_000, 'an inactive figure larger than usage is ignored')
})

t.test('the CPU rate is the usage between two readings over the time between', async (t) => {
  t.equal(cpuRate({ usageNs: 0, atMs: 0 }, { usageNs: 500_000_000, atMs: 2_000 }), 0.25)
  t.equal(cpuRate({ usageNs: 900, atMs: 0 }, { usageNs: 100, atMs: 1_000 }), 0, 'a counter that went back (new cgroup) is 0')
  t.equal(cpuRate({ usageNs: 0, atMs: 1_000 }, { usageNs: 100, atMs: 1_000 }), 0, 'no time passed')
})

async function runningPod(runtime: FakeRuntime, pod: string, container: string, role = 'app'): Promise<string> {
  runtime.addImage('busybox')
  const id = await runtime.create({
    name: `${pod}-${container}`,
    image: 'busybox',
    labels: { [LABELS.cluster]: CLUSTER, [LABELS.podNamespace]: 'default', [LABELS.podName]: pod, [LABELS.containerName]: container, [LABELS.role]: role },
  })
  await runtime.start(id)
  return id
}

function write(path: string, text: string): void {
  mkdirSync(join(path, '..'), { recursive: true })
  writeFileSync(path, text)
}

t.test('cgroup v2 (systemd driver): CPU since the container started, then between heartbeats; memory as working set', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mt-cgroup-v2-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory\n')
  const clock = new FakeClock()
  const runtime = new FakeRuntime(clock)
  const app = await runningPod(runtime, 'web', 'app')
  await runningPod(runtime, 'web', 'POD', 'sandbox')
  const dir = join(root, 'system.slice', `docker-${app}.scope`)
  write(join(dir, 'cpu.stat'), 'usage_usec 2000000\n')
  write(join(dir, 'memory.current'), '8388608\n')
  write(join(dir, 'memory.stat'), 'anon 4194304\ninactive_file 1048576\n')
  const usage = new CgroupPodUsage({ runtime, clusterId: CLUSTER, clock, cgroupRoot: root })

  clock.advance(4_000)
  runtime.calls.length = 0
  t.same(await usage.read(), [{ namespace: 'default', name: 'web', containers: [{ name: 'app', cpuCores: 0.5, memoryBytes: 7_340_032 }] }], '2 s of CPU over the 4 s since it started; the sandbox is not reported')
  t.same(runtime.calls, ['listRunning', `inspect ${app}`], 'a container seen for the first time is inspected for its start')
  write(join(dir, 'cpu.stat'), 'usage_usec 2250000\n')
  clock.advance(1_000)
  runtime.calls.length = 0
  t.equal((await usage.read())[0]!.containers[0]!.cpuCores, 0.25, '250 ms of CPU in the last second')
  t.same(runtime.calls, ['listRunning'], 'after that, one list per reading and no inspect')
})

t.test('cgroup v1 (cgroupfs driver): cpuacct.usage and memory.usage_in_bytes', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mt-cgroup-v1-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  const clock = new FakeClock()
  const runtime = new FakeRuntime(clock)
  const app = await runningPod(runtime, 'db', 'postgres')
  write(join(root, 'cpuacct', 'docker', app, 'cpuacct.usage'), '1000000000\n')
  write(join(root, 'memory', 'docker', app, 'memory.usage_in_bytes'), '20000000\n')
  write(join(root, 'memory', 'docker', app, 'memory.stat'), 'cache 5000000\ntotal_inactive_file 4000000\n')
  const usage = new CgroupPodUsage({ runtime, clusterId: CLUSTER, clock, cgroupRoot: root })
  clock.advance(10_000)
  t.same(await usage.read(), [{ namespace: 'default', name: 'db', containers: [{ name: 'postgres', cpuCores: 0.1, memoryBytes: 16_000_000 }] }])
})

t.test('a container whose cgroup cannot be found, or that stopped, is left out', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'mt-cgroup-none-'))
  t.teardown(() => rmSync(root, { recursive: true, force: true }))
  writeFileSync(join(root, 'cgroup.controllers'), 'cpu memory\n')
  const clock = new FakeClock()
  const runtime = new FakeRuntime(clock)
  await runningPod(runtime, 'lost', 'app')
  const stopped = await runningPod(runtime, 'done', 'app')
  write(join(root, 'docker', stopped, 'cpu.stat'), 'usage_usec 1\n')
  runtime.exit(stopped, 0)
  const usage = new CgroupPodUsage({ runtime, clusterId: CLUSTER, clock, cgroupRoot: root })
  t.same(await usage.read(), [])
})
