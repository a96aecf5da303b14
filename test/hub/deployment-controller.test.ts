// The Deployment controller with the ReplicaSet controller against a real LMDB store. No agent runs
// here: the test plays the kubelet's part by marking pods Ready, so the rollout logic is exercised
// quickly; end-to-end rollouts with real agents belong to the e2e suite.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { DeploymentController, resolveRollingBounds, REVISION_ANNOTATION } from '../../src/hub/deployment-controller.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { GarbageCollector } from '../../src/hub/garbage-collector.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { ReplicaSetController, controllerOf } from '../../src/hub/replicaset-controller.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-deploy-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const events = new EventRecorder(registry, systemClock, silentLogger(), { component: 'test' })
  const pods = new Informer(registry, kind('Pod'))
  const replicaSets = new Informer(registry, kind('ReplicaSet'))
  const deployments = new Informer(registry, kind('Deployment'))
  const rsc = new ReplicaSetController({ registry, pods, replicaSets, events, clock: systemClock, logger: silentLogger() })
  const dc = new DeploymentController({ registry, deployments, replicaSets, events, clock: systemClock, logger: silentLogger() })
  const collector = new GarbageCollector({ registry, informers: [pods, replicaSets, deployments], clock: systemClock, logger: silentLogger() })
  for (const i of [pods, replicaSets, deployments]) await i.start()
  rsc.start()
  dc.start()
  collector.start()
  let kubelet = true
  // The kubelet's part: every pod becomes Ready shortly after it appears.
  const playKubelet = (async () => {
    while (kubelet) {
      for (const p of (await registry.list(kind('Pod'), 'default')).items) {
        if ((p.status?.conditions ?? []).some((c: any) => c.type === 'Ready')) continue
        const status = { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] }
        await registry.update(kind('Pod'), 'default', p.metadata.name!, { ...p, status }, WRITE, 'status').catch(() => undefined)
      }
      await new Promise((r) => setTimeout(r, 30))
    }
  })()
  t.teardown(async () => {
    kubelet = false
    await playKubelet
    await collector.stop()
    await dc.stop()
    await rsc.stop()
    for (const i of [pods, replicaSets, deployments]) i.stop()
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
  const replicaSetsOf = async (name: string) => (await registry.list(kind('ReplicaSet'), 'default')).items.filter((rs: KubeObject) => controllerOf(rs)?.name === name)
  const readyPodsWithImage = async (image: string) =>
    (await registry.list(kind('Pod'), 'default')).items.filter((p: KubeObject) => p.spec.containers[0].image === image && (p.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True')).length
  return { registry, until, replicaSetsOf, readyPodsWithImage }
}

function deployment(name: string, replicas: number, image: string, strategy?: unknown): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } }, ...(strategy ? { strategy } : {}), template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image }] } } },
  }
}

t.test('resolves maxSurge up and maxUnavailable down, as Kubernetes rounds them', async (t) => {
  t.same(resolveRollingBounds(3, undefined), { maxSurge: 1, maxUnavailable: 0 })
  t.same(resolveRollingBounds(4, { rollingUpdate: { maxSurge: 0, maxUnavailable: '50%' } }), { maxSurge: 0, maxUnavailable: 2 })
  t.same(resolveRollingBounds(10, { rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } }), { maxSurge: 0, maxUnavailable: 1 })
})

t.test('a new Deployment gets one ReplicaSet with its replicas, revision 1 and a counted status', async (t) => {
  const { registry, until, replicaSetsOf } = await setup(t)
  await registry.create(kind('Deployment'), 'default', deployment('web', 3, 'web:1'), WRITE)
  await until('3 available', async () => (await registry.get(kind('Deployment'), 'default', 'web')).status?.availableReplicas === 3)
  const [rs] = await replicaSetsOf('web')
  t.match(rs.metadata.name, /^web-[0-9a-f]{10}$/)
  t.equal(rs.spec.replicas, 3)
  const d = await registry.get(kind('Deployment'), 'default', 'web')
  t.equal(d.metadata.annotations?.[REVISION_ANNOTATION], '1')
  t.equal(d.status.observedGeneration, d.metadata.generation)
  t.equal(d.status.updatedReplicas, 3)
})

/** Read, change, update; again on a conflict (the controller writes status meanwhile), as kubectl does. */
async function changeDeployment(registry: Registry, name: string, change: (d: KubeObject) => void): Promise<void> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const next = structuredClone(await registry.get(kind('Deployment'), 'default', name))
    change(next)
    try {
      await registry.update(kind('Deployment'), 'default', name, next, WRITE)
      return
    } catch (err) {
      if ((err as { httpStatus?: number }).httpStatus !== 409) throw err
    }
  }
  throw new Error(`could not update deployment ${name}: conflicts every time`)
}

t.test('a rolling update keeps replicas - maxUnavailable ready pods throughout, and undo by template goes back', async (t) => {
  const { registry, until, replicaSetsOf, readyPodsWithImage } = await setup(t)
  await registry.create(kind('Deployment'), 'default', deployment('api', 3, 'api:1'), WRITE)
  await until('3 ready on v1', async () => (await readyPodsWithImage('api:1')) === 3)
  await changeDeployment(registry, 'api', (d) => (d.spec.template.spec.containers[0].image = 'api:2'))
  let lowest = 3
  await until('3 ready on v2 and none left on v1', async () => {
    const v1 = await readyPodsWithImage('api:1')
    const v2 = await readyPodsWithImage('api:2')
    lowest = Math.min(lowest, v1 + v2)
    return v2 === 3 && v1 === 0
  })
  t.ok(lowest >= 3, `ready pods never fell below replicas - maxUnavailable (lowest seen: ${lowest})`)
  const sets = await replicaSetsOf('api')
  t.equal(sets.length, 2, 'the old ReplicaSet is kept, scaled to zero, for undo')
  await until('revision 2', async () => (await registry.get(kind('Deployment'), 'default', 'api')).metadata.annotations?.[REVISION_ANNOTATION] === '2')
  // Undo: put the old template back; its ReplicaSet becomes revision 3.
  await changeDeployment(registry, 'api', (d) => (d.spec.template.spec.containers[0].image = 'api:1'))
  await until('3 ready on v1 again', async () => (await readyPodsWithImage('api:1')) === 3 && (await readyPodsWithImage('api:2')) === 0)
  t.equal((await replicaSetsOf('api')).length, 2, 'no third ReplicaSet: the old one is reused')
  await until('revision 3', async () => (await registry.get(kind('Deployment'), 'default', 'api')).metadata.annotations?.[REVISION_ANNOTATION] === '3')
})

t.test('Recreate stops the old pods before starting new ones', async (t) => {
  const { registry, until, readyPodsWithImage } = await setup(t)
  await registry.create(kind('Deployment'), 'default', deployment('db', 2, 'db:1', { type: 'Recreate' }), WRITE)
  await until('2 ready on v1', async () => (await readyPodsWithImage('db:1')) === 2)
  let overlap = false
  await changeDeployment(registry, 'db', (d) => (d.spec.template.spec.containers[0].image = 'db:2'))
  await until('2 ready on v2', async () => {
    const pods = (await registry.list(kind('Pod'), 'default')).items
    const images = new Set(pods.filter((p: KubeObject) => controllerOf(p) && p.metadata.labels?.app === 'db').map((p: KubeObject) => p.spec.containers[0].image))
    if (images.has('db:1') && images.has('db:2')) overlap = true
    return (await readyPodsWithImage('db:2')) === 2
  })
  t.notOk(overlap, 'old and new pods never ran together')
})

t.test('deleting a Deployment removes its ReplicaSets and their pods (through the garbage collector)', async (t) => {
  const { registry, until, replicaSetsOf } = await setup(t)
  await registry.create(kind('Deployment'), 'default', deployment('tmp', 2, 'tmp:1'), WRITE)
  await until('a ReplicaSet exists', async () => (await replicaSetsOf('tmp')).length === 1)
  await registry.delete(kind('Deployment'), 'default', 'tmp', { dryRun: false })
  await until('its ReplicaSets and pods are gone', async () => {
    const pods = (await registry.list(kind('Pod'), 'default')).items.filter((p: KubeObject) => p.metadata.labels?.app === 'tmp')
    return (await replicaSetsOf('tmp')).length === 0 && pods.length === 0
  })
  t.pass('nothing of it is left')
})

t.test('a template hash ignores key order, empty values and the hash label, so undo finds the old ReplicaSet', async (t) => {
  const { templateHash } = await import('../../src/hub/deployment-controller.js')
  const a = { metadata: { labels: { app: 'x' } }, spec: { containers: [{ name: 'c', image: 'i' }] } }
  const b = { spec: { containers: [{ image: 'i', name: 'c', resources: {} }] }, metadata: { creationTimestamp: null, labels: { 'pod-template-hash': templateHash(a), app: 'x' } } }
  t.equal(templateHash(b), templateHash(a))
  t.not(templateHash({ ...a, spec: { containers: [{ name: 'c', image: 'j' }] } }), templateHash(a), 'a changed image is a new template')
})
