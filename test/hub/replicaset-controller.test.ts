// The ReplicaSet controller against a real LMDB store: pods made, replaced, removed, and counted.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
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
  const dir = mkdtempSync(join(tmpdir(), 'bramble-rs-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const pods = new Informer(registry, kind('Pod'))
  const replicaSets = new Informer(registry, kind('ReplicaSet'))
  const controller = new ReplicaSetController({ registry, pods, replicaSets, events: new EventRecorder(registry, systemClock, silentLogger(), { component: 'replicaset-controller' }), clock: systemClock, logger: silentLogger() })
  const collector = new GarbageCollector({ registry, informers: [pods, replicaSets], clock: systemClock, logger: silentLogger() })
  await pods.start()
  await replicaSets.start()
  controller.start()
  collector.start()
  t.teardown(async () => {
    await collector.stop()
    await controller.stop()
    pods.stop()
    replicaSets.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const owned = async (rs: string) => (await registry.list(kind('Pod'), 'default')).items.filter((p: KubeObject) => controllerOf(p)?.name === rs && !p.metadata.deletionTimestamp)
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 10_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return { registry, owned, until, store }
}

function replicaSet(name: string, replicas: number): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } },
  }
}

t.test('makes the pods a ReplicaSet asks for, owned by it, and counts them', async (t) => {
  const { registry, owned, until } = await setup(t)
  await registry.create(kind('ReplicaSet'), 'default', replicaSet('web', 3), WRITE)
  await until('3 pods exist', async () => (await owned('web')).length === 3)
  const pods = await owned('web')
  for (const p of pods) {
    t.match(p.metadata.name, /^web-[a-z0-9]{5}$/)
    t.equal(p.metadata.labels?.app, 'web')
    t.match(controllerOf(p), { kind: 'ReplicaSet', name: 'web', controller: true })
  }
  await until('status counts them', async () => (await registry.get(kind('ReplicaSet'), 'default', 'web')).status?.replicas === 3)
  const rs = await registry.get(kind('ReplicaSet'), 'default', 'web')
  t.equal(rs.status.observedGeneration, 1)
  t.equal(rs.status.readyReplicas, 0)
})

t.test('replaces a deleted pod and removes extras when scaled down', async (t) => {
  const { registry, owned, until } = await setup(t)
  await registry.create(kind('ReplicaSet'), 'default', replicaSet('api', 2), WRITE)
  await until('2 pods exist', async () => (await owned('api')).length === 2)
  const [first] = await owned('api')
  await registry.delete(kind('Pod'), 'default', first.metadata.name!, { dryRun: false })
  await until('a replacement exists', async () => {
    const now = await owned('api')
    return now.length === 2 && !now.some((p) => p.metadata.name === first.metadata.name)
  })
  const rs = await registry.get(kind('ReplicaSet'), 'default', 'api')
  await registry.update(kind('ReplicaSet'), 'default', 'api', { ...rs, spec: { ...rs.spec, replicas: 1 } }, WRITE)
  await until('one pod is left', async () => (await owned('api')).length === 1)
  await new Promise((r) => setTimeout(r, 200))
  t.equal((await owned('api')).length, 1, 'and stays one')
})

t.test('does nothing when the pods are already there', async (t) => {
  const { registry, owned, until, store } = await setup(t)
  await registry.create(kind('ReplicaSet'), 'default', replicaSet('calm', 2), WRITE)
  await until('settled', async () => (await owned('calm')).length === 2 && (await registry.get(kind('ReplicaSet'), 'default', 'calm')).status?.replicas === 2)
  const before = await store.revision()
  await new Promise((r) => setTimeout(r, 300))
  t.equal(await store.revision(), before, 'no write while nothing changes')
})

t.test('a deleted ReplicaSet takes its pods with it (through the garbage collector)', async (t) => {
  const { registry, owned, until } = await setup(t)
  await registry.create(kind('ReplicaSet'), 'default', replicaSet('gone', 2), WRITE)
  await until('2 pods exist', async () => (await owned('gone')).length === 2)
  await registry.delete(kind('ReplicaSet'), 'default', 'gone', { dryRun: false })
  await until('its pods are gone', async () => (await owned('gone')).length === 0)
  t.pass('no pod outlives its ReplicaSet')
})

t.test('a large ReplicaSet gets exactly its replicas (created in growing batches, never more), each with its SuccessfulCreate Event', async (t) => {
  const { registry, owned } = await setup(t)
  await registry.create(kind('ReplicaSet'), 'default', replicaSet('fleet', 600), WRITE)
  const deadline = Date.now() + 180_000
  while ((await registry.get(kind('ReplicaSet'), 'default', 'fleet')).status?.replicas !== 600) {
    if (Date.now() > deadline) throw new Error('timed out waiting for 600 pods counted')
    await new Promise((r) => setTimeout(r, 100))
  }
  const pods = await owned('fleet')
  t.equal(pods.length, 600, 'no more, no fewer')
  t.equal(new Set(pods.map((p) => p.metadata.name)).size, 600, 'every name its own')
  const events = (await registry.list(kind('Event'), 'default')).items.filter((e: any) => e.reason === 'SuccessfulCreate' && e.involvedObject?.name === 'fleet')
  t.equal(events.length, 600, 'one Event per pod made')
})
