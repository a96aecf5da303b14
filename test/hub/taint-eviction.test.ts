// Taint-based eviction on a real LMDB store, Registry and Informers, with the real node lifecycle
// marking silent nodes and a fake clock standing in for time: pods leave nodes with NoExecute taints
// they do not tolerate, after their tolerationSeconds, never from autonomous nodes, and not at all
// while most nodes are silent at once or during the fresh grace period after a hub start.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NodeLifecycle } from '../../src/hub/node-lifecycle.js'
import { rfc3339, Registry } from '../../src/hub/registry.js'
import type { Store } from '../../src/hub/store.js'
import { AUTONOMOUS_ANNOTATION, evictionTimeMs, TaintEvictionController, zoneState } from '../../src/hub/taint-eviction-controller.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
const GRACE_MS = 20_000
const UNREACHABLE = 'node.kubernetes.io/unreachable'

interface NodeSpec {
  name: string
  annotations?: Record<string, string>
  /** Left by an earlier hub run: Ready=Unknown and the unreachable taint added this long ago. */
  unreachableForMs?: number
}

interface Options {
  nodes: Array<string | NodeSpec>
  pods?: Array<{ name: string; node: string; tolerations?: unknown[] }>
  ratePerSecond?: number
  threshold?: number
}

async function setup(t: Test, o: Options) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-eviction-'))
  const store: Store = await openLmdbStore({ path: join(dir, 'store') })
  const clock = new FakeClock()
  const logger = silentLogger()
  const registry = new Registry(store, clock, logger)
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  for (const spec of o.nodes.map((n) => (typeof n === 'string' ? { name: n } : n))) {
    const since = spec.unreachableForMs === undefined ? undefined : rfc3339(clock.now() - spec.unreachableForMs)
    await registry.create(
      kind('Node'),
      '',
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: spec.name, ...(spec.annotations ? { annotations: spec.annotations } : {}) },
        spec: since ? { taints: [{ key: UNREACHABLE, effect: 'NoExecute', timeAdded: since }] } : {},
        status: { conditions: [since ? { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown' } : { type: 'Ready', status: 'True', reason: 'KubeletReady' }] },
      },
      WRITE,
    )
  }
  for (const p of o.pods ?? []) await createPod(registry, p.name, p.node, p.tolerations)

  const nodes = new Informer(registry, kind('Node'))
  const pods = new Informer(registry, kind('Pod'))
  const heartbeats = new Heartbeats()
  const lifecycle = new NodeLifecycle({ registry, nodes, heartbeats, clock, logger, gracePeriodMs: GRACE_MS })
  const eviction = new TaintEvictionController({
    registry,
    pods,
    nodes,
    events: new EventRecorder(registry, clock, logger, { component: 'taint-eviction-controller' }),
    clock,
    logger,
    startupHoldMs: GRACE_MS,
    nodeEvictionRatePerSecond: o.ratePerSecond ?? 100,
    unhealthyZoneThreshold: o.threshold,
  })
  await nodes.start()
  await pods.start()
  lifecycle.start()
  eviction.start()
  t.teardown(async () => {
    await eviction.stop()
    await lifecycle.stop()
    nodes.stop()
    pods.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })

  /** Waits until the controllers have written all they will at this instant. */
  const settle = async () => {
    for (let quiet = 0; quiet < 2; ) {
      const before = await store.revision()
      await new Promise((r) => setTimeout(r, 15))
      await eviction.idle()
      quiet = (await store.revision()) === before ? quiet + 1 : 0
    }
  }
  /** Moves time forward a second at a time; the named nodes keep speaking. */
  const advance = async (ms: number, speaking: string[] = []) => {
    for (let done = 0; done < ms; done += 1000) {
      for (const n of speaking) {
        heartbeats.seen(n, clock.monotonic())
        lifecycle.onMessage(n)
      }
      clock.advance(Math.min(1000, ms - done))
      await settle()
    }
  }
  const podNames = async () => (await registry.list(kind('Pod'), 'default')).items.map((p: KubeObject) => p.metadata.name!).sort()
  const events = async (reason: string) => (await registry.list(kind('Event'), 'default')).items.filter((e: any) => e.reason === reason) as any[]
  const taintAddedMs = async (node: string) => Date.parse((await registry.get(kind('Node'), '', node)).spec.taints.find((x: any) => x.key === UNREACHABLE).timeAdded)
  await settle()
  return { registry, clock, eviction, advance, settle, podNames, events, taintAddedMs }
}

async function createPod(registry: Registry, name: string, node: string, tolerations?: unknown[]): Promise<void> {
  await registry.create(
    kind('Pod'),
    'default',
    { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox:1' }], ...(tolerations ? { tolerations } : {}) } },
    WRITE,
  )
}

t.test('a pod that does not tolerate a NoExecute taint is evicted at once with a TaintManagerEviction event; tolerant pods stay', async (t) => {
  const s = await setup(t, {
    nodes: ['n1', 'n2', 'n3'],
    pods: [
      { name: 'plain', node: 'n1' },
      { name: 'tolerant', node: 'n1', tolerations: [{ key: 'example.com/maintenance', operator: 'Exists', effect: 'NoExecute' }] },
      { name: 'elsewhere', node: 'n2' },
    ],
  })
  await s.advance(GRACE_MS + 1000, ['n1', 'n2', 'n3']) // past the start-up hold, every node alive
  t.same(await s.podNames(), ['elsewhere', 'plain', 'tolerant'], 'do nothing while no node is tainted')
  const n1 = await s.registry.get(kind('Node'), '', 'n1')
  await s.registry.update(kind('Node'), '', 'n1', { ...n1, spec: { taints: [{ key: 'example.com/maintenance', effect: 'NoExecute' }] } }, WRITE)
  await s.settle()
  t.same(await s.podNames(), ['elsewhere', 'tolerant'], 'the pod without a toleration is gone at once')
  const [event] = await s.events('TaintManagerEviction')
  t.equal(event?.type, 'Normal')
  t.equal(event?.message, 'Marking for deletion Pod default/plain')
  t.equal(event?.involvedObject?.name, 'plain')
})

t.test('pods tolerating unreachable for tolerationSeconds are evicted that long after timeAdded, not before; without seconds they stay', async (t) => {
  const s = await setup(t, {
    nodes: ['n1', 'n2', 'n3'],
    pods: [
      { name: 'defaulted', node: 'n1' }, // the DefaultTolerationSeconds admission gives it 30 s
      { name: 'patient', node: 'n1', tolerations: [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 120 }] },
      { name: 'forever', node: 'n1', tolerations: [{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }] },
    ],
  })
  const defaulted = await s.registry.get(kind('Pod'), 'default', 'defaulted')
  t.same(
    defaulted.spec.tolerations.map((x: any) => `${x.key}:${x.effect}:${x.tolerationSeconds}`),
    ['node.kubernetes.io/not-ready:NoExecute:30', `${UNREACHABLE}:NoExecute:30`],
    'default tolerations were added at create',
  )
  // n1 falls silent; the others keep speaking.
  await s.advance(GRACE_MS + 2000, ['n2', 'n3'])
  const tainted = await s.taintAddedMs('n1')
  const at = (seconds: number) => s.advance(tainted + seconds * 1000 - s.clock.now(), ['n2', 'n3'])
  await at(28)
  t.same(await s.podNames(), ['defaulted', 'forever', 'patient'], 'nothing evicted before 30 s')
  await at(31)
  t.same(await s.podNames(), ['forever', 'patient'], 'the 30 s pod is evicted after 30 s')
  await at(118)
  t.same(await s.podNames(), ['forever', 'patient'], 'the 120 s pod is still there at 118 s')
  await at(121)
  t.same(await s.podNames(), ['forever'], 'and gone after 120 s; the one tolerating for good stays')
  t.equal((await s.events('TaintManagerEviction')).length, 2)
})

t.test('a node annotated bramble.dev/autonomous is never evicted from', async (t) => {
  const s = await setup(t, {
    nodes: [{ name: 'ship', annotations: { [AUTONOMOUS_ANNOTATION]: 'true' } }, 'n2', 'n3'],
    pods: [{ name: 'onboard', node: 'ship' }],
  })
  await s.advance(GRACE_MS + 2000, ['n2', 'n3'])
  t.ok(await s.taintAddedMs('ship'), 'the silent node is marked unreachable all the same')
  await s.advance(120_000, ['n2', 'n3'])
  t.same(await s.podNames(), ['onboard'], 'its pod stays long past its 30 s toleration')
})

t.test('the zone follows NotReady nodes that turn autonomous, are deleted or come back', async (t) => {
  const s = await setup(t, { nodes: ['z1', 'z2', 'z3', 'z4', 'z5', 'z6'] })
  // 4 of 6 silent (67%): paused.
  await s.advance(GRACE_MS + 2000, ['z5', 'z6'])
  t.equal(s.eviction.zoneState, 'PartialDisruption', '4 of 6 NotReady')
  // A silent node made autonomous leaves the count: 3 of 5 is 60%, still paused.
  const z1 = await s.registry.get(kind('Node'), '', 'z1')
  await s.registry.update(kind('Node'), '', 'z1', { ...z1, metadata: { ...z1.metadata, annotations: { [AUTONOMOUS_ANNOTATION]: 'true' } } }, WRITE)
  await s.advance(1000, ['z5', 'z6'])
  t.equal(s.eviction.zoneState, 'PartialDisruption', '3 of 5 counted nodes NotReady')
  // A silent node deleted: 2 of 4, fewer than 3 NotReady.
  await s.registry.delete(kind('Node'), '', 'z2', WRITE)
  await s.advance(1000, ['z5', 'z6'])
  t.equal(s.eviction.zoneState, 'Normal', '2 of 4 counted nodes NotReady')
  // The autonomous node counts again once the annotation goes, still NotReady: 3 of 5.
  const z1Now = await s.registry.get(kind('Node'), '', 'z1')
  await s.registry.update(kind('Node'), '', 'z1', { ...z1Now, metadata: { ...z1Now.metadata, annotations: {} } }, WRITE)
  await s.advance(1000, ['z5', 'z6'])
  t.equal(s.eviction.zoneState, 'PartialDisruption', '3 of 5 counted nodes NotReady again')
  // Everyone speaks again.
  await s.advance(2000, ['z1', 'z3', 'z4', 'z5', 'z6'])
  t.equal(s.eviction.zoneState, 'Normal', 'no node NotReady')
})

t.test('evictions pause while most nodes are silent at once, with events, and resume when they are back', async (t) => {
  const s = await setup(t, {
    nodes: ['n1', 'n2', 'n3', 'n4', 'n5'],
    pods: [
      { name: 'p1', node: 'n1' },
      { name: 'p2', node: 'n2' },
      { name: 'p3', node: 'n3' },
    ],
  })
  // 3 of 5 nodes (60%, at least 3) fall silent: the hub is more likely cut off than they.
  await s.advance(GRACE_MS + 2000, ['n4', 'n5'])
  t.equal(s.eviction.zoneState, 'PartialDisruption')
  await s.advance(60_000, ['n4', 'n5'])
  t.same(await s.podNames(), ['p1', 'p2', 'p3'], 'no pod evicted long past its toleration')
  const paused = await s.events('EvictionsPaused')
  t.same(paused.map((e: any) => e.involvedObject.name).sort(), ['n1', 'n2', 'n3'], 'each silent node says why its pods stay')
  t.match(paused[0].message, /^Pod eviction paused: 3 of 5 nodes are NotReady/)
  // Two come back: one silent node of five is an ordinary failure again.
  await s.advance(2000, ['n2', 'n3', 'n4', 'n5'])
  t.equal(s.eviction.zoneState, 'Normal')
  t.same(await s.podNames(), ['p2', 'p3'], 'the pod of the node still silent is evicted at once, its toleration long past')
  const resumed = (await s.events('EvictionsResumed')).map((e: any) => e.involvedObject.name)
  t.ok(resumed.includes('n1'), 'resumed, said on the nodes NotReady at that moment')
})

t.test('after a hub start nothing is evicted for a grace period: a node still tainted from before has time to speak', async (t) => {
  const s = await setup(t, {
    // Left by the previous hub run: both marked unreachable ten minutes ago, tolerations long past.
    nodes: [{ name: 'back', unreachableForMs: 600_000 }, { name: 'dead', unreachableForMs: 600_000 }, 'n3', 'n4'],
    pods: [
      { name: 'on-back', node: 'back' },
      { name: 'on-dead', node: 'dead' },
    ],
  })
  await s.advance(GRACE_MS - 2000, ['back', 'n3', 'n4'])
  t.same(await s.podNames(), ['on-back', 'on-dead'], 'nothing evicted during the fresh grace period')
  t.notOk((await s.registry.get(kind('Node'), '', 'back')).spec?.taints, 'the node that spoke lost its taint')
  await s.advance(4000, ['back', 'n3', 'n4'])
  t.same(await s.podNames(), ['on-back'], 'after it, only the pod of the node that stayed silent is evicted')
})

t.test('at most --node-eviction-rate nodes per second start losing their pods', async (t) => {
  const s = await setup(t, {
    nodes: ['a', 'b', 'c', 'd', 'e'],
    pods: [
      { name: 'on-a', node: 'a' },
      { name: 'on-b', node: 'b' },
    ],
    ratePerSecond: 0.1,
  })
  const all = ['a', 'b', 'c', 'd', 'e']
  await s.advance(GRACE_MS + 1000, all)
  for (const name of ['a', 'b']) {
    const node = await s.registry.get(kind('Node'), '', name)
    await s.registry.update(kind('Node'), '', name, { ...node, spec: { taints: [{ key: 'example.com/drain', effect: 'NoExecute' }] } }, WRITE)
  }
  await s.settle()
  t.equal((await s.podNames()).length, 1, 'one node at once')
  await s.advance(5000, all)
  t.equal((await s.podNames()).length, 1, 'the next not within 10 s')
  await s.advance(6000, all)
  t.same(await s.podNames(), [], 'the second node 10 s later')
})

t.test('the zone rules and eviction times as pure functions', async (t) => {
  const node = (name: string, ready: boolean, extra: Partial<KubeObject['metadata']> = {}): KubeObject => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, ...extra },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'Unknown' }] },
  })
  const cluster = (ready: number, notReady: number) => [...Array(ready)].map((_, i) => node(`r${i}`, true)).concat([...Array(notReady)].map((_, i) => node(`x${i}`, false)))
  t.equal(zoneState(cluster(0, 1), 0.55).state, 'FullDisruption', 'a one-node cluster whose node is silent: nowhere to go')
  t.equal(zoneState(cluster(1, 1), 0.55).state, 'Normal', 'one of two silent: evict')
  t.equal(zoneState(cluster(1, 2), 0.55).state, 'Normal', 'two of three: fewer than 3 NotReady')
  t.equal(zoneState(cluster(2, 3), 0.55).state, 'PartialDisruption', '3 of 5 is 60%')
  t.equal(zoneState(cluster(3, 3), 0.55).state, 'Normal', '3 of 6 is 50%')
  t.equal(zoneState([...cluster(1, 0), node('boat', false, { annotations: { [AUTONOMOUS_ANNOTATION]: 'true' } })], 0.55).state, 'Normal', 'autonomous nodes are not counted')

  const now = Date.parse('2026-01-01T00:10:00Z')
  const added = () => now - 10_000
  const pod = (tolerations: unknown[]): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { tolerations } })
  const taint = { key: UNREACHABLE, effect: 'NoExecute' }
  t.equal(evictionTimeMs(pod([]), [taint], added, now), now, 'not tolerated: now')
  t.equal(evictionTimeMs(pod([{ operator: 'Exists' }]), [taint], added, now), undefined, 'tolerates everything for good')
  t.equal(evictionTimeMs(pod([{ key: UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 30 }]), [taint], added, now), now + 20_000, 'timeAdded + 30 s')
  t.equal(evictionTimeMs(pod([{ key: UNREACHABLE, operator: 'Equal', value: 'x', effect: 'NoExecute' }]), [taint], added, now), now, 'a value that does not match does not tolerate')
})
