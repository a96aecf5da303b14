// Pure: a pod's securityContext, hostPath volumes and device limits as the engine gets them
// (pod-security.ts, host-paths.ts, device-allocator.ts through appContainerSpec and podVolumes).

import t from 'tap'
import { LABELS } from '../../src/agent/container-runtime.js'
import { containerGrant, DeviceAllocator, grantLabel, parseGrantLabel, pickDevices, podDeviceWants } from '../../src/agent/device-allocator.js'
import { checkHostPath } from '../../src/agent/host-paths.js'
import { appContainerSpec } from '../../src/agent/pod-container-spec.js'
import { PodConfigProblem, type DesiredPod, type PodHostView } from '../../src/agent/desired-pod.js'
import { podVolumes } from '../../src/agent/pod-volumes.js'
import { capabilityName, securityFields } from '../../src/agent/pod-security.js'
import type { ContainerInfo, ContainerSpec } from '../../src/agent/container-runtime.js'
import type { PlanSettings } from '../../src/agent/pod-planner.js'

const settings: PlanSettings = {
  clusterId: 'c1',
  podsDir: '/var/lib/bramble/pods',
  secretsDir: '/run/bramble/c1/pods',
  pauseImage: 'bramble/pause:1',
  log: { maxSize: '10m', maxFile: 3 },
  defaultGraceSeconds: 30,
  backoff: { initialMs: 10_000, maxMs: 300_000, resetAfterMs: 600_000 },
}
const desired = (spec: any, host?: PodHostView): DesiredPod => ({ pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'uid-p' }, spec }, configMaps: {}, secrets: {}, ...(host ? { host } : {}) })
const specOf = (d: DesiredPod, name = 'app'): ContainerSpec | PodConfigProblem => {
  const all = [...(d.pod.spec.initContainers ?? []), ...d.pod.spec.containers]
  return appContainerSpec(d, all.find((c: any) => c.name === name), 'app', settings, 'sandbox', 0)
}
const app = (extra: any = {}) => ({ name: 'app', image: 'app:1', ...extra })

t.test('securityContext: the container wins over the pod for user and group, as Kubernetes merges them', async (t) => {
  t.same(securityFields({ securityContext: { runAsUser: 1000, runAsGroup: 100, supplementalGroups: [20, 44] } }, { securityContext: { runAsUser: 1001 } }), { user: '1001:100', groupAdd: ['20', '44'] })
  t.same(securityFields({ securityContext: { runAsUser: 1000 } }, {}), { user: '1000' })
  t.same(securityFields({}, { securityContext: { runAsGroup: 5 } }), { user: ':5' }, "a group alone keeps the image's user")
  t.same(securityFields({ securityContext: { runAsUser: 0 } }, { securityContext: { runAsUser: 0 } }), { user: '0' }, 'uid 0 is a value, not an absence')
  t.same(securityFields({}, {}), {}, 'nothing asked, nothing set: the engine defaults hold')
})

t.test('securityContext: privileged, capabilities (with or without CAP_, ALL), read-only root and no-new-privileges', async (t) => {
  const d = desired({
    containers: [
      app({
        securityContext: {
          privileged: true,
          capabilities: { add: ['CAP_NET_ADMIN', 'sys_time', 'NET_ADMIN'], drop: ['ALL'] },
          readOnlyRootFilesystem: true,
          allowPrivilegeEscalation: false,
        },
      }),
    ],
  })
  const spec = specOf(d) as ContainerSpec
  t.equal(spec.privileged, true)
  t.same(spec.capAdd, ['NET_ADMIN', 'SYS_TIME'], 'one spelling, each once')
  t.same(spec.capDrop, ['ALL'])
  t.equal(spec.readonlyRootfs, true)
  t.equal(spec.noNewPrivileges, true)
  t.equal(capabilityName(' cap_chown '), 'CHOWN')
  const plain = specOf(desired({ containers: [app()] })) as ContainerSpec
  t.notOk(plain.privileged || plain.capAdd || plain.user || plain.readonlyRootfs || plain.noNewPrivileges, 'a plain container asks for nothing')
  t.not(plain.labels[LABELS.specHash], spec.labels[LABELS.specHash], 'a changed securityContext changes the spec hash: the container is recreated')
})

t.test('hostPath types are checked as Kubernetes checks them', async (t) => {
  const kinds = { '/dev/ttyUSB0': 'char', '/dev/sda': 'block', '/srv/data': 'directory', '/etc/app.conf': 'file', '/run/docker.sock': 'socket', '/missing': 'missing', '/nodir/x': 'missing', '/nodir': 'missing', '/': 'directory' } as const
  const check = (path: string, type?: string) => checkHostPath({ path, ...(type !== undefined ? { type } : {}) }, kinds)
  t.same(check('/dev/ttyUSB0', 'CharDevice'), { ok: true })
  t.same(check('/srv/data', 'CharDevice'), { ok: false, problem: 'hostPath type check failed: /srv/data is not a character device' })
  t.same(check('/dev/sda', 'BlockDevice'), { ok: true })
  t.same(check('/dev/ttyUSB0', 'BlockDevice'), { ok: false, problem: 'hostPath type check failed: /dev/ttyUSB0 is not a block device' })
  t.same(check('/srv/data', 'Directory'), { ok: true })
  t.same(check('/etc/app.conf', 'Directory'), { ok: false, problem: 'hostPath type check failed: /etc/app.conf is not a directory' })
  t.same(check('/etc/app.conf', 'File'), { ok: true })
  t.same(check('/dev/ttyUSB0', 'File'), { ok: false, problem: 'hostPath type check failed: /dev/ttyUSB0 is not a file' })
  t.same(check('/run/docker.sock', 'Socket'), { ok: true })
  t.same(check('/etc/app.conf', 'Socket'), { ok: false, problem: 'hostPath type check failed: /etc/app.conf is not a socket file' })
  t.same(check('/missing', 'Directory'), { ok: false, problem: 'hostPath type check failed: /missing does not exist (type Directory wants a directory)' })
  t.same(check('/missing', 'CharDevice'), { ok: false, problem: 'hostPath type check failed: /missing does not exist (type CharDevice wants a character device)' })
  t.same(check('/missing', 'DirectoryOrCreate'), { ok: true, create: 'directory' })
  t.same(check('/missing', 'FileOrCreate'), { ok: true, create: 'file' }, "the parent (/) exists")
  t.same(check('/nodir/x', 'FileOrCreate'), { ok: false, problem: 'hostPath type check failed: /nodir/x cannot be created: its directory /nodir does not exist' })
  t.same(check('/srv/data', 'DirectoryOrCreate'), { ok: true }, 'there already: nothing to create')
  t.same(check('/missing', ''), { ok: true }, '"" checks nothing')
  t.same(check('/missing'), { ok: true })
})

t.test('a CharDevice hostPath is passed in as a device; a failed check holds the pod with the reason', async (t) => {
  const spec = {
    volumes: [{ name: 'zigbee', hostPath: { path: '/dev/ttyUSB0', type: 'CharDevice' } }, { name: 'data', hostPath: { path: '/srv/ha', type: 'DirectoryOrCreate' } }],
    containers: [app({ volumeMounts: [{ name: 'zigbee', mountPath: '/dev/zigbee' }, { name: 'data', mountPath: '/config' }] })],
  }
  const ok = desired(spec, { paths: { '/dev/ttyUSB0': 'char', '/srv/ha': 'missing', '/srv': 'directory' } })
  const c = specOf(ok) as ContainerSpec
  t.same(c.devices, [{ hostPath: '/dev/ttyUSB0', containerPath: '/dev/zigbee', permissions: 'rwm' }])
  t.same(c.mounts, [{ type: 'bind', source: '/srv/ha', target: '/config', readOnly: false }], 'the device is not bind-mounted')
  const volumes = podVolumes(ok)
  t.notOk(volumes instanceof PodConfigProblem)
  t.same((volumes as any).hostPaths, [{ path: '/srv/ha', kind: 'directory' }], 'DirectoryOrCreate: made before the pod starts')

  const wrong = desired(spec, { paths: { '/dev/ttyUSB0': 'directory', '/srv/ha': 'directory' } })
  const problem = podVolumes(wrong)
  t.ok(problem instanceof PodConfigProblem)
  t.equal((problem as PodConfigProblem).message, 'volume "zigbee": hostPath type check failed: /dev/ttyUSB0 is not a character device')

  const untyped = desired({ volumes: [{ name: 'tty', hostPath: { path: '/dev/ttyACM0' } }], containers: [app({ volumeMounts: [{ name: 'tty', mountPath: '/dev/ttyACM0', readOnly: true }] })] }, { paths: { '/dev/ttyACM0': 'char' } })
  t.same((specOf(untyped) as ContainerSpec).devices, [{ hostPath: '/dev/ttyACM0', containerPath: '/dev/ttyACM0', permissions: 'rm' }], 'an untyped hostPath found to be a device is one too; read-only mounts cannot write it')
})

t.test('device picks are stable: kept while present, else the first free in name order', async (t) => {
  const serial = ['/dev/ttyACM0', '/dev/ttyUSB0', '/dev/ttyUSB1']
  t.same(pickDevices(1, serial, new Set()), ['/dev/ttyACM0'])
  t.same(pickDevices(2, serial, new Set(['/dev/ttyACM0'])), ['/dev/ttyUSB0', '/dev/ttyUSB1'])
  t.same(pickDevices(1, serial, new Set(), ['/dev/ttyUSB1']), ['/dev/ttyUSB1'], 'what the pod held stays its own')
  t.same(pickDevices(1, serial, new Set(['/dev/ttyUSB1']), ['/dev/ttyUSB1']), ['/dev/ttyACM0'], 'unless another holds it')
  t.equal(pickDevices(4, serial, new Set()), undefined)

  const alloc = new DeviceAllocator()
  const devices = { serial }
  t.same(alloc.grant('a', { serial: 1 }, devices), { grant: { serial: ['/dev/ttyACM0'] } })
  t.same(alloc.grant('b', { serial: 1 }, devices), { grant: { serial: ['/dev/ttyUSB0'] } })
  t.same(alloc.grant('a', { serial: 1 }, devices), { grant: { serial: ['/dev/ttyACM0'] } }, 'asked again, the same')
  t.same(alloc.grant('c', { serial: 2 }, devices), { problem: '2 devices.bramble.dev/serial wanted, 1 free of 3 on this node' })
  alloc.release('a')
  t.same(alloc.grant('b', { serial: 1 }, devices), { grant: { serial: ['/dev/ttyUSB0'] } }, 'a freed device does not move another pod')
  t.same(alloc.grant('c', { serial: 2 }, devices), { grant: { serial: ['/dev/ttyACM0', '/dev/ttyUSB1'] } })
  t.same(alloc.grant('d', { video: 1 }, devices), { problem: '1 devices.bramble.dev/video wanted, 0 free of 0 on this node' })
})

t.test("an agent restarted takes over what its pods' containers hold", async (t) => {
  const info = (uid: string, label: string): ContainerInfo => ({ id: uid, name: uid, image: 'x', imageId: 'x', labels: { [LABELS.podUid]: uid, [LABELS.devices]: label }, state: { status: 'running', exitCode: 0, oomKilled: false } })
  const alloc = new DeviceAllocator()
  alloc.adopt([info('b', grantLabel({ serial: ['/dev/ttyACM0'] }))])
  t.same(alloc.grant('a', { serial: 1 }, { serial: ['/dev/ttyACM0', '/dev/ttyUSB0'] }), { grant: { serial: ['/dev/ttyUSB0'] } })
  t.same(alloc.grant('b', { serial: 1 }, { serial: ['/dev/ttyACM0', '/dev/ttyUSB0'] }), { grant: { serial: ['/dev/ttyACM0'] } })
  t.same(parseGrantLabel('serial=/dev/a,/dev/b;video=/dev/video0'), { serial: ['/dev/a', '/dev/b'], video: ['/dev/video0'] })
})

t.test("a pod's devices are shared out among its containers; init containers reuse them", async (t) => {
  const limit = (n: number) => ({ resources: { limits: { 'devices.bramble.dev/serial': n } } })
  const spec = { initContainers: [{ name: 'flash', image: 'x', ...limit(2) }], containers: [{ name: 'a', image: 'x', ...limit(1) }, { name: 'b', image: 'x', ...limit(2) }, { name: 'c', image: 'x' }] }
  t.same(podDeviceWants(spec), { serial: 3 })
  const grant = { serial: ['/d/0', '/d/1', '/d/2'] }
  t.same(containerGrant(spec, 'a', grant), { serial: ['/d/0'] })
  t.same(containerGrant(spec, 'b', grant), { serial: ['/d/1', '/d/2'] })
  t.same(containerGrant(spec, 'c', grant), {})
  t.same(containerGrant(spec, 'flash', grant), { serial: ['/d/0', '/d/1'] })

  const d = desired({ containers: [app(limit(1))] }, { paths: {}, devices: { grant: { serial: ['/tmp/hwdev/ttyUSB1'] } } })
  const c = specOf(d) as ContainerSpec
  t.same(c.devices, [{ hostPath: '/tmp/hwdev/ttyUSB1', containerPath: '/dev/ttyUSB1', permissions: 'rwm' }], 'at /dev/<name> inside, whatever directory the node scans')
  t.equal(c.labels[LABELS.devices], 'serial=/tmp/hwdev/ttyUSB1')
  const short = specOf(desired({ containers: [app(limit(1))] }, { paths: {}, devices: { problem: '1 devices.bramble.dev/serial wanted, 0 free of 0 on this node' } }))
  t.ok(short instanceof PodConfigProblem)
  t.equal((short as PodConfigProblem).message, '1 devices.bramble.dev/serial wanted, 0 free of 0 on this node')
})
