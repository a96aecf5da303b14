// A full disk on an agent, through the real binaries: the agent's data dir and its dockerd's data
// root share a small tmpfs, which the test fills to the last byte. The agent does not crash: it
// reports DiskPressure=True naming the free bytes, the hub taints the node disk-pressure:NoSchedule
// so a new pod stays Pending, the replica's failed writes are logged once (not once per desired
// message), and the pod the node runs keeps running, untouched. With the space back, DiskPressure
// turns False, the taint goes, the pending pod runs and the replica catches up.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type Docker from 'dockerode'
import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { runCli, until } from '../helpers/e2e.js'
import { faultHostUnavailable, startFaultHost, unmountUnder, type FaultAgent, type FaultHost } from '../helpers/fault-host.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { mountSmallFilesystem, type SmallFilesystem } from '../helpers/small-filesystem.js'

const NODE = 'f2-disk'
const DISK_BYTES = 160 * 1024 * 1024
/** The agent's log line for a streak of failed replica writes. */
const REPLICA_FAILURE = 'could not store desired state; pods keep running'

const pod = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name },
  spec: {
    terminationGracePeriodSeconds: 1,
    containers: [{ name: 'main', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }],
  },
})

const condition = (node: any, type: string) => node?.status?.conditions?.find((c: any) => c.type === type)
const taints = (node: any): string[] => (node?.spec?.taints ?? []).map((x: any) => `${x.key}:${x.effect}`)
const linesWith = (text: string, needle: string) => text.split('\n').filter((l) => l.includes(needle))

async function run(): Promise<void> {
  let fs: SmallFilesystem | undefined
  let host: FaultHost | undefined
  let hub: HubProcess | undefined
  let agent: FaultAgent | undefined
  /** The keeper pod's container as the setup saw it running. */
  let keeperBefore: Docker.ContainerInfo | undefined
  const hubDir = mkdtempSync(join(tmpdir(), 'f2-hub-'))
  t.teardown(async () => {
    await agent?.stop('SIGKILL')
    await hub?.stop()
    closeApiAgents()
    await host?.cleanup()
    if (fs) {
      await unmountUnder(fs.dir)
      await fs.unmount()
    }
    rmSync(hubDir, { recursive: true, force: true })
  })
  fs = await mountSmallFilesystem('f2', DISK_BYTES)
  host = await startFaultHost('f2disk', 21, { dataRoot: join(fs.dir, 'docker') })
  hub = await startHubProcess({ dataDir: hubDir, args: ['--listen', host.hubAddress, '--advertise', host.hubAddress] })
  const token = await runCli(['token', 'create', '--data-dir', hubDir])
  const api = (method: string, path: string, body?: unknown) => apiRequest(hub!, method, path, body)
  const getNode = async () => (await api('GET', `/api/v1/nodes/${NODE}`)).json
  const getPod = async (name: string) => (await api('GET', `/api/v1/namespaces/default/pods/${name}`)).json
  const running = async (name: string) => (await getPod(name))?.status?.phase === 'Running'
  const containersOf = async (name: string) => host!.docker.listContainers({ filters: { label: [`io.bramble.pod.name=${name}`, 'io.bramble.container.role=app'] } })

  await t.test('setup: the agent keeps its data and its containers on the small disk, and runs a pod', async (t) => {
    t.equal(token.code, 0, token.stderr)
    agent = host!.startAgent({ node: NODE, hub: `${host!.hubAddress}:${new URL(hub!.server).port}`, dataDir: join(fs!.dir, 'agent-data'), token: token.stdout.trim() })
    await until('Node Ready', async () => condition(await getNode(), 'Ready')?.status === 'True')
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod('keeper'))).status, 201)
    await until('keeper Running', () => running('keeper'))
    const node = await getNode()
    t.equal(condition(node, 'DiskPressure')?.status, 'False', 'no disk pressure yet')
    t.same(taints(node), [])
    // Read here, not between the subtests: with a teardown on the root test, tap ends the root as
    // soon as it sits idle for two timer ticks, and an await of the engine there outlasted that.
    keeperBefore = (await containersOf('keeper'))[0]
  })

  await t.test('the disk fills: DiskPressure=True naming the free bytes, and the node is tainted NoSchedule', async (t) => {
    fs!.fill(0)
    t.equal(fs!.freeBytes(), 0, 'not a byte left')
    const node = await until('DiskPressure=True and the taint', async () => {
      const n = await getNode()
      return condition(n, 'DiskPressure')?.status === 'True' && taints(n).includes('node.kubernetes.io/disk-pressure:NoSchedule') && n
    })
    const pressure = condition(node, 'DiskPressure')
    t.equal(pressure.reason, 'KubeletHasDiskPressure')
    t.match(pressure.message, new RegExp(`${fs!.dir}/agent-data has \\d+ bytes free of \\d+`), `the message names the filesystem and its free bytes: ${pressure.message}`)
    t.equal(condition(node, 'Ready')?.status, 'True', 'the node stays Ready: its pods run')
  })

  await t.test('a new pod is not placed on the full node', async (t) => {
    t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod('newcomer'))).status, 201)
    const scheduled = await until('the scheduler says why not', async () => {
      const c = (await getPod('newcomer'))?.status?.conditions?.find((c: any) => c.type === 'PodScheduled')
      return c?.status === 'False' && c
    })
    t.match(scheduled.message, /node\.kubernetes\.io\/disk-pressure/, `PodScheduled=False names the taint: ${scheduled.message}`)
    t.notOk((await getPod('newcomer')).spec.nodeName, 'not bound to any node')
  })

  await t.test('desired state that cannot be stored is logged once, not per message; the agent keeps running its pod', async (t) => {
    // Each label change is a desired message for the node; each finds no room in the replica.
    for (let i = 0; i < 5; i++) {
      const res = await apiRequest(hub!, 'PATCH', '/api/v1/namespaces/default/pods/keeper', { metadata: { labels: { round: String(i) } } }, { 'Content-Type': 'application/merge-patch+json' })
      t.equal(res.status, 200)
    }
    await until('the replica write failure in the agent log', () => agent!.output().includes(REPLICA_FAILURE))
    // The agent retries every 5 s: long enough for a few retries and the five messages.
    await new Promise((r) => setTimeout(r, 12_000))
    const failures = linesWith(agent!.output(), REPLICA_FAILURE)
    t.equal(failures.length, 1, `one log line for the whole streak of failed writes:\n${linesWith(agent!.output(), 'desired state').join('\n')}`)
    t.match(agent!.output(), /its disk is full \(\d+ bytes free\)/, 'saying the disk is full')
    t.equal(agent!.child.exitCode, null, 'the agent is still running: no crash loop')
    const keeperNow = await containersOf('keeper')
    t.equal(keeperNow.length, 1)
    t.equal(keeperNow[0]?.Id, keeperBefore?.Id, 'the pod it had runs on in the same container')
    t.ok(await running('keeper'))
  })

  await t.test('space returns: DiskPressure=False, the taint goes, the pending pod runs, the replica catches up', async (t) => {
    fs!.empty()
    const node = await until('DiskPressure=False and no taint', async () => {
      const n = await getNode()
      return condition(n, 'DiskPressure')?.status === 'False' && taints(n).length === 0 && n
    })
    t.equal(condition(node, 'DiskPressure').reason, 'KubeletHasNoDiskPressure')
    await until('newcomer Running on the node', async () => (await running('newcomer')) && (await getPod('newcomer')).spec.nodeName === NODE)
    await until('the agent stored the desired state again', () => agent!.output().includes('desired state stored again'))
    t.pass('the replica took the desired state it had missed')
    t.equal((await containersOf('keeper'))[0]?.Id, keeperBefore?.Id, 'keeper was never restarted')
  })
}

const unavailable = await faultHostUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
