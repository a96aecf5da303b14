import t from 'tap'
import { nodeLabels, nodeStatus, statusFingerprint, type NodeFacts } from '../../src/agent/node-status.js'

const GiB = 1024 ** 3
const facts = (over: Partial<NodeFacts> = {}): NodeFacts => ({
  architecture: 'arm64',
  operatingSystem: 'linux',
  osImage: 'Debian GNU/Linux 12 (bookworm)',
  kernelVersion: '6.6.31-v8+',
  hostname: 'Pi-One',
  addresses: ['10.0.0.21', '192.168.1.5'],
  cpu: { cores: 4, model: 'ARM Cortex-A72' },
  memory: { totalBytes: 4 * GiB, availableBytes: 3 * GiB },
  disk: { totalBytes: 32 * GiB, freeBytes: 20 * GiB },
  containerRuntimeVersion: 'docker://20.10.24',
  kubeletVersion: 'bramble-0.1.0',
  ...over,
})
const reserve = { cpuMillis: 250, memoryBytes: 256 * 1024 * 1024 }
const T0 = Date.parse('2024-05-01T10:00:00Z')
const cond = (s: ReturnType<typeof nodeStatus>, type: string) => s.conditions.find((c) => c.type === type)!

t.test('capacity comes from the host; allocatable is capacity minus the reserve', async (t) => {
  const s = nodeStatus(facts(), reserve, T0)
  t.same(s.capacity, { cpu: '4', memory: `${4 * 1024 * 1024}Ki`, pods: '110', 'ephemeral-storage': `${32 * 1024 * 1024}Ki` })
  t.equal(s.allocatable.cpu, '3750m')
  t.equal(s.allocatable.memory, `${4 * 1024 * 1024 - 256 * 1024}Ki`)
})

t.test('nodeInfo, addresses and labels use Kubernetes names', async (t) => {
  const s = nodeStatus(facts(), reserve, T0)
  t.same(s.nodeInfo, { architecture: 'arm64', operatingSystem: 'linux', osImage: 'Debian GNU/Linux 12 (bookworm)', kernelVersion: '6.6.31-v8+', containerRuntimeVersion: 'docker://20.10.24', kubeletVersion: 'bramble-0.1.0' })
  t.same(s.addresses, [{ type: 'InternalIP', address: '10.0.0.21' }, { type: 'Hostname', address: 'pi-one' }])
  t.same(nodeLabels(facts()), { 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': 'pi-one' })
})

t.test('a healthy node is Ready with no pressure and no throttling', async (t) => {
  const s = nodeStatus(facts({ throttling: { throttledNow: false, underVoltageNow: false, raw: '0x0' } }), reserve, T0)
  t.same(s.conditions.map((c) => [c.type, c.status]), [['Ready', 'True'], ['MemoryPressure', 'False'], ['DiskPressure', 'False'], ['ThermalThrottling', 'False']])
})

t.test('less than 10% disk free is DiskPressure; low memory is MemoryPressure; a throttled SoC is ThermalThrottling', async (t) => {
  const s = nodeStatus(facts({ disk: { totalBytes: 32 * GiB, freeBytes: 3 * GiB }, memory: { totalBytes: 4 * GiB, availableBytes: 0.1 * GiB }, throttling: { throttledNow: true, underVoltageNow: true, raw: '0x50005' } }), reserve, T0)
  t.equal(cond(s, 'DiskPressure').status, 'True')
  t.equal(cond(s, 'MemoryPressure').status, 'True')
  t.equal(cond(s, 'ThermalThrottling').status, 'True')
  t.match(cond(s, 'ThermalThrottling').message, /0x50005/)
})

t.test('transition times move only when a condition changes; heartbeat times always', async (t) => {
  const first = nodeStatus(facts(), reserve, T0)
  const same = nodeStatus(facts(), reserve, T0 + 60_000, first)
  t.equal(cond(same, 'DiskPressure').lastTransitionTime, '2024-05-01T10:00:00Z')
  t.equal(cond(same, 'DiskPressure').lastHeartbeatTime, '2024-05-01T10:01:00Z')
  t.equal(statusFingerprint(first), statusFingerprint(same), 'only heartbeat times differ: nothing to publish')
  const full = nodeStatus(facts({ disk: { totalBytes: 32 * GiB, freeBytes: 1 * GiB } }), reserve, T0 + 120_000, same)
  t.equal(cond(full, 'DiskPressure').lastTransitionTime, '2024-05-01T10:02:00Z')
  t.not(statusFingerprint(full), statusFingerprint(same))
})

t.test("the mesh's NetworkUnavailable condition joins the status and keeps its transition time while it holds", async (t) => {
  const up = { type: 'NetworkUnavailable', status: 'False' as const, reason: 'WireGuardUp', message: 'WireGuard bramble0 is up with 2 peers' }
  const s1 = nodeStatus(facts(), reserve, T0, undefined, [up])
  t.match(cond(s1, 'NetworkUnavailable'), { ...up, lastTransitionTime: '2024-05-01T10:00:00Z' })
  const s2 = nodeStatus(facts(), reserve, T0 + 60_000, s1, [up])
  t.equal(cond(s2, 'NetworkUnavailable').lastTransitionTime, '2024-05-01T10:00:00Z')
  t.equal(statusFingerprint(s1), statusFingerprint(s2), 'nothing new to publish')
  const s3 = nodeStatus(facts(), reserve, T0 + 120_000, s2, [{ ...up, status: 'True', reason: 'WireGuardFailed' }])
  t.equal(cond(s3, 'NetworkUnavailable').lastTransitionTime, '2024-05-01T10:02:00Z')
  t.not(statusFingerprint(s3), statusFingerprint(s2))
  t.notOk(nodeStatus(facts(), reserve, T0).conditions.some((c) => c.type === 'NetworkUnavailable'), 'absent without the mesh')
})

t.test("DiskPressure names each filesystem short of room, the data dir's or the engine's, with its free bytes", async (t) => {
  const dataDisk = { totalBytes: 64 * 1024 ** 2, freeBytes: 1_000_000, path: '/data/bramble' }
  const engineDisk = { totalBytes: 32 * GiB, freeBytes: 1 * GiB, path: '/var/lib/docker' }
  const both = nodeStatus(facts({ disk: dataDisk, imageDisk: engineDisk }), reserve, T0)
  const message = cond(both, 'DiskPressure').message
  t.equal(cond(both, 'DiskPressure').status, 'True')
  t.match(message, /\/data\/bramble has 1000000 bytes free of 67108864 \(1\.5%\)/)
  t.match(message, /\/var\/lib\/docker has 1073741824 bytes free/)
  const engineOnly = nodeStatus(facts({ disk: { ...dataDisk, freeBytes: 60 * 1024 ** 2 }, imageDisk: engineDisk }), reserve, T0)
  t.equal(cond(engineOnly, 'DiskPressure').status, 'True', 'a full engine filesystem is pressure too')
  t.notMatch(cond(engineOnly, 'DiskPressure').message, /\/data\/bramble/)
  const roomy = nodeStatus(facts({ disk: { ...dataDisk, freeBytes: 60 * 1024 ** 2 }, imageDisk: { ...engineDisk, freeBytes: 20 * GiB } }), reserve, T0 + 1000, both)
  t.equal(cond(roomy, 'DiskPressure').status, 'False', 'back to False when space returns')
  t.equal(cond(roomy, 'DiskPressure').reason, 'KubeletHasNoDiskPressure')
  t.equal(cond(roomy, 'DiskPressure').lastTransitionTime, '2024-05-01T10:00:01Z')
})

t.test("image garbage collection that cannot make room is DiskPressure, with its reason, whatever the 10% rule says", async (t) => {
  const problem = 'the image filesystem /var/lib/docker stays 91.0% full (high threshold 85%): ...'
  const s = nodeStatus(facts({ imageGcProblem: problem }), reserve, T0)
  t.same(cond(s, 'DiskPressure'), { type: 'DiskPressure', status: 'True', reason: 'KubeletHasDiskPressure', message: problem, lastHeartbeatTime: '2024-05-01T10:00:00Z', lastTransitionTime: '2024-05-01T10:00:00Z' })
  const both = nodeStatus(facts({ imageGcProblem: problem, disk: { totalBytes: 100, freeBytes: 5, path: '/var/lib/bramble' } }), reserve, T0)
  t.match(cond(both, 'DiskPressure').message, /^\/var\/lib\/bramble has 5 bytes free of 100 .*; the image filesystem/)
})
