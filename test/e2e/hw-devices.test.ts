// Devices and the host network through the real binaries: a hub, an agent in a network namespace
// with a dockerd of its own whose device dir holds two serial devices (mknod, the null device's
// numbers), and a second agent on this machine's engine with none. The stick's node advertises
// devices.bramble.dev/serial (capacity and label, one more when plugged in), a CharDevice hostPath
// is the device inside its pod (a path that is not one holds the pod, saying why), a pod asking for
// a serial device is scheduled there and sees it, one asking for more than any node has stays
// Pending with Kubernetes' reason, and a hostNetwork pod lists the namespace's interfaces with the
// node's address as its podIP.

import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, removeClusterContainers } from '../helpers/docker.js'
import { runCli, until } from '../helpers/e2e.js'
import { faultHostUnavailable, startFaultHost, type FaultAgent, type FaultHost } from '../helpers/fault-host.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const STICK = 'hw-stick'
const PLAIN = 'hw-plain'
const SERIAL = 'devices.bramble.dev/serial'
const SLEEP = 'trap "exit 0" TERM; while :; do sleep 1; done'

const unavailable = await faultHostUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()

async function run(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'hw-e2e-'))
  const devDir = join(root, 'dev')
  const noDevices = join(root, 'no-dev')
  mkdirSync(devDir)
  mkdirSync(noDevices)
  const mknod = (name: string) => execFileSync('mknod', [join(devDir, name), 'c', '1', '3'])
  mknod('ttyUSB0')
  mknod('ttyACM0')
  let host: FaultHost | undefined
  let hub: HubProcess | undefined
  let stick: FaultAgent | undefined
  let plain: AgentProcess | undefined
  const docker = dockerClient()
  t.teardown(async () => {
    await stick?.stop('SIGKILL')
    await plain?.stop('SIGKILL')
    await hub?.stop()
    closeApiAgents()
    await host?.cleanup()
    rmSync(root, { recursive: true, force: true })
  })
  host = await startFaultHost('hwdev', 191)
  await ensureBusyboxImage(docker)
  hub = await startHubProcess({ dataDir: join(root, 'hub'), args: ['--listen', host.hubAddress, '--advertise', host.hubAddress] })
  const api = (method: string, path: string, body?: unknown) => apiRequest(hub!, method, path, body)
  const hubAddress = `${host.hubAddress}:${new URL(hub.server).port}`
  const token = async () => (await runCli(['token', 'create', '--data-dir', join(root, 'hub')])).stdout.trim()
  const node = async (name: string) => (await api('GET', `/api/v1/nodes/${name}`)).json
  const ready = async (name: string) => (await node(name))?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
  const getPod = async (name: string) => (await api('GET', `/api/v1/namespaces/default/pods/${name}`)).json
  const logs = async (name: string) => (await api('GET', `/api/v1/namespaces/default/pods/${name}/log`)).text

  stick = host.startAgent({ node: STICK, hub: hubAddress, dataDir: join(host.dir, 'agent'), token: await token(), extraArgs: ['--device-dir', devDir, '--heartbeat-interval', '1s'] })
  plain = startAgentProcess({
    node: PLAIN,
    hub: hubAddress,
    dataDir: join(root, 'plain-agent'),
    token: await token(),
    args: ['--device-dir', noDevices, '--wireguard-interface', 'none', '--cluster-dns', 'none', '--metrics-address', 'none', '--heartbeat-interval', '1s'],
  })
  // The plain agent's pods run on this machine's shared engine: they go by the cluster's label.
  const clusterId = readFileSync(join(root, 'hub', 'cluster-id'), 'utf8').trim()
  t.teardown(() => removeClusterContainers(docker, clusterId))

  await t.test('the stick node advertises its serial devices as an extended resource and a label; the other none', async (t) => {
    await until('both nodes Ready', async () => (await ready(STICK)) && (await ready(PLAIN)), 120_000)
    const withDevices = await until('devices advertised', async () => {
      const n = await node(STICK)
      return n?.status?.capacity?.[SERIAL] === '2' && n.metadata.labels?.[SERIAL] === 'true' && n
    })
    t.equal(withDevices.status.allocatable[SERIAL], '2')
    const other = await node(PLAIN)
    t.equal(other.status.capacity[SERIAL], undefined)
    t.equal(other.metadata.labels[SERIAL], undefined)
    const described = await runCli(['describe', 'node', STICK], { kubeconfig: hub!.kubeconfig })
    t.match(described.stdout, /Capacity:[\s\S]*devices\.bramble\.dev\/serial:\s+2/, '`bramble describe node` shows them')
  })

  await t.test('a CharDevice hostPath is the device inside the pod; a path that is not one holds the pod with the reason', async (t) => {
    const pod = (name: string, path: string) => ({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name },
      spec: {
        nodeName: STICK,
        terminationGracePeriodSeconds: 1,
        volumes: [{ name: 'stick', hostPath: { path, type: 'CharDevice' } }],
        containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', `test -c /dev/zigbee && echo char-device; ${SLEEP}`], volumeMounts: [{ name: 'stick', mountPath: '/dev/zigbee' }] }],
      },
    })
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod('by-path', join(devDir, 'ttyUSB0')))).status, 201)
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod('not-a-device', root))).status, 201)
    await until('by-path sees its device', async () => (await logs('by-path')).includes('char-device'))
    const waiting = await until('not-a-device held', async () => (await getPod('not-a-device'))?.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CreateContainerConfigError' && getPod('not-a-device'))
    t.equal(waiting.status.containerStatuses[0].state.waiting.message, `volume "stick": hostPath type check failed: ${root} is not a character device`)
    const listed = await runCli(['get', 'pods'], { kubeconfig: hub!.kubeconfig })
    t.match(listed.stdout, /not-a-device\s+0\/1\s+CreateContainerConfigError/, '`bramble get pods` says why')
    for (const name of ['by-path', 'not-a-device']) await api('DELETE', `/api/v1/namespaces/default/pods/${name}`)
  })

  await t.test('a pod asking for a serial device lands on the node that has it and sees its device', async (t) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'zigbee2mqtt' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', `ls /dev | grep -E 'ttyUSB|ttyACM'; test -c /dev/ttyACM0 && echo char-device; ${SLEEP}`], resources: { limits: { [SERIAL]: 1 } } }],
      },
    }
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod)).status, 201)
    const running = await until('zigbee2mqtt Running', async () => {
      const p = await getPod('zigbee2mqtt')
      return p?.status?.phase === 'Running' && p
    })
    t.equal(running.spec.nodeName, STICK)
    const out = await until('its log', async () => ((await logs('zigbee2mqtt')).includes('char-device') ? logs('zigbee2mqtt') : undefined))
    t.same(out.trim().split('\n'), ['ttyACM0', 'char-device'], 'one device, the first in name order, a character device at /dev/<name>')
  })

  await t.test('more devices than any node has left: Pending, with Kubernetes reason', async (t) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'two-sticks' },
      spec: { containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', SLEEP], resources: { limits: { [SERIAL]: 2 } } }] },
    }
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod)).status, 201)
    const pending = await until('two-sticks unschedulable', async () => {
      const p = await getPod('two-sticks')
      return p?.status?.conditions?.find((c: any) => c.type === 'PodScheduled' && c.reason === 'Unschedulable')
    })
    t.equal(pending.message, `0/2 nodes are available: 2 Insufficient ${SERIAL}.`)

    mknod('ttyUSB1')
    await until('a stick plugged in is advertised', async () => (await node(STICK))?.status?.capacity?.[SERIAL] === '3')
    const placed = await until('two-sticks Running once a third device is there', async () => {
      const p = await getPod('two-sticks')
      return p?.status?.phase === 'Running' && p
    })
    t.equal(placed.spec.nodeName, STICK)
  })

  await t.test("a hostNetwork pod is on its node's network: the namespace's interfaces, the node's address", async (t) => {
    const pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'on-host' },
      spec: { hostNetwork: true, nodeName: STICK, terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', `cat /proc/net/dev; ${SLEEP}`] }] },
    }
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod)).status, 201)
    const running = await until('on-host Running', async () => {
      const p = await getPod('on-host')
      return p?.status?.phase === 'Running' && p
    })
    t.equal(running.status.podIP, host!.address, "the node's own address")
    const names = (text: string) => text.split('\n').slice(2).map((l) => l.split(':')[0]!.trim()).filter((n) => n && !/^(veth|br-)/.test(n)).sort()
    const inside = names(await until('its log', () => logs('on-host')))
    const namespace = names(execFileSync('nsenter', [`--net=/var/run/netns/${host!.netns}`, 'cat', '/proc/net/dev'], { encoding: 'utf8' }))
    t.same(inside, namespace, "the pod lists the namespace's interfaces (eth0, lo, its dockerd's docker0), not this machine's")
    t.ok(inside.includes('eth0'))
  })
}
