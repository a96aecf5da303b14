// A node's devices at the hub, on a real LMDB store with the real intake, informers and scheduler:
// what an agent reports in its node status (devices.bramble.dev/<class> capacity and labels) lands
// on its Node, labels of any other kind it claims for itself are not taken, a device gone takes its
// label with it, and a pod asking for a device is bound to the node that reported one.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import { encodeMessage, upTopic, type NodeStatusMessage } from '../../src/api/protocol.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NodeStatusIntake } from '../../src/hub/node-status-intake.js'
import { Registry } from '../../src/hub/registry.js'
import { SchedulerController } from '../../src/hub/scheduler-controller.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }
const SERIAL = 'devices.bramble.dev/serial'

const dir = mkdtempSync(join(tmpdir(), 'hw-hub-'))
const store = await openLmdbStore({ path: join(dir, 'store') })
const registry = new Registry(store, systemClock, silentLogger())
await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
const pods = new Informer(registry, kind('Pod'))
const nodes = new Informer(registry, kind('Node'))
const nop = () => {}
const intake = new NodeStatusIntake({ registry, pods, nodes, heartbeats: new Heartbeats(), clock: systemClock, logger: silentLogger(), onSync: nop, onAck: nop, onRpcReply: nop, onAlive: nop, onOffline: nop })
const scheduler = new SchedulerController({ registry, pods, nodes, events: new EventRecorder(registry, systemClock, silentLogger(), { component: 'default-scheduler' }), clock: systemClock, logger: silentLogger(), strategy: 'spread' })
for (const name of ['stick', 'plain']) await registry.create(kind('Node'), '', { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } } }, WRITE)
await pods.start()
await nodes.start()
scheduler.start()
t.teardown(async () => {
  await scheduler.stop()
  pods.stop()
  nodes.stop()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

const status = (devices: Record<string, string>) => ({
  capacity: { cpu: '4', memory: '4Gi', pods: '110', ...devices },
  allocatable: { cpu: '4', memory: '4Gi', pods: '110', ...devices },
  conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'ready' }],
})
async function report(node: string, message: NodeStatusMessage): Promise<void> {
  intake.handle(upTopic(node, 'node-status'), encodeMessage(message))
  await intake.idle()
}
const getNode = async (name: string) => (await registry.get(kind('Node'), '', name)) as any

t.test('device labels and capacity come from the node; other labels it claims are not taken', async (t) => {
  await report('stick', {
    status: status({ [SERIAL]: '2' }),
    labels: { 'kubernetes.io/hostname': 'other', [SERIAL]: 'true', 'devices.bramble.dev/warp-drive': 'true', 'node-role.kubernetes.io/control-plane': 'true' },
  })
  await report('plain', { status: status({}), labels: { 'kubernetes.io/hostname': 'plain' } })
  const stick = await getNode('stick')
  t.same(stick.metadata.labels, { 'kubernetes.io/hostname': 'stick', [SERIAL]: 'true' }, 'only the known device class is taken')
  t.equal(stick.status.allocatable[SERIAL], '2')
  t.same((await getNode('plain')).metadata.labels, { 'kubernetes.io/hostname': 'plain' }, 'the do-nothing case: no devices, no label')
})

t.test('a pod asking for a serial device is bound to the node that reported one', async (t) => {
  await registry.create(kind('Pod'), 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'ha', namespace: 'default' }, spec: { containers: [{ name: 'c', image: 'busybox', resources: { limits: { [SERIAL]: 1 } } }] } }, WRITE)
  const deadline = Date.now() + 30_000
  let pod: any
  while (!(pod = await registry.get(kind('Pod'), 'default', 'ha')).spec.nodeName && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  t.equal(pod.spec.nodeName, 'stick')
})

t.test('a device unplugged takes its label and capacity with it', async (t) => {
  await report('stick', { status: status({}), labels: { 'kubernetes.io/hostname': 'stick' } })
  const stick = await getNode('stick')
  t.same(stick.metadata.labels, { 'kubernetes.io/hostname': 'stick' })
  t.equal(stick.status.capacity[SERIAL], undefined)
})
