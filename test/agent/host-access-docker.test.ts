// Hardware and host access on a real dockerd, through the pod loop: securityContext as the process
// sees it (/proc/self/status, id), device hostPaths and devices.bramble.dev limits with character
// devices made by mknod under a temp dir, hostPath type checks, a hostNetwork pod on the node's
// own interfaces, and hostPID/hostIPC pods in the node's namespaces.

import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { LABELS, type ContainerInfo } from '../../src/agent/container-runtime.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import type { DesiredPod } from '../../src/agent/desired-pod.js'
import { DEFAULT_PAUSE_IMAGE } from '../../src/agent/pod-pause-image.js'
import type { PodEventRecord } from '../../src/agent/pod-events.js'
import type { PlanSettings } from '../../src/agent/pod-planner.js'
import { PodReconciler } from '../../src/agent/pod-reconciler.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers, testClusterId } from '../helpers/docker.js'

const docker = dockerClient()
const unavailable = (await dockerUnavailable(docker)) ?? (process.getuid?.() !== 0 ? 'mknod and device cgroups need root' : undefined)
if (unavailable) t.plan(0, unavailable)
else await run()

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** The node's interface names as /proc/net/dev lists them. */
function interfaces(procNetDev: string): string[] {
  return procNetDev
    .split('\n')
    .slice(2)
    .map((l) => l.split(':')[0]!.trim())
    .filter(Boolean)
    .sort()
}

async function run(): Promise<void> {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const clusterId = testClusterId()
  const root = mkdtempSync(join(os.tmpdir(), 'hw-access-'))
  const podsDir = join(root, 'pods')
  const secretsDir = mkdtempSync(join('/dev/shm', 'hw-secrets-'))
  const devDir = join(root, 'dev')
  mkdirSync(devDir)
  mkdirSync(podsDir)
  // The null device's numbers: harmless to open and write, whatever the name says.
  for (const name of ['ttyUSB0', 'ttyUSB1']) execFileSync('mknod', [join(devDir, name), 'c', '1', '3'])
  const hostIP = Object.values(os.networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address ?? '127.0.0.1'
  const settings: PlanSettings = {
    clusterId,
    podsDir,
    secretsDir,
    pauseImage: DEFAULT_PAUSE_IMAGE,
    log: { maxSize: '1m', maxFile: 2 },
    defaultGraceSeconds: 1,
    backoff: { initialMs: 300, maxMs: 1_000, resetAfterMs: 600_000 },
  }
  let desired: DesiredPod[] = []
  const statuses = new Map<string, any>()
  const events: PodEventRecord[] = []
  const makeReconciler = () => new PodReconciler({
    runtime,
    clock: systemClock,
    logger: silentLogger(),
    settings,
    hostIP,
    desired: () => desired,
    onPodStatus: (key, _uid, status) => statuses.set(key, status),
    onEvent: (e) => events.push(e),
    resyncMs: 1_000,
    deviceDir: devDir,
  })
  let reconciler = makeReconciler()
  t.teardown(async () => {
    await reconciler.stop()
    await removeClusterContainers(docker, clusterId)
    rmSync(root, { recursive: true, force: true })
    rmSync(secretsDir, { recursive: true, force: true })
  })
  await reconciler.start()

  const SLEEP = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done']
  const pod = (name: string, spec: Record<string, unknown>): DesiredPod => ({
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default', uid: `uid-${name}-${clusterId}` }, spec: { terminationGracePeriodSeconds: 1, ...spec } },
    configMaps: {},
    secrets: {},
  })
  const apply = async (...pods: DesiredPod[]) => {
    desired = pods
    await reconciler.resync()
  }
  const app = async (d: DesiredPod, name = 'app'): Promise<ContainerInfo> =>
    until(`${d.pod.metadata.name}/${name} running`, async () =>
      (await runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: String(d.pod.metadata.uid) })).find((c) => c.labels[LABELS.containerName] === name && c.state.status === 'running'),
    )
  const sh = async (c: ContainerInfo, script: string) => runtime.exec(c.id, ['sh', '-c', script])
  const status = (proc: string, field: string) => new RegExp(`^${field}:\\s*(\\S+)`, 'm').exec(proc)?.[1]

  const secure = pod('secure', {
    securityContext: { runAsUser: 1000, runAsGroup: 2000, supplementalGroups: [44] },
    containers: [
      { name: 'app', image, command: SLEEP, securityContext: { runAsUser: 1001, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] }, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false } },
      // Not as root: where the engine itself lacks a capability (a nested test machine) runc cannot give a privileged root process all of them.
      { name: 'admin', image, command: SLEEP, securityContext: { privileged: true } },
      { name: 'plain', image, command: SLEEP, securityContext: { runAsUser: 0 } },
      { name: 'inherits', image, command: SLEEP },
    ],
  })
  const zigbee = pod('zigbee', {
    volumes: [
      { name: 'stick', hostPath: { path: join(devDir, 'ttyUSB0'), type: 'CharDevice' } },
      { name: 'config', hostPath: { path: join(root, 'ha', 'config'), type: 'DirectoryOrCreate' } },
      { name: 'token', hostPath: { path: join(root, 'token'), type: 'FileOrCreate' } },
    ],
    containers: [{ name: 'app', image, command: SLEEP, volumeMounts: [{ name: 'stick', mountPath: '/dev/ttyUSB0' }, { name: 'config', mountPath: '/config' }, { name: 'token', mountPath: '/token' }] }],
  })
  const wrongType = pod('wrong-type', {
    volumes: [{ name: 'stick', hostPath: { path: join(root, 'ha'), type: 'CharDevice' } }],
    containers: [{ name: 'app', image, command: SLEEP, volumeMounts: [{ name: 'stick', mountPath: '/dev/ttyUSB0' }] }],
  })
  const serial = (name: string) => pod(name, { containers: [{ name: 'app', image, command: SLEEP, resources: { limits: { 'devices.bramble.dev/serial': 1 } } }] })
  const [s1, s2, s3] = [serial('serial-1'), serial('serial-2'), serial('serial-3')]
  const hostNet = pod('host-net', { hostNetwork: true, containers: [{ name: 'app', image, command: SLEEP }] })
  const ownNet = pod('own-net', { containers: [{ name: 'app', image, command: SLEEP }] })
  const hostPid = pod('host-pid', { hostPID: true, hostIPC: true, containers: [{ name: 'app', image, command: SLEEP }] })

  await t.test('securityContext: user and groups, capabilities, read-only root, no-new-privileges, privileged', async (t) => {
    await apply(secure)
    const c = await app(secure)
    t.equal((await sh(c, 'id -u; id -g; id -G')).output, '1001\n2000\n2000 44\n', "the container's runAsUser wins, the pod's group and supplementalGroups hold")
    const proc = (await sh(c, 'cat /proc/self/status')).output
    t.equal(status(proc, 'CapBnd'), '0000000000001000', 'all dropped but NET_ADMIN (bit 12)')
    t.equal(status(proc, 'NoNewPrivs'), '1', 'allowPrivilegeEscalation: false')
    const write = await sh(c, 'touch /rootfs-write')
    t.not(write.exitCode, 0, 'the root filesystem is read-only')
    t.match(write.output, /Read-only file system/)
    const admin = await app(secure, 'admin')
    const plain = await app(secure, 'plain')
    const adminProc = (await sh(admin, 'cat /proc/self/status')).output
    const plainProc = (await sh(plain, 'cat /proc/self/status')).output
    t.ok(BigInt(`0x${status(adminProc, 'CapBnd')}`) > BigInt(`0x${status(plainProc, 'CapBnd')}`), 'privileged may have more capabilities than the default set')
    t.equal((await docker.getContainer(admin.id).inspect()).HostConfig.Privileged, true)
    t.equal((await sh(await app(secure, 'inherits'), 'id -u; id -g')).output, '1000\n2000\n', "without its own runAsUser, the pod's")
    t.equal((await sh(admin, 'test -e /dev/kmsg && echo host-devices')).output, 'host-devices\n', 'privileged sees the host devices')
    t.not((await sh(plain, 'test -e /dev/kmsg')).exitCode, 0, 'an ordinary container does not')
    t.equal((await sh(plain, 'touch /ok && echo ok')).output, 'ok\n', 'and may write its root filesystem')
  })

  await t.test('a CharDevice hostPath is the device inside; DirectoryOrCreate and FileOrCreate are made on the node', async (t) => {
    await apply(zigbee)
    const c = await app(zigbee)
    t.equal((await sh(c, 'test -c /dev/ttyUSB0 && echo char')).output, 'char\n', 'the pod sees a character device')
    t.equal((await sh(c, 'echo hello > /dev/ttyUSB0 && echo written')).output, 'written\n', 'and may write it: the device cgroup lets it')
    t.ok(statSync(join(root, 'ha', 'config')).isDirectory(), 'the directory was made, parents too')
    t.equal(statSync(join(root, 'ha', 'config')).mode & 0o777, 0o755)
    t.ok(statSync(join(root, 'token')).isFile(), 'the file was made')
    await sh(c, 'echo saved > /config/state')
    t.equal(readFileSync(join(root, 'ha', 'config', 'state'), 'utf8'), 'saved\n', "the pod's writes land on the node")
  })

  await t.test('a hostPath that is not what its type says holds the pod with the reason, and no container is made', async (t) => {
    await apply(zigbee, wrongType)
    const s = await until('wrong-type status', () => statuses.get('default/wrong-type'))
    t.equal(s.phase, 'Pending')
    t.same(s.containerStatuses[0].state.waiting, { reason: 'CreateContainerConfigError', message: `volume "stick": hostPath type check failed: ${join(root, 'ha')} is not a character device` })
    t.same(await runtime.list({ [LABELS.cluster]: clusterId, [LABELS.podUid]: String(wrongType.pod.metadata.uid) }), [], 'not even a sandbox')
    await reconciler.resync()
    await reconciler.idle()
    const said = events.filter((e) => e.involvedObject.name === 'wrong-type' && e.reason === 'FailedMount')
    t.same(said.map((e) => [e.type, e.message]), [['Warning', `MountVolume.SetUp failed for volume "stick": hostPath type check failed: ${join(root, 'ha')} is not a character device`]], 'a FailedMount Warning, said once')
  })

  await t.test('devices.bramble.dev/serial: each pod gets its own device, stably; one too many waits with the reason', async (t) => {
    await apply(s1, s2)
    const c1 = await app(s1)
    const c2 = await app(s2)
    const seen1 = (await sh(c1, 'ls /dev | grep ttyUSB')).output.trim()
    const seen2 = (await sh(c2, 'ls /dev | grep ttyUSB')).output.trim()
    t.same([seen1, seen2].sort(), ['ttyUSB0', 'ttyUSB1'], 'one device each, at /dev/<name>, never the same: the first free in name order')
    // The two pods are set up concurrently: either may be first to take ttyUSB0.
    const [, other] = seen1 === 'ttyUSB0' ? [s1, s2] : [s2, s1]
    const [holderContainer, otherContainer] = seen1 === 'ttyUSB0' ? [c1, c2] : [c2, c1]
    t.equal((await sh(holderContainer, 'test -c /dev/ttyUSB0 && echo x > /dev/ttyUSB0 && echo usable')).output, 'usable\n')
    await apply(s1, s2, s3)
    const waiting = await until('serial-3 waiting', () => statuses.get('default/serial-3')?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' && statuses.get('default/serial-3'))
    t.equal(waiting.containerStatuses[0].state.waiting.message, '1 devices.bramble.dev/serial wanted, 0 free of 2 on this node')
    await apply(other, s3)
    const c3 = await app(s3)
    t.equal((await sh(c3, 'ls /dev | grep ttyUSB')).output.trim(), 'ttyUSB0', 'the device the deleted pod let go')
    const again = await app(other)
    t.equal(again.id, otherContainer.id, 'the other pod kept its container and its device')

    // A restarted agent adopts what its pods' containers hold, whatever order it looks at them in.
    await reconciler.stop()
    desired = [other, s3]
    reconciler = makeReconciler()
    await reconciler.start()
    await reconciler.idle()
    await new Promise((r) => setTimeout(r, 1_500)) // a resync pass too
    await reconciler.idle()
    t.equal((await app(other)).id, otherContainer.id, 'after an agent restart the other pod runs on, untouched')
    t.equal((await app(s3)).id, c3.id, 'and so does serial-3')
  })

  await t.test("a hostNetwork pod is on the node's network: its interfaces, and the node's IP as its podIP", async (t) => {
    await apply(hostNet, ownNet)
    const c = await app(hostNet)
    const inside = interfaces((await sh(c, 'cat /proc/net/dev')).output)
    const host = interfaces(readFileSync('/proc/net/dev', 'utf8'))
    // Other tests add and remove veths meanwhile: compare the rest.
    const stable = (names: string[]) => names.filter((n) => !/^(veth|br-)/.test(n))
    t.same(stable(inside), stable(host), "the pod lists the node's interfaces")
    t.ok(inside.includes('docker0'))
    const own = interfaces((await sh(await app(ownNet), 'cat /proc/net/dev')).output)
    t.same(own, ['eth0', 'lo'], 'a pod of its own network sees only its own')
    const s = await until('host-net Running', () => statuses.get('default/host-net')?.phase === 'Running' && statuses.get('default/host-net'))
    t.equal(s.podIP, hostIP, "its podIP is the node's")
    t.not(statuses.get('default/own-net')?.podIP, hostIP)
  })

  await t.test("hostPID and hostIPC: the node's process ids and IPC namespace; without them, the pod's own", async (t) => {
    await apply(hostPid, ownNet)
    const c = await app(hostPid)
    const ns = async (c: ContainerInfo, which: string) => (await sh(c, `readlink /proc/self/ns/${which}`)).output.trim()
    for (const which of ['pid', 'ipc']) {
      t.equal(await ns(c, which), readlinkSync(`/proc/self/ns/${which}`), `hostPID/hostIPC: the node's ${which} namespace`)
      t.not(await ns(await app(ownNet), which), readlinkSync(`/proc/self/ns/${which}`), `a pod without them has its own ${which} namespace`)
    }
  })
}
