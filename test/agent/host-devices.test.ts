// The node's devices on a real filesystem (character devices made with mknod under a temp dir),
// what the node status advertises of them, and what hostPath kinds the agent sees.

import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { scanDevices } from '../../src/agent/host-devices.js'
import { hostPathKind, hostPathKinds } from '../../src/agent/host-paths.js'
import { nodeLabels, nodeStatus, statusFingerprint, type NodeFacts } from '../../src/agent/node-status.js'

const GiB = 1024 ** 3
const facts = (devices?: NodeFacts['devices']): NodeFacts => ({
  architecture: 'arm64',
  operatingSystem: 'linux',
  osImage: 'Debian GNU/Linux 12 (bookworm)',
  kernelVersion: '6.6.31-v8+',
  hostname: 'pi-one',
  addresses: ['10.0.0.21'],
  cpu: { cores: 4, model: 'ARM Cortex-A72' },
  memory: { totalBytes: 4 * GiB, availableBytes: 3 * GiB },
  disk: { totalBytes: 32 * GiB, freeBytes: 20 * GiB },
  containerRuntimeVersion: 'docker://20.10.24',
  kubeletVersion: 'bramble-0.1.0',
  ...(devices ? { devices } : {}),
})

const root = process.getuid?.() === 0
const dir = mkdtempSync(join(tmpdir(), 'hw-devices-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
/** A character device with the null device's numbers (1, 3): harmless wherever it is opened. */
const mknod = (path: string) => execFileSync('mknod', [path, 'c', '1', '3'])

t.test('scans the device directory for serial, I2C, video and GPIO character devices, in a stable order', { skip: !root && 'mknod needs root' }, async (t) => {
  const dev = join(dir, 'dev')
  mkdirSync(dev)
  for (const name of ['ttyUSB10', 'ttyUSB2', 'ttyACM0', 'i2c-1', 'video0', 'gpiochip0', 'tty0', 'sda']) mknod(join(dev, name))
  writeFileSync(join(dev, 'ttyUSB3'), 'not a device')
  mkdirSync(join(dev, 'video1'))
  t.same(await scanDevices(dev), {
    gpio: [join(dev, 'gpiochip0')],
    i2c: [join(dev, 'i2c-1')],
    serial: [join(dev, 'ttyACM0'), join(dev, 'ttyUSB2'), join(dev, 'ttyUSB10')],
    video: [join(dev, 'video0')],
  })
  t.same(await scanDevices(join(dir, 'nowhere')), {}, 'a missing directory has no devices')
})

t.test('the node advertises each class as an extended resource and a label; none, nothing extra', async (t) => {
  const s = nodeStatus(facts({ serial: ['/dev/ttyUSB0', '/dev/ttyUSB1'], video: ['/dev/video0'] }), { cpuMillis: 0, memoryBytes: 0 }, 0)
  t.equal(s.capacity['devices.bramble.dev/serial'], '2')
  t.equal(s.allocatable['devices.bramble.dev/serial'], '2')
  t.equal(s.allocatable['devices.bramble.dev/video'], '1')
  t.same(nodeLabels(facts({ serial: ['/dev/ttyUSB0'], video: [] })), { 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': 'pi-one', 'devices.bramble.dev/serial': 'true' })
  const none = nodeStatus(facts(), { cpuMillis: 0, memoryBytes: 0 }, 0)
  t.same(Object.keys(none.capacity).sort(), ['cpu', 'ephemeral-storage', 'memory', 'pods'])
  t.not(statusFingerprint(none), statusFingerprint(nodeStatus(facts({ serial: ['/dev/ttyUSB0'] }), { cpuMillis: 0, memoryBytes: 0 }, 0)), 'a stick plugged in changes the status: it is published')
})

t.test('hostPath kinds as the agent reads them before planning', { skip: !root && 'mknod needs root' }, async (t) => {
  const files = join(dir, 'kinds')
  mkdirSync(files)
  mknod(join(files, 'tty'))
  writeFileSync(join(files, 'file'), '')
  symlinkSync(join(files, 'tty'), join(files, 'link'))
  const socket = join(files, 'sock')
  const server = createServer().listen(socket)
  await new Promise((r) => server.once('listening', r))
  t.teardown(() => server.close())
  t.equal(await hostPathKind(join(files, 'tty')), 'char')
  t.equal(await hostPathKind(join(files, 'link')), 'char', 'a symlink is followed, as the kubelet does')
  t.equal(await hostPathKind(files), 'directory')
  t.equal(await hostPathKind(join(files, 'file')), 'file')
  t.equal(await hostPathKind(socket), 'socket')
  t.equal(await hostPathKind(join(files, 'none')), 'missing')
  t.equal(await hostPathKind(join(files, 'file', 'below')), 'missing')
  t.same(await hostPathKinds({ volumes: [{ name: 'a', hostPath: { path: join(files, 'tty') } }, { name: 'b', hostPath: { path: join(files, 'new', 'x') } }, { name: 'c', emptyDir: {} }] }), {
    [join(files, 'tty')]: 'char',
    [join(files, 'new', 'x')]: 'missing',
    [join(files, 'new')]: 'missing',
  })
})
