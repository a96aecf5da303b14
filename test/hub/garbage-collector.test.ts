// The garbage collector against a real LMDB store, Registry, Informers and the ReplicaSet and
// Deployment controllers: cascading deletion, orphaning, foreground, and owners that went while
// the hub was down.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { parseDeleteOptions } from '../../src/hub/api-delete-options.js'
import { DeploymentController } from '../../src/hub/deployment-controller.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { GarbageCollector } from '../../src/hub/garbage-collector.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { ReplicaSetController } from '../../src/hub/replicaset-controller.js'
import type { Store } from '../../src/hub/store.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }
const GC_KINDS = ['Pod', 'ReplicaSet', 'Deployment', 'ConfigMap']

/** The hub's controllers and collector on a store; `stop` leaves the store open (a hub going down). */
async function startHubParts(store: Store) {
  const registry = new Registry(store, systemClock, silentLogger())
  const informers = GC_KINDS.map((k) => new Informer(registry, kind(k)))
  const [pods, replicaSets, deployments] = informers
  const events = new EventRecorder(registry, systemClock, silentLogger(), { component: 'test' })
  const rsc = new ReplicaSetController({ registry, pods, replicaSets, events, clock: systemClock, logger: silentLogger() })
  const dc = new DeploymentController({ registry, deployments, replicaSets, events, clock: systemClock, logger: silentLogger() })
  const collector = new GarbageCollector({ registry, informers, clock: systemClock, logger: silentLogger() })
  for (const i of informers) await i.start()
  rsc.start()
  dc.start()
  collector.start()
  return {
    registry,
    collector,
    async stop() {
      await collector.stop()
      await dc.stop()
      await rsc.stop()
      for (const i of informers) i.stop()
    },
  }
}

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-gc-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  let hub = await startHubParts(store)
  t.teardown(async () => {
    await hub.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const registry = new Registry(store, systemClock, silentLogger())
  const list = async (k: string) => (await registry.list(kind(k), 'default')).items
  const of = async (k: string, app: string) => (await list(k)).filter((o: KubeObject) => (o.metadata.labels?.app ?? o.spec?.template?.metadata?.labels?.app) === app)
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 15_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 25))
    }
  }
  return {
    store,
    registry,
    list,
    of,
    until,
    restartHub: async (whileDown: () => Promise<void>) => {
      await hub.stop()
      await whileDown()
      hub = await startHubParts(store)
    },
    hub: () => hub,
  }
}

function deployment(name: string, replicas: number): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: `${name}:1` }] } } },
  }
}

function configMap(name: string, owners: KubeObject[] | Array<{ apiVersion: string; kind: string; name: string; uid: string }>): KubeObject {
  const refs = owners.map((o: any) => ({ apiVersion: o.apiVersion, kind: o.kind, name: o.metadata?.name ?? o.name, uid: o.metadata?.uid ?? o.uid }))
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, ...(refs.length ? { ownerReferences: refs } : {}) }, data: { k: 'v' } }
}

async function deploymentRunning(s: Awaited<ReturnType<typeof setup>>, name: string, replicas: number) {
  await s.registry.create(kind('Deployment'), 'default', deployment(name, replicas), WRITE)
  await s.until(`${name} has a ReplicaSet and ${replicas} pods`, async () => (await s.of('ReplicaSet', name)).length === 1 && (await s.of('Pod', name)).length === replicas)
}

t.test('deleting a Deployment (Background, the default) removes its ReplicaSets and their pods', async (t) => {
  const s = await setup(t)
  await deploymentRunning(s, 'web', 3)
  await deploymentRunning(s, 'other', 1)
  const deleted = await s.registry.delete(kind('Deployment'), 'default', 'web', { dryRun: false, propagationPolicy: 'Background' })
  t.notOk(deleted.metadata.deletionTimestamp, 'the Deployment itself goes at once')
  await s.until('its ReplicaSets and pods are gone', async () => (await s.of('ReplicaSet', 'web')).length === 0 && (await s.of('Pod', 'web')).length === 0)
  t.equal((await s.of('Pod', 'other')).length, 1, "another Deployment's pod is untouched")
  t.equal((await s.of('ReplicaSet', 'other')).length, 1)
})

t.test('Orphan keeps the ReplicaSets and pods and strips the ownerReferences to the deleted Deployment', async (t) => {
  const s = await setup(t)
  await deploymentRunning(s, 'keep', 2)
  const podsBefore = (await s.of('Pod', 'keep')).map((p: KubeObject) => p.metadata.name).sort()
  const marked = await s.registry.delete(kind('Deployment'), 'default', 'keep', { dryRun: false, propagationPolicy: 'Orphan' })
  t.ok(marked.metadata.deletionTimestamp, 'marked for deletion first')
  t.same(marked.metadata.finalizers, ['orphan'])
  await s.until('the Deployment is gone', async () => (await s.of('Deployment', 'keep')).length === 0)
  await s.hub().collector.idle()
  await new Promise((r) => setTimeout(r, 200))
  const [rs] = await s.of('ReplicaSet', 'keep')
  t.ok(rs, 'the ReplicaSet stays')
  t.notOk(rs.metadata.ownerReferences, 'and owns itself now: no reference to the deleted Deployment')
  const pods = await s.of('Pod', 'keep')
  t.same(pods.map((p: KubeObject) => p.metadata.name).sort(), podsBefore, 'the same pods, none replaced')
  for (const p of pods) t.equal(p.metadata.ownerReferences?.[0]?.uid, rs.metadata.uid, 'pods stay owned by the ReplicaSet')
})

t.test('an object with finalizers of its own is only marked when deleted; it goes, and its dependents after it, once they are removed', async (t) => {
  const s = await setup(t)
  const { object: guarded } = await s.registry.create(kind('ConfigMap'), 'default', { ...configMap('guarded', []), metadata: { name: 'guarded', finalizers: ['example.com/hold'] } }, WRITE)
  await s.registry.create(kind('ConfigMap'), 'default', configMap('dependent', [guarded]), WRITE)
  const marked = await s.registry.delete(kind('ConfigMap'), 'default', 'guarded', { dryRun: false })
  t.ok(marked.metadata.deletionTimestamp, 'marked for deletion, Terminating')
  t.same(marked.metadata.finalizers, ['example.com/hold'], 'with its finalizers, none added')
  t.ok(marked.metadata.deletionTimestamp === (await s.registry.delete(kind('ConfigMap'), 'default', 'guarded', { dryRun: false })).metadata.deletionTimestamp, 'deleting it again changes nothing')
  await s.hub().collector.idle()
  await new Promise((r) => setTimeout(r, 200))
  t.same((await s.list('ConfigMap')).map((c: KubeObject) => c.metadata.name).sort(), ['dependent', 'guarded'], 'both stay while the finalizer does')

  const current = await s.registry.get(kind('ConfigMap'), 'default', 'guarded')
  const { object: released } = await s.registry.update(kind('ConfigMap'), 'default', 'guarded', { ...current, metadata: { ...current.metadata, finalizers: [] } }, WRITE)
  t.equal(released.metadata.name, 'guarded', 'the update that removes the last finalizer answers the object it deleted')
  await s.until('both gone', async () => (await s.list('ConfigMap')).length === 0)
  t.pass('the object went with its last finalizer, and its dependent after it')

  // A pod is the exception: its node stops it as it goes, and would not stop one that stays.
  await s.registry.create(kind('Pod'), 'default', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'held', finalizers: ['example.com/hold'] }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } }, WRITE)
  await s.registry.delete(kind('Pod'), 'default', 'held', { dryRun: false })
  t.notOk((await s.list('Pod')).some((p: KubeObject) => p.metadata.name === 'held'), 'a pod with a finalizer is deleted at once')
})

t.test('Foreground deletes the pods, then the ReplicaSets, then the Deployment', async (t) => {
  const s = await setup(t)
  await deploymentRunning(s, 'fg', 2)
  const deletions: Array<{ revision: number; kind: string }> = []
  const from = await s.store.revision()
  for (const resource of ['pods', 'apps/replicasets', 'apps/deployments']) {
    const watch = s.store.watch({ resource }, from, (e) => {
      if (e.type === 'DELETED') deletions.push({ revision: e.revision, kind: e.object.kind })
    })
    t.teardown(() => watch.stop())
  }
  const marked = await s.registry.delete(kind('Deployment'), 'default', 'fg', { dryRun: false, propagationPolicy: 'Foreground' })
  t.same(marked.metadata.finalizers, ['foregroundDeletion'])
  await s.until('everything is gone', async () => (await s.of('Deployment', 'fg')).length === 0)
  t.same((await s.of('Pod', 'fg')).length + (await s.of('ReplicaSet', 'fg')).length, 0)
  const order = deletions.sort((x, y) => x.revision - y.revision).map((d) => d.kind)
  t.same(order, ['Pod', 'Pod', 'ReplicaSet', 'Deployment'], 'dependents first, owner last')
})

t.test('dependents whose owner was deleted while the hub was down are collected at start', async (t) => {
  const s = await setup(t)
  await deploymentRunning(s, 'late', 2)
  await deploymentRunning(s, 'stays', 1)
  await s.restartHub(async () => {
    // The hub is down: nothing watches while the Deployment goes.
    await s.store.delete({ resource: 'apps/deployments', namespace: 'default', name: 'late' })
  })
  await s.until('its ReplicaSet and pods are collected', async () => (await s.of('ReplicaSet', 'late')).length === 0 && (await s.of('Pod', 'late')).length === 0)
  t.equal((await s.of('Pod', 'stays')).length, 1, 'objects whose owners exist stay')
})

t.test('an object with two owners loses only the reference to the deleted one, and goes with the last', async (t) => {
  const s = await setup(t)
  const { object: a } = await s.registry.create(kind('ConfigMap'), 'default', configMap('a', []), WRITE)
  const { object: b } = await s.registry.create(kind('ConfigMap'), 'default', configMap('b', []), WRITE)
  await s.registry.create(kind('ConfigMap'), 'default', configMap('child', [a, b]), WRITE)
  await s.registry.delete(kind('ConfigMap'), 'default', 'a', { dryRun: false })
  await s.until('the reference to a is dropped', async () => (await s.registry.get(kind('ConfigMap'), 'default', 'child')).metadata.ownerReferences?.length === 1)
  t.equal((await s.registry.get(kind('ConfigMap'), 'default', 'child')).metadata.ownerReferences![0].name, 'b')
  await s.registry.delete(kind('ConfigMap'), 'default', 'b', { dryRun: false })
  await s.until('child goes with its last owner', async () => !(await s.list('ConfigMap')).some((c: KubeObject) => c.metadata.name === 'child'))
  t.pass()
})

t.test('leaves alone objects whose owners exist or are of a kind Bramble does not serve', async (t) => {
  const s = await setup(t)
  const { object: owner } = await s.registry.create(kind('ConfigMap'), 'default', configMap('owner', []), WRITE)
  await s.registry.create(kind('ConfigMap'), 'default', configMap('owned', [owner]), WRITE)
  await s.registry.create(kind('ConfigMap'), 'default', configMap('foreign', [{ apiVersion: 'example.com/v1', kind: 'Widget', name: 'w', uid: '3f1c7d6e-0000-4000-8000-000000000001' }]), WRITE)
  await s.restartHub(async () => {})
  await s.hub().collector.idle()
  await new Promise((r) => setTimeout(r, 200))
  const names = (await s.list('ConfigMap')).map((c: KubeObject) => c.metadata.name).sort()
  t.same(names, ['foreign', 'owned', 'owner'], 'nothing deleted')
})

t.test('DeleteOptions: propagationPolicy from the query or the body, bad values refused naming the field', async (t) => {
  const q = (s: string) => new URLSearchParams(s)
  const body = (o: unknown) => Buffer.from(JSON.stringify(o))
  t.equal(parseDeleteOptions(Buffer.alloc(0), q('propagationPolicy=Orphan'), false).propagationPolicy, 'Orphan')
  t.equal(parseDeleteOptions(body({ kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy: 'Foreground' }), q(''), false).propagationPolicy, 'Foreground')
  t.equal(parseDeleteOptions(body({ orphanDependents: true }), q(''), false).propagationPolicy, 'Orphan', 'the deprecated orphanDependents')
  t.equal(parseDeleteOptions(Buffer.alloc(0), q(''), false).propagationPolicy, undefined, 'none given: the registry deletes in the background')
  t.throws(() => parseDeleteOptions(Buffer.alloc(0), q('propagationPolicy=Cascade'), false), { httpStatus: 400, message: /^propagationPolicy: Unsupported value: "Cascade"/ })
  t.throws(() => parseDeleteOptions(body({ propagationPolicy: 7 }), q(''), false), { message: /^propagationPolicy: Unsupported value: 7/ })
  t.throws(() => parseDeleteOptions(body({ orphanDependents: 'yes' }), q(''), false), { message: /^orphanDependents: Invalid value/ })
})
