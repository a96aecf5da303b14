import t from 'tap'
import { kubernetesArch, parseThrottled, SystemHostInfo } from '../../src/agent/host-info.js'

t.test('architectures map to Kubernetes names', async (t) => {
  t.equal(kubernetesArch('x64'), 'amd64')
  t.equal(kubernetesArch('arm64'), 'arm64')
  t.equal(kubernetesArch('arm'), 'arm')
})

t.test('vcgencmd get_throttled is decoded; anything else is no answer', async (t) => {
  t.same(parseThrottled('throttled=0x0\n'), { throttledNow: false, underVoltageNow: false, raw: '0x0' })
  t.same(parseThrottled('throttled=0x50005\n'), { throttledNow: true, underVoltageNow: true, raw: '0x50005' })
  t.same(parseThrottled('throttled=0x8\n')?.throttledNow, true, 'a soft temperature limit counts as throttled')
  t.equal(parseThrottled('command not found'), undefined)
})

t.test('this host reports its facts and usage', async (t) => {
  const host = new SystemHostInfo({ thermalZonePath: '/nonexistent/temp' })
  const f = await host.facts()
  t.equal(f.architecture, kubernetesArch(process.arch))
  t.equal(f.operatingSystem, 'linux')
  t.ok(f.cpu.cores >= 1)
  t.ok(f.memory.totalBytes > 0 && f.memory.availableBytes <= f.memory.totalBytes)
  t.ok(f.disk.totalBytes > 0 && f.disk.freeBytes <= f.disk.totalBytes)
  t.ok(f.kernelVersion.length > 0 && f.osImage.length > 0)
  t.equal(f.temperatureC, undefined, 'no thermal zone: no temperature')
  const u = await host.usage()
  t.ok(u.cpu >= 0 && u.cpu <= 1)
  t.ok(u.memoryUsedBytes > 0)
})
