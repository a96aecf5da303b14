// The scheduler controller against a real LMDB store, Registry and Informers: many pods decided
// at once never overcommit a node (each decision counts the bindings still being written), pods
// that fit nowhere wait with PodScheduled=False and the Kubernetes reason message, and a pod
// leaving a node lets a waiting one in.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { SchedulerController } from '../../src/hub/scheduler-controller.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

function node(name: string, cpu: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'arm64' } },
    status: { allocatable: { cpu, memory: '4Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
  }
}

function pod(name: string, cpu: string, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox:1', resources: { requests: { cpu } } }], ...extra } }
}

async function setup(t: any, nodes: KubeObject[], pods: KubeObject[]) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-sched-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  for (const n of nodes) await registry.create(kind('Node'), '', n, WRITE)
  // Stored before the scheduler starts: they are all decided in the same moment.
  await Promise.all(pods.map((p) => registry.create(kind('Pod'), 'default', p, WRITE)))
  const podInformer = new Informer(registry, kind('Pod'))
  const nodeInformer = new Informer(registry, kind('Node'))
  const scheduler = new SchedulerController({
    registry,
    pods: podInformer,
    nodes: nodeInformer,
    events: new EventRecorder(registry, systemClock, silentLogger(), { component: 'default-scheduler' }),
    clock: systemClock,
    logger: silentLogger(),
    strategy: 'spread',
  })
  await nodeInformer.start()
  await podInformer.start()
  scheduler.start()
  t.teardown(async () => {
    await scheduler.stop()
    podInformer.stop()
    nodeInformer.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const list = async () => (await registry.list(kind('Pod'), 'default')).items
  const until = async (what: string, check: (pods: KubeObject[]) => boolean) => {
    const deadline = Date.now() + 15_000
    for (;;) {
      const pods = await list()
      if (check(pods)) return pods
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return { registry, until }
}

const condition = (p: KubeObject) => (p.status?.conditions ?? []).find((c: any) => c.type === 'PodScheduled')

t.test('pods decided at once fill a node exactly, and the rest wait with the reason', async (t) => {
  const pods = Array.from({ length: 12 }, (_, i) => pod(`p${i}`, '300m'))
  const { until } = await setup(t, [node('a', '1'), node('b', '1')], pods)
  const settled = await until('every pod bound or refused', (all) => all.every((p) => p.spec.nodeName || condition(p)?.status === 'False'))
  const bound = settled.filter((p) => p.spec.nodeName)
  t.equal(bound.length, 6, 'three pods of 300m fit in each 1-CPU node, no more')
  t.same(
    ['a', 'b'].map((n) => bound.filter((p) => p.spec.nodeName === n).length),
    [3, 3],
  )
  for (const p of bound) t.equal(condition(p)?.status, 'True', `${p.metadata.name} has PodScheduled=True`)
  const waiting = settled.filter((p) => !p.spec.nodeName)
  t.equal(waiting.length, 6)
  t.equal(condition(waiting[0]!)?.message, '0/2 nodes are available: 2 Insufficient cpu.')
})

t.test('a pod leaving a node lets a waiting pod in', async (t) => {
  const { registry, until } = await setup(t, [node('a', '1')], [pod('first', '600m'), pod('second', '600m')])
  const settled = await until('one bound, one refused', (all) => all.some((p) => p.spec.nodeName) && all.some((p) => condition(p)?.status === 'False'))
  const holder = settled.find((p) => p.spec.nodeName)!
  await registry.delete(kind('Pod'), 'default', holder.metadata.name!, { dryRun: false })
  const after = await until('the waiting pod bound', (all) => all.length === 1 && Boolean(all[0]!.spec.nodeName))
  t.equal(after[0]!.spec.nodeName, 'a')
  t.equal(condition(after[0]!)?.status, 'True')
})

t.test('a pod for another scheduler is left alone (the do-nothing case)', async (t) => {
  const { until } = await setup(t, [node('a', '4')], [pod('mine', '100m'), pod('theirs', '100m', { schedulerName: 'other-scheduler' })])
  const settled = await until('the default-scheduler pod bound', (all) => all.some((p) => p.metadata.name === 'mine' && p.spec.nodeName))
  const theirs = settled.find((p) => p.metadata.name === 'theirs')!
  t.notOk(theirs.spec.nodeName)
  t.notOk(condition(theirs))
})

t.test("replicas of one controller spread evenly, as the counts kept per node follow pods coming and going", async (t) => {
  const owned = (name: string, owner: string): KubeObject => ({ ...pod(name, '100m'), metadata: { name, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: owner, uid: `uid-${owner}`, controller: true }] } })
  const pods = [...Array.from({ length: 6 }, (_, i) => owned(`x${i}`, 'x')), ...Array.from({ length: 3 }, (_, i) => owned(`y${i}`, 'y'))]
  const { registry, until } = await setup(t, [node('a', '4'), node('b', '4'), node('c', '4')], pods)
  const perNode = (all: KubeObject[], prefix: string) => ['a', 'b', 'c'].map((n) => all.filter((p) => p.metadata.name!.startsWith(prefix) && p.spec.nodeName === n).length)
  const settled = await until('every pod bound', (all) => all.length === 9 && all.every((p) => p.spec.nodeName))
  t.same(perNode(settled, 'x'), [2, 2, 2], "x's six replicas two to a node")
  t.same(perNode(settled, 'y'), [1, 1, 1], "y's three replicas one to a node")

  // Both of x's replicas on a go; two new ones of x go where x now has fewest: a.
  for (const p of settled.filter((p) => p.metadata.name!.startsWith('x') && p.spec.nodeName === 'a')) await registry.delete(kind('Pod'), 'default', p.metadata.name!, { dryRun: false })
  for (const name of ['x6', 'x7']) await registry.create(kind('Pod'), 'default', owned(name, 'x'), WRITE)
  const after = await until('the new replicas bound', (all) => all.filter((p) => p.metadata.name!.startsWith('x')).length === 6 && all.every((p) => p.spec.nodeName))
  t.same(perNode(after, 'x'), [2, 2, 2], 'the new replicas went to the node their controller had left')
})
