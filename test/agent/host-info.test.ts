import t from 'tap'
import { readFileSync } from 'node:fs'
import os from 'node:os'
import { cpuModel, kubernetesArch, osImage, parseThrottled, SystemHostInfo } from '../../src/agent/host-info.js'

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

t.test('os-release gives the image name the kubelet reports; quoting and missing fields are handled', async (t) => {
  t.equal(osImage('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\n'), 'Debian GNU/Linux 12 (bookworm)')
  t.equal(osImage("NAME='Raspbian GNU/Linux'\nVERSION='11 (bullseye)'\n"), 'Raspbian GNU/Linux 11 (bullseye)', 'no PRETTY_NAME: NAME and VERSION')
  t.equal(osImage('NAME=Alpine\nVERSION_ID=3.20.1'), 'Alpine 3.20.1', 'unquoted, VERSION_ID when VERSION is missing')
  t.equal(osImage('# nothing useful\nID=x'), undefined)
  t.equal(osImage(''), undefined, 'no os-release at all')
})

t.test('/proc/cpuinfo names the processor on x86, a 64-bit Pi, a 32-bit Pi and an unknown ARM core', async (t) => {
  t.equal(cpuModel('processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n'), 'AMD EPYC 7B13')
  const pi4 = 'processor\t: 0\nBogoMIPS\t: 108.00\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\nHardware\t: BCM2835\nModel\t\t: Raspberry Pi 4 Model B Rev 1.4\n'
  t.equal(cpuModel(pi4), 'ARM Cortex-A72', 'arm64 kernels print no model name: the core by part number')
  const pi3armhf = 'processor\t: 0\nmodel name\t: ARMv7 Processor rev 4 (v7l)\nCPU implementer\t: 0x41\nCPU part\t: 0xd03\n'
  t.equal(cpuModel(pi3armhf), 'ARM Cortex-A53', "the core's name over the kernel's generic model name")
  t.equal(cpuModel('CPU implementer\t: 0x51\nCPU part\t: 0x801\nmodel name\t: Kryo\n'), 'Kryo', 'not ARM-designed: the model name')
  t.equal(cpuModel('CPU implementer\t: 0x41\nCPU part\t: 0xfff\n'), undefined, 'an unknown part and no model name: nothing')
  t.equal(cpuModel(''), undefined)
})

t.test('this host reports its facts and usage', async (t) => {
  const host = new SystemHostInfo({ thermalZonePath: '/nonexistent/temp' })
  const f = await host.facts()
  t.equal(f.architecture, kubernetesArch(process.arch))
  t.equal(f.operatingSystem, 'linux')
  t.ok(f.cpu.cores >= 1)
  t.ok(f.memory.totalBytes > 0 && f.memory.availableBytes <= f.memory.totalBytes)
  t.ok(f.disk.totalBytes > 0 && f.disk.freeBytes <= f.disk.totalBytes)
  t.equal(f.kernelVersion, os.release())
  t.equal(f.osImage, osImage(readFileSync('/etc/os-release', 'utf8')), "this machine's os-release")
  t.equal(f.cpu.model, cpuModel(readFileSync('/proc/cpuinfo', 'utf8')) ?? os.cpus()[0]?.model.trim())
  t.equal(f.hostname, os.hostname())
  t.equal(f.temperatureC, undefined, 'no thermal zone: no temperature')
  const u = await host.usage()
  t.ok(u.cpu >= 0 && u.cpu <= 1)
  t.ok(u.memoryUsedBytes > 0)
})
