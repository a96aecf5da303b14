// Nodes that recover keep their pods, on a real LMDB store, Registry, Informers, node lifecycle and
// status intake with a fake clock. A NoExecute taint that goes away before a pod's toleration runs
// out never evicts the pod: the deadline timer set when the taint appeared only says "look again",
// and the controller looks at the node as it is now. That holds when the removal is acknowledged
// in the same tick as the deadline, and a taint removed and added again counts from its new
// timeAdded (or, without one, from when it was seen again). An agent that stops cleanly (presence
// offline with agentStopped) starts no countdown: its node is judged by its silence, unlike one
// whose Last Will arrives.

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
import { NodeLifecycle, UNREACHABLE_TAINT_KEY } from '../../src/hub/node-lifecycle.js'
import { NodeStatusIntake } from '../../src/hub/node-status-intake.js'
import { encodeMessage, upTopic, type PresenceMessage } from '../../src/api/protocol.js'
import { rfc3339, Registry } from '../../src/hub/registry.js'
import type { Store } from '../../src/hub/store.js'
import { TaintEvictionController, type Taint } from '../../src/hub/taint-eviction-controller.js'
import { silentLogger } from '../../src/lib/logger.js'
import { FakeClock } from '../agent/fake-clock.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const POD = KINDS.find((k) => k.kind === 'Pod')!
const EVENT = KINDS.find((k) => k.kind === 'Event')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }
const GRACE_MS = 20_000
const MAINTENANCE = 'example.com/maintenance'

/** A toleration of the taint key, for `seconds` or for good. */
const tolerating = (key: string, seconds?: number) => ({ key, operator: 'Exists', effect: 'NoExecute', ...(seconds === undefined ? {} : { tolerationSeconds: seconds }) })

async function setup(t: Test, pods: Array<{ name: string; tolerations: unknown[] }>) {
  const dir = mkdtempSync(join(tmpdir(), 'ev-taint-removal-'))
  const store: Store = await openLmdbStore({ path: join(dir, 'store') })
  const clock = new FakeClock()
  const logger = silentLogger()
  const registry = new Registry(store, clock, logger)
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  for (const name of ['n1', 'n2', 'n3']) {
    await registry.create(NODE, '', { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec: {}, status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] } }, WRITE)
  }
  for (const p of pods) {
    await registry.create(POD, 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name: p.name }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox:1' }], tolerations: p.tolerations } }, WRITE)
  }
  const nodes = new Informer(registry, NODE)
  const podInformer = new Informer(registry, POD)
  const heartbeats = new Heartbeats()
  // The lifecycle reads its own informer, as in the hub (the node gateway's): its writes reach the
  // eviction controller's informer only through the store's watch.
  const lifecycleNodes = new Informer(registry, NODE)
  const lifecycle = new NodeLifecycle({ registry, nodes: lifecycleNodes, heartbeats, clock, logger, gracePeriodMs: GRACE_MS })
  // What the node gateway wires: the messages nodes send up, as the broker hands them over.
  const intake = new NodeStatusIntake({
    registry,
    pods: podInformer,
    nodes: lifecycleNodes,
    heartbeats,
    clock,
    logger,
    onSync: () => {},
    onAck: () => {},
    onRpcReply: () => {},
    onAlive: (node) => lifecycle.onMessage(node),
    onOffline: (node) => lifecycle.onOffline(node),
  })
  const eviction = new TaintEvictionController({
    registry,
    pods: podInformer,
    nodes,
    events: new EventRecorder(registry, clock, logger, { component: 'taint-eviction-controller' }),
    clock,
    logger,
    startupHoldMs: GRACE_MS,
    nodeEvictionRatePerSecond: 100,
  })
  await nodes.start()
  await podInformer.start()
  await lifecycleNodes.start()
  lifecycle.start()
  eviction.start()
  t.teardown(async () => {
    await eviction.stop()
    await lifecycle.stop()
    nodes.stop()
    podInformer.stop()
    lifecycleNodes.stop()
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
  const advance = async (ms: number, speaking: string[] = ['n1', 'n2', 'n3']) => {
    for (let done = 0; done < ms; done += 1000) {
      for (const n of speaking) {
        heartbeats.seen(n, clock.monotonic())
        lifecycle.onMessage(n)
      }
      clock.advance(Math.min(1000, ms - done))
      await settle()
    }
  }
  /** Replaces n1's NoExecute taints (a kubectl taint / untaint). */
  const setTaints = async (taints: Taint[]) => {
    const node = await registry.get(NODE, '', 'n1')
    await registry.update(NODE, '', 'n1', { ...node, spec: { ...node.spec, taints } }, WRITE)
  }
  /** n1's agent says it is online (or stopping, or its Last Will) and where its replica is. */
  const presence = async (message: PresenceMessage) => {
    intake.handle(upTopic('n1', 'presence'), encodeMessage(message))
    if (message.online) intake.handle(upTopic('n1', 'sync'), encodeMessage({ revision: 0 }))
    await settle()
  }
  /** When n1 was tainted unreachable, if it is. */
  const unreachableSince = async () => {
    const taint = ((await registry.get(NODE, '', 'n1')).spec?.taints ?? []).find((x: Taint) => x.key === UNREACHABLE_TAINT_KEY)
    return taint ? Date.parse(taint.timeAdded) : undefined
  }
  const podNames = async () => (await registry.list(POD, 'default')).items.map((p: KubeObject) => p.metadata.name!).sort()
  const evictions = async () => (await registry.list(EVENT, 'default')).items.filter((e: any) => e.reason === 'TaintManagerEviction').length
  // Past the start-up hold, every node alive and untainted.
  await advance(GRACE_MS + 1000)
  return { registry, clock, advance, settle, setTaints, presence, unreachableSince, podNames, evictions }
}

t.test('a taint removed before the toleration runs out evicts nothing, then or ever', async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(MAINTENANCE, 30)] }])
  await s.setTaints([{ key: MAINTENANCE, effect: 'NoExecute', timeAdded: rfc3339(s.clock.now()) }])
  await s.advance(20_000)
  t.same(await s.podNames(), ['p'], 'tolerated for now')
  await s.setTaints([])
  await s.settle()
  await s.advance(120_000)
  t.same(await s.podNames(), ['p'], 'still there long after the deadline the taint had set')
  t.equal(await s.evictions(), 0, 'no TaintManagerEviction event')
})

t.test('a removal acknowledged in the same tick as the deadline wins', async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(MAINTENANCE, 30)] }])
  const added = s.clock.now()
  await s.setTaints([{ key: MAINTENANCE, effect: 'NoExecute', timeAdded: rfc3339(added) }])
  await s.advance(29_000)
  s.clock.advance(added + 30_000 - 1 - s.clock.now())
  await s.settle()
  // The removal is acknowledged, then the deadline timer fires with no turn of the event loop between.
  await s.setTaints([])
  s.clock.advance(1)
  await s.settle()
  await s.advance(60_000)
  t.same(await s.podNames(), ['p'], 'the pod stays')
  t.equal(await s.evictions(), 0, 'no TaintManagerEviction event')
})

t.test('a taint removed and added again counts from its new timeAdded', async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(MAINTENANCE, 30)] }])
  const first = s.clock.now()
  await s.setTaints([{ key: MAINTENANCE, effect: 'NoExecute', timeAdded: rfc3339(first) }])
  await s.advance(20_000)
  await s.setTaints([])
  await s.settle()
  await s.advance(5_000)
  const second = s.clock.now()
  await s.setTaints([{ key: MAINTENANCE, effect: 'NoExecute', timeAdded: rfc3339(second) }])
  await s.settle()
  await s.advance(first + 40_000 - s.clock.now())
  t.same(await s.podNames(), ['p'], "past the first taint's deadline the pod stays")
  await s.advance(second + 28_000 - s.clock.now())
  t.same(await s.podNames(), ['p'], "and 28 s into the second taint's")
  await s.advance(second + 31_000 - s.clock.now())
  t.same(await s.podNames(), [], "gone once the second taint's 30 s are up")
  t.equal(await s.evictions(), 1, 'one TaintManagerEviction event')
})

t.test('a taint without timeAdded, removed and added again, counts from when it was seen again', async (t) => {
  // A second taint tolerated for good keeps the node tainted throughout, so nothing is forgotten
  // for lack of any NoExecute taint.
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(MAINTENANCE, 30), tolerating('example.com/dedicated')] }])
  const dedicated: Taint = { key: 'example.com/dedicated', effect: 'NoExecute' }
  await s.setTaints([dedicated, { key: MAINTENANCE, effect: 'NoExecute' }])
  await s.settle()
  await s.advance(20_000)
  await s.setTaints([dedicated])
  await s.settle()
  await s.advance(5_000)
  const second = s.clock.now()
  await s.setTaints([dedicated, { key: MAINTENANCE, effect: 'NoExecute' }])
  await s.settle()
  await s.advance(second + 28_000 - s.clock.now())
  t.same(await s.podNames(), ['p'], 'the first sighting is forgotten: 28 s into the second the pod stays')
  await s.advance(second + 31_000 - s.clock.now())
  t.same(await s.podNames(), [], 'gone once 30 s from the second sighting are up')
})

t.test('a node back before its unreachable toleration runs out keeps its pod', async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(UNREACHABLE_TAINT_KEY, 30)] }])
  await s.advance(GRACE_MS + 2000, ['n2', 'n3'])
  const n1 = await s.registry.get(NODE, '', 'n1')
  const taint = (n1.spec?.taints ?? []).find((x: Taint) => x.key === UNREACHABLE_TAINT_KEY)
  t.ok(taint?.timeAdded, 'silent n1 is tainted unreachable')
  await s.advance(Date.parse(taint.timeAdded) + 28_000 - s.clock.now(), ['n2', 'n3'])
  await s.advance(1000) // n1 speaks again two seconds before the deadline
  t.notOk((await s.registry.get(NODE, '', 'n1')).spec?.taints, 'the taint is gone')
  await s.advance(60_000)
  t.same(await s.podNames(), ['p'], 'the pod stays')
  t.equal(await s.evictions(), 0, 'no TaintManagerEviction event')
})

t.test("an agent's clean goodbye starts no countdown: back within the grace period, its node is never tainted and its pod stays", async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(UNREACHABLE_TAINT_KEY, 2)] }])
  await s.presence({ online: false, at: s.clock.now(), agentStopped: true })
  t.equal(await s.unreachableSince(), undefined, 'not tainted at the goodbye')
  await s.advance(GRACE_MS - 5000, ['n2', 'n3'])
  t.equal(await s.unreachableSince(), undefined, 'nor while silent within the grace period')
  await s.presence({ online: true, at: s.clock.now() })
  await s.advance(60_000)
  t.equal(await s.unreachableSince(), undefined, 'nor after it is back')
  t.same(await s.podNames(), ['p'], 'the pod, tolerating unreachable for 2 s, stays')
  t.equal(await s.evictions(), 0, 'no TaintManagerEviction event')
})

t.test('an agent that says goodbye and stays away: unreachable once silent for the grace period, its pod evicted its toleration later', async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(UNREACHABLE_TAINT_KEY, 2)] }])
  const lastHeard = s.clock.now() - 1000 // advance() let n1 speak at the start of its last second
  await s.presence({ online: false, at: s.clock.now(), agentStopped: true })
  await s.advance(GRACE_MS + 2000, ['n2', 'n3'])
  const since = await s.unreachableSince()
  t.ok(since !== undefined && since >= lastHeard + GRACE_MS, 'tainted unreachable once the grace period after its last message had passed')
  await s.advance(since! + 3000 - s.clock.now(), ['n2', 'n3'])
  t.same(await s.podNames(), [], 'the pod evicted after its 2 s toleration')
})

t.test("a Last Will (the agent's session lost without a goodbye) marks the node unreachable at once", async (t) => {
  const s = await setup(t, [{ name: 'p', tolerations: [tolerating(UNREACHABLE_TAINT_KEY, 2)] }])
  const willAt = s.clock.now()
  await s.presence({ online: false, at: willAt })
  t.equal(await s.unreachableSince(), willAt, 'tainted at once')
  await s.advance(3000, ['n2', 'n3'])
  t.same(await s.podNames(), [], 'the pod evicted 2 s later')
})
