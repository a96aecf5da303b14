// Node lifecycle on a real store: silence past the grace period marks a node NotReady and taints
// it; speaking again undoes both. The hub's monotonic clock is moved forward by the test instead
// of waiting out grace periods.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NODE_STATUS_UNKNOWN, NodeLifecycle, UNREACHABLE_TAINT_KEY } from '../../src/hub/node-lifecycle.js'
import { Registry } from '../../src/hub/registry.js'
import { taints as schedulerTaints } from '../../src/sched/filters.js'
import type { Store } from '../../src/hub/store.js'
import { systemClock, type Clock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
const GRACE_MS = 20_000

let dir: string
let store: Store
let registry: Registry
/** How far the test has moved the hub's monotonic clock. */
let skewMs = 0
const clock: Clock = { ...systemClock, monotonic: () => performance.now() + skewMs }

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bramble-lifecycle-'))
  store = await openLmdbStore({ path: join(dir, 'store') })
  registry = new Registry(store, clock, silentLogger())
})
t.teardown(async () => {
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

async function eventually<T>(what: string, check: () => Promise<T | undefined | false>, deadlineMs = 10_000): Promise<T> {
  const end = Date.now() + deadlineMs
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
}

async function readyNode(name: string): Promise<void> {
  await registry.create(
    NODE,
    '',
    { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: { taints: [{ key: 'dedicated', value: 'edge', effect: 'NoSchedule' }] }, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } },
    WRITE,
  )
}

const getNode = (name: string) => registry.get(NODE, '', name)
const ready = (n: KubeObject) => ((n.status as any)?.conditions ?? []).find((c: any) => c.type === 'Ready')
const taintKeys = (n: KubeObject) => (((n.spec as any)?.taints ?? []) as any[]).map((x) => `${x.key}:${x.effect}`)

/** A lifecycle controller as the hub starts one: fresh caches, no heartbeats yet. */
async function startLifecycle(t: Test, heartbeats = new Heartbeats()) {
  const nodes = new Informer(registry, NODE)
  const lifecycle = new NodeLifecycle({
    registry,
    nodes,
    heartbeats,
    clock,
    logger: silentLogger(),
    gracePeriodMs: GRACE_MS,
    checkIntervalMs: 20,
    reportedReady: () => ({ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'agent is posting ready status' }),
  })
  await nodes.start()
  lifecycle.start()
  t.teardown(async () => {
    await lifecycle.stop()
    nodes.stop()
  })
  const speak = (node: string) => {
    heartbeats.seen(node, clock.monotonic())
    lifecycle.onMessage(node)
  }
  return { lifecycle, heartbeats, speak }
}

t.test('a node silent past its grace period becomes NotReady with the unreachable taint; when it speaks again both go', async (t) => {
  await readyNode('quiet-1')
  const { speak } = await startLifecycle(t)
  speak('quiet-1')
  skewMs += GRACE_MS + 1_000
  const marked = await eventually('NotReady', async () => {
    const n = await getNode('quiet-1')
    return ready(n)?.reason === NODE_STATUS_UNKNOWN && taintKeys(n).includes(`${UNREACHABLE_TAINT_KEY}:NoExecute`) && n
  })
  t.match(ready(marked), { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.' })
  t.same(taintKeys(marked), ['dedicated:NoSchedule', `${UNREACHABLE_TAINT_KEY}:NoExecute`], 'other taints are kept')

  speak('quiet-1')
  const back = await eventually('Ready again', async () => {
    const n = await getNode('quiet-1')
    return ready(n)?.status === 'True' && !taintKeys(n).includes(`${UNREACHABLE_TAINT_KEY}:NoExecute`) && n
  })
  t.same(taintKeys(back), ['dedicated:NoSchedule'])
  t.match(ready(back), { reason: 'KubeletReady' })
})

t.test('a node whose agent reports Ready=False gets the not-ready NoExecute taint until it reports Ready again', async (t) => {
  await readyNode('sick-1')
  const { speak } = await startLifecycle(t)
  // As the status intake does: the message counts as a sign of life, then its status is written.
  const report = async (status: string) => {
    speak('sick-1')
    const n = await getNode('sick-1')
    const conditions = [{ type: 'Ready', status, reason: status === 'True' ? 'KubeletReady' : 'ContainerRuntimeDown' }]
    await registry.update(NODE, '', 'sick-1', { ...n, status: { ...n.status, conditions } }, WRITE, 'status')
  }
  await report('False')
  const sick = await eventually('the not-ready taint', async () => {
    const n = await getNode('sick-1')
    return taintKeys(n).includes('node.kubernetes.io/not-ready:NoExecute') && n
  })
  t.same(taintKeys(sick), ['dedicated:NoSchedule', 'node.kubernetes.io/not-ready:NoExecute'], 'not the unreachable one: the node speaks')
  t.ok((sick.spec as any).taints[1].timeAdded, 'stamped with the time it was added')
  await report('True')
  const well = await eventually('the taint gone', async () => {
    const n = await getNode('sick-1')
    return !taintKeys(n).includes('node.kubernetes.io/not-ready:NoExecute') && n
  })
  t.same(taintKeys(well), ['dedicated:NoSchedule'])
})

t.test('a node that keeps speaking is never touched', async (t) => {
  await readyNode('chatty')
  const { speak } = await startLifecycle(t)
  const before = (await getNode('chatty')).metadata.resourceVersion
  for (let i = 0; i < 5; i++) {
    speak('chatty')
    skewMs += GRACE_MS / 2
    await new Promise((r) => setTimeout(r, 60))
  }
  t.equal((await getNode('chatty')).metadata.resourceVersion, before)
})

t.test('after a hub restart every node gets a fresh grace period, and a marked node stays marked until it speaks', async (t) => {
  await readyNode('steady')
  const first = await startLifecycle(t)
  first.speak('steady')
  await readyNode('was-gone')
  skewMs += GRACE_MS + 1_000
  first.speak('steady') // in the same turn: no check runs between the jump and this
  await eventually('was-gone marked', async () => ready(await getNode('was-gone'))?.reason === NODE_STATUS_UNKNOWN)
  t.equal(ready(await getNode('steady'))?.status, 'True', 'steady spoke in time')
  await first.lifecycle.stop()

  // The hub restarts long after steady's last word: nothing is known, nothing is judged yet.
  skewMs += 10 * GRACE_MS
  const restarted = await startLifecycle(t)
  await new Promise((r) => setTimeout(r, 200))
  t.equal(ready(await getNode('steady'))?.status, 'True', 'steady is not marked within its fresh grace period')
  t.equal(ready(await getNode('was-gone'))?.reason, NODE_STATUS_UNKNOWN, 'was-gone is not flipped back by the restart')

  skewMs += GRACE_MS + 1_000
  await eventually('steady marked once its fresh grace period is over', async () => ready(await getNode('steady'))?.reason === NODE_STATUS_UNKNOWN)
  restarted.speak('was-gone')
  await eventually('was-gone back once it speaks', async () => ready(await getNode('was-gone'))?.status === 'True')
  t.pass('both judged on what the restarted hub saw')
})

t.test('a Last Will marks the node at once, without waiting for the grace period', async (t) => {
  await readyNode('willful')
  const { lifecycle, speak } = await startLifecycle(t)
  speak('willful')
  lifecycle.onOffline('willful')
  await eventually('marked', async () => taintKeys(await getNode('willful')).includes(`${UNREACHABLE_TAINT_KEY}:NoExecute`))
  speak('willful')
  await eventually('back', async () => !taintKeys(await getNode('willful')).includes(`${UNREACHABLE_TAINT_KEY}:NoExecute`))
  t.pass('offline, then back')
})

t.test('a node reporting DiskPressure gets the disk-pressure NoSchedule taint, which keeps new pods away, until the pressure goes', async (t) => {
  await readyNode('full-1')
  const { speak } = await startLifecycle(t)
  const report = async (disk: 'True' | 'False') => {
    speak('full-1')
    const n = await getNode('full-1')
    const conditions = [
      { type: 'Ready', status: 'True', reason: 'KubeletReady' },
      { type: 'DiskPressure', status: disk, reason: disk === 'True' ? 'KubeletHasDiskPressure' : 'KubeletHasNoDiskPressure' },
    ]
    await registry.update(NODE, '', 'full-1', { ...n, status: { ...n.status, conditions } }, WRITE, 'status')
  }
  await report('True')
  const full = await eventually('the disk-pressure taint', async () => {
    const n = await getNode('full-1')
    return taintKeys(n).includes('node.kubernetes.io/disk-pressure:NoSchedule') && n
  })
  t.same(taintKeys(full), ['dedicated:NoSchedule', 'node.kubernetes.io/disk-pressure:NoSchedule'], 'no NoExecute taint: the pods it runs stay')
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { tolerations: [{ key: 'dedicated', operator: 'Exists' }], containers: [] } } as KubeObject
  t.same(schedulerTaints(pod, { node: full, pods: [] } as any), ['node(s) had untolerated taint {node.kubernetes.io/disk-pressure: }'], 'the scheduler will not place a new pod there')
  const daemonPod = { ...pod, spec: { ...pod.spec, tolerations: [...(pod.spec as any).tolerations, { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' }] } } as KubeObject
  t.same(schedulerTaints(daemonPod, { node: full, pods: [] } as any), [], 'a pod that tolerates it (DaemonSet pods do) may go there')
  await report('False')
  const roomy = await eventually('the taint gone', async () => {
    const n = await getNode('full-1')
    return !taintKeys(n).includes('node.kubernetes.io/disk-pressure:NoSchedule') && n
  })
  t.same(taintKeys(roomy), ['dedicated:NoSchedule'])
})
