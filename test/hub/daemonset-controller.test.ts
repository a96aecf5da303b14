// The DaemonSet controller with the real scheduler against a real LMDB store. No agent runs here:
// the test plays the kubelet by marking bound pods Running and Ready; e2e runs use real agents.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { DaemonSetController, REVISION_HASH_LABEL, resolveMaxSurge, resolveMaxUnavailable } from '../../src/hub/daemonset-controller.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { controllerOf } from '../../src/hub/replicaset-controller.js'
import { SchedulerController } from '../../src/hub/scheduler-controller.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }
const isReady = (p: KubeObject) => (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-ds-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const events = (component: string) => new EventRecorder(registry, systemClock, silentLogger(), { component })
  const pods = new Informer(registry, kind('Pod'))
  const nodes = new Informer(registry, kind('Node'))
  const daemonSets = new Informer(registry, kind('DaemonSet'))
  const controller = new DaemonSetController({ registry, daemonSets, pods, nodes, events: events('daemonset-controller'), clock: systemClock, logger: silentLogger() })
  const scheduler = new SchedulerController({ registry, pods, nodes, events: events('default-scheduler'), clock: systemClock, logger: silentLogger(), strategy: 'spread' })
  for (const i of [pods, nodes, daemonSets]) await i.start()
  controller.start()
  scheduler.start()
  let kubelet = true
  // The kubelet's part: a pod bound to a node becomes Running and Ready a little later.
  const playKubelet = (async () => {
    while (kubelet) {
      for (const p of (await registry.list(kind('Pod'), 'default')).items) {
        if (!p.spec.nodeName || isReady(p)) continue
        const status = { ...p.status, phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }
        await registry.update(kind('Pod'), 'default', p.metadata.name!, { ...p, status }, WRITE, 'status').catch(() => undefined)
      }
      await new Promise((r) => setTimeout(r, 40))
    }
  })()
  t.teardown(async () => {
    kubelet = false
    await playKubelet
    await controller.stop()
    await scheduler.stop()
    for (const i of [pods, nodes, daemonSets]) i.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 15_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  const podsOf = async (ds: string) => (await registry.list(kind('Pod'), 'default')).items.filter((p: KubeObject) => controllerOf(p)?.name === ds)
  const addNode = (name: string, opts: { labels?: Record<string, string>; taints?: any[] } = {}) =>
    registry.create(
      kind('Node'),
      '',
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux', ...opts.labels } },
        spec: opts.taints ? { taints: opts.taints } : {},
        status: { allocatable: { cpu: '4', memory: '4Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
      },
      WRITE,
    )
  const getDs = (name: string) => registry.get(kind('DaemonSet'), 'default', name)
  return { registry, store, until, podsOf, addNode, getDs }
}

function daemonSet(name: string, image: string, spec: Record<string, unknown> = {}, podSpec: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name },
    spec: { selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image }], ...podSpec } }, ...spec },
  }
}

const nodesOf = (pods: KubeObject[]) => pods.map((p) => p.spec.nodeName).sort()

/** Follows a DaemonSet's pods through a rollout by watch: the fewest nodes with a ready pod, and the most pods, at any moment. */
async function watchRollout(t: any, registry: Registry, ds: string) {
  const owned = (p: KubeObject) => controllerOf(p)?.name === ds
  const { items, revision } = await registry.list(kind('Pod'), 'default')
  const current = new Map<string, KubeObject>(items.filter(owned).map((p: KubeObject) => [p.metadata.name!, p]))
  const readyNodes = () => new Set([...current.values()].filter(isReady).map((p) => p.spec.nodeName)).size
  let fewestReady = readyNodes()
  let mostPods = current.size
  const watch = registry.watch(kind('Pod'), 'default', revision, (e) => {
    if (!owned(e.object)) return
    if (e.type === 'DELETED') current.delete(e.object.metadata.name!)
    else current.set(e.object.metadata.name!, e.object)
    fewestReady = Math.min(fewestReady, readyNodes())
    mostPods = Math.max(mostPods, current.size)
  })
  t.teardown(() => watch.stop())
  return { fewestReady: () => fewestReady, mostPods: () => mostPods }
}

/** A strategic merge patch, as `kubectl set image` sends it: retried by the registry on a conflict with the controller. */
const setImage = (registry: Registry, ds: string, image: string) =>
  registry.patch(kind('DaemonSet'), 'default', ds, Buffer.from(JSON.stringify({ spec: { template: { spec: { containers: [{ name: 'c', image }] } } } })), 'application/strategic-merge-patch+json', WRITE)

t.test('resolves maxUnavailable (never below 1) and maxSurge (0 by default): a count, or a percentage of the nodes rounded up', async (t) => {
  t.equal(resolveMaxSurge(10, undefined), 0)
  t.equal(resolveMaxSurge(10, { rollingUpdate: { maxSurge: '15%' } }), 2)
  t.equal(resolveMaxUnavailable(10, undefined), 1)
  t.equal(resolveMaxUnavailable(10, { rollingUpdate: { maxUnavailable: 3 } }), 3)
  t.equal(resolveMaxUnavailable(10, { rollingUpdate: { maxUnavailable: '25%' } }), 3)
  t.equal(resolveMaxUnavailable(3, { rollingUpdate: { maxUnavailable: '0%' } }), 1)
})

t.test('runs one pod on every node, bound by the scheduler, and reaches a node created later', async (t) => {
  const { registry, until, podsOf, addNode, getDs } = await setup(t)
  await addNode('n1')
  await addNode('n2')
  await registry.create(kind('DaemonSet'), 'default', daemonSet('agent', 'busybox:1'), WRITE)
  await until('a pod is bound on each node', async () => nodesOf(await podsOf('agent')).join() === 'n1,n2')
  for (const p of await podsOf('agent')) {
    t.match(controllerOf(p), { kind: 'DaemonSet', name: 'agent', controller: true })
    t.match(p.metadata.labels, { app: 'agent', [REVISION_HASH_LABEL]: /^[0-9a-f]{10}$/ })
    t.same(p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms, [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [p.spec.nodeName] }] }])
    t.ok(p.spec.tolerations.some((x: any) => x.key === 'node.kubernetes.io/unreachable' && x.effect === 'NoExecute' && x.tolerationSeconds === undefined), 'tolerates an unreachable node for good')
  }
  await until('status counts 2 ready', async () => (await getDs('agent')).status?.numberReady === 2)
  t.match((await getDs('agent')).status, { desiredNumberScheduled: 2, currentNumberScheduled: 2, updatedNumberScheduled: 2, numberAvailable: 2, numberUnavailable: 0, numberMisscheduled: 0, observedGeneration: 1 })

  await addNode('n3')
  await until('the new node gets its pod', async () => nodesOf(await podsOf('agent')).join() === 'n1,n2,n3')
  await until('desired is 3', async () => (await getDs('agent')).status?.desiredNumberScheduled === 3)

  await registry.delete(kind('Node'), '', 'n2', { dryRun: false })
  await until('the deleted node loses its pod', async () => nodesOf(await podsOf('agent')).join() === 'n1,n3')
  await until('desired is 2 again', async () => (await getDs('agent')).status?.desiredNumberScheduled === 2)
})

t.test('respects nodeSelector and NoSchedule taints, and removes pods from nodes that stop matching', async (t) => {
  const { registry, until, podsOf, addNode, getDs } = await setup(t)
  await addNode('edge-1', { labels: { role: 'edge' } })
  await addNode('edge-2', { labels: { role: 'edge' }, taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] })
  await addNode('core-1', { labels: { role: 'core' } })
  await registry.create(kind('DaemonSet'), 'default', daemonSet('edge', 'busybox:1', {}, { nodeSelector: { role: 'edge' } }), WRITE)
  await registry.create(kind('DaemonSet'), 'default', daemonSet('gpu', 'busybox:1', {}, { tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] }), WRITE)
  await until('edge runs on the untainted edge node only', async () => nodesOf(await podsOf('edge')).join() === 'edge-1' && (await getDs('edge')).status?.numberReady === 1)
  await until('gpu, tolerating the taint, runs everywhere', async () => nodesOf(await podsOf('gpu')).join() === 'core-1,edge-1,edge-2')
  t.match((await getDs('edge')).status, { desiredNumberScheduled: 1, currentNumberScheduled: 1 })

  await registry.patch(kind('Node'), '', 'edge-1', Buffer.from(JSON.stringify({ metadata: { labels: { role: 'core' } } })), 'application/merge-patch+json', WRITE)
  await until('a node relabelled out of the selector loses its pod', async () => (await podsOf('edge')).length === 0)
  await until('desired is 0', async () => (await getDs('edge')).status?.desiredNumberScheduled === 0)
})

t.test('a rolling update replaces pods node by node, never more than maxUnavailable down', async (t) => {
  const { registry, until, podsOf, addNode, getDs } = await setup(t)
  for (const n of ['n1', 'n2', 'n3', 'n4', 'n5']) await addNode(n)
  await registry.create(kind('DaemonSet'), 'default', daemonSet('log', 'busybox:1', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 2 } } }), WRITE)
  await until('5 ready pods', async () => (await podsOf('log')).filter(isReady).length === 5 && (await getDs('log')).status?.numberAvailable === 5)

  const rollout = await watchRollout(t, registry, 'log')
  await setImage(registry, 'log', 'busybox:2')
  await until('every node runs the new image, ready', async () => {
    const pods = await podsOf('log')
    return pods.length === 5 && pods.every((p) => p.spec.containers[0].image === 'busybox:2' && isReady(p))
  })
  await until('status says all updated and available', async () => {
    const s = (await getDs('log')).status
    return s?.observedGeneration === 2 && s.updatedNumberScheduled === 5 && s.numberAvailable === 5
  })
  t.ok(rollout.fewestReady() >= 3, `at least 5 - maxUnavailable nodes had a ready pod throughout (fewest: ${rollout.fewestReady()})`)
  t.ok(rollout.fewestReady() < 5, 'and the rollout did take pods down to replace them')
  t.ok(rollout.mostPods() <= 5, 'no pod beyond one per node')
  t.equal(nodesOf(await podsOf('log')).join(), 'n1,n2,n3,n4,n5', 'one pod per node at the end')
})

t.test('with maxSurge a new pod starts beside the old one, which goes once the new one is ready: no node is ever without a ready pod', async (t) => {
  const { registry, until, podsOf, addNode, getDs } = await setup(t)
  for (const n of ['n1', 'n2', 'n3']) await addNode(n)
  await registry.create(kind('DaemonSet'), 'default', daemonSet('proxy', 'busybox:1', { updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } } }), WRITE)
  await until('3 available pods', async () => (await getDs('proxy')).status?.numberAvailable === 3)
  const rollout = await watchRollout(t, registry, 'proxy')
  await setImage(registry, 'proxy', 'busybox:2')
  await until('every node runs the new image, ready, and the old pods are gone', async () => {
    const pods = await podsOf('proxy')
    return pods.length === 3 && pods.every((p) => p.spec.containers[0].image === 'busybox:2' && isReady(p))
  })
  t.equal(rollout.fewestReady(), 3, 'every node had a ready pod throughout')
  t.equal(rollout.mostPods(), 4, 'one surge pod at a time')
  t.equal(nodesOf(await podsOf('proxy')).join(), 'n1,n2,n3')
})

t.test('OnDelete leaves old pods until they are deleted, then recreates them from the new template', async (t) => {
  const { registry, until, podsOf, addNode, getDs } = await setup(t)
  await addNode('n1')
  await addNode('n2')
  await registry.create(kind('DaemonSet'), 'default', daemonSet('manual', 'busybox:1', { updateStrategy: { type: 'OnDelete' } }), WRITE)
  await until('2 ready pods', async () => (await getDs('manual')).status?.numberReady === 2)
  await setImage(registry, 'manual', 'busybox:2')
  await until('status has seen generation 2', async () => (await getDs('manual')).status?.observedGeneration === 2)
  await new Promise((r) => setTimeout(r, 300))
  t.same((await podsOf('manual')).map((p) => p.spec.containers[0].image), ['busybox:1', 'busybox:1'], 'no pod replaced on its own')
  t.equal((await getDs('manual')).status.updatedNumberScheduled, 0)
  const old = (await podsOf('manual')).find((p) => p.spec.nodeName === 'n1')!
  await registry.delete(kind('Pod'), 'default', old.metadata.name!, { dryRun: false })
  await until('n1 runs the new image', async () => (await podsOf('manual')).some((p) => p.spec.nodeName === 'n1' && p.spec.containers[0].image === 'busybox:2'))
  t.equal((await podsOf('manual')).find((p) => p.spec.nodeName === 'n2')!.spec.containers[0].image, 'busybox:1', 'n2 keeps the old one')
})

t.test('does nothing once every node has its pod, and a deleted DaemonSet takes its pods with it', async (t) => {
  const { registry, store, until, podsOf, addNode, getDs } = await setup(t)
  await addNode('n1')
  await addNode('n2')
  await registry.create(kind('DaemonSet'), 'default', daemonSet('calm', 'busybox:1'), WRITE)
  await until('settled', async () => (await getDs('calm')).status?.numberAvailable === 2)
  const before = await store.revision()
  await new Promise((r) => setTimeout(r, 300))
  t.equal(await store.revision(), before, 'no write while nothing changes')
  await registry.delete(kind('DaemonSet'), 'default', 'calm', { dryRun: false })
  await until('its pods are gone', async () => (await podsOf('calm')).length === 0)
  t.pass('no pod outlives its DaemonSet')
})
