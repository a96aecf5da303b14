// The StatefulSet controller against a real LMDB store, Registry, Informers and garbage collector;
// the test plays the kubelet (it marks pods Running and Ready).

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
import { PvcProtection } from '../../src/hub/pvc-protection.js'
import { Registry } from '../../src/hub/registry.js'
import { controllerOf } from '../../src/hub/replicaset-controller.js'
import { getScale, updateScale } from '../../src/hub/scale.js'
import { REVISION_LABEL, StatefulSetController } from '../../src/hub/statefulset-controller.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }
const POD = kind('Pod')
const STS = kind('StatefulSet')
const PVC = kind('PersistentVolumeClaim')

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'sts-ctrl-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const pods = new Informer(registry, POD)
  const statefulSets = new Informer(registry, STS)
  const claims = new Informer(registry, PVC)
  const controller = new StatefulSetController({ registry, pods, statefulSets, claims, events: new EventRecorder(registry, systemClock, silentLogger(), { component: 'statefulset-controller' }), clock: systemClock, logger: silentLogger() })
  const collector = new GarbageCollector({ registry, informers: [pods, statefulSets, claims], clock: systemClock, logger: silentLogger() })
  // A deleted claim goes once no pod bound to a node uses it (these pods are never bound).
  const protection = new PvcProtection({ registry, pods, claims, clock: systemClock, logger: silentLogger() })
  for (const i of [pods, statefulSets, claims]) await i.start()
  controller.start()
  collector.start()
  protection.start()
  t.teardown(async () => {
    await protection.stop()
    await collector.stop()
    await controller.stop()
    for (const i of [pods, statefulSets, claims]) i.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const podNames = async (set: string) =>
    (await registry.list(POD, 'default')).items
      .filter((p: KubeObject) => controllerOf(p)?.name === set)
      .map((p: KubeObject) => p.metadata.name!)
      .sort()
  const claimNames = async () => (await registry.list(PVC, 'default')).items.map((c: KubeObject) => c.metadata.name!).sort()
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 15_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  /** What the kubelet would report: the pod runs and is ready. */
  const markReady = async (name: string) => {
    const pod = await registry.get(POD, 'default', name)
    await registry.update(POD, 'default', name, { ...pod, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] } }, WRITE, 'status')
  }
  const status = async (name: string) => (await registry.get(STS, 'default', name)).status ?? {}
  /** Changes the set's spec as a person would, reading again when the controller's status write came first. */
  const changeSpec = async (name: string, change: (spec: any) => void) => {
    for (;;) {
      const sts = await registry.get(STS, 'default', name)
      const spec = structuredClone(sts.spec)
      change(spec)
      try {
        return await registry.update(STS, 'default', name, { ...sts, spec }, WRITE)
      } catch (err) {
        if ((err as { httpStatus?: number }).httpStatus !== 409) throw err
      }
    }
  }
  return { registry, podNames, claimNames, until, markReady, status, changeSpec }
}

function statefulSet(name: string, replicas: number, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      ...extra,
    },
  }
}

t.test('OrderedReady: db-0 first, db-1 only once db-0 is Running and Ready, each with its own claim', async (t) => {
  const { registry, podNames, claimNames, until, markReady, status } = await setup(t)
  await registry.create(STS, 'default', statefulSet('db', 2), WRITE)
  await until('db-0 exists', async () => (await podNames('db')).includes('db-0'))
  // Not ready yet: no db-1, however long we look.
  await until('status counts db-0', async () => (await status('db')).replicas === 1)
  t.same(await podNames('db'), ['db-0'])
  t.same(await claimNames(), ['data-db-0'])

  const pod0 = await registry.get(POD, 'default', 'db-0')
  t.same(pod0.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }])
  t.equal(pod0.spec.hostname, 'db-0')
  t.equal(pod0.spec.subdomain, 'db')
  t.equal(pod0.metadata.labels?.['statefulset.kubernetes.io/pod-name'], 'db-0')
  t.equal(pod0.metadata.labels?.['apps.kubernetes.io/pod-index'], '0')
  const claim0 = await registry.get(PVC, 'default', 'data-db-0')
  t.equal(claim0.metadata.ownerReferences, undefined, 'Retain: the claim has no owner, so nothing collects it')
  t.equal(claim0.metadata.labels?.app, 'db')

  await markReady('db-0')
  await until('db-1 exists', async () => (await podNames('db')).length === 2)
  t.same(await claimNames(), ['data-db-0', 'data-db-1'])
  await markReady('db-1')
  await until('both ready in status', async () => (await status('db')).readyReplicas === 2)
  const s = await status('db')
  t.equal(s.replicas, 2)
  t.equal(s.currentReplicas, 2)
  t.equal(s.updatedReplicas, 2)
  t.equal(s.currentRevision, s.updateRevision)
  t.equal(s.observedGeneration, 1)
})

t.test('a deleted pod comes back with the same name and the same claim', async (t) => {
  const { registry, podNames, claimNames, until, markReady } = await setup(t)
  await registry.create(STS, 'default', statefulSet('db', 1), WRITE)
  await until('db-0 exists', async () => (await podNames('db')).includes('db-0'))
  await markReady('db-0')
  const before = await registry.get(POD, 'default', 'db-0')
  await registry.delete(POD, 'default', 'db-0', { dryRun: false })
  await until('db-0 is back as a new pod', async () => {
    const pod = await registry.get(POD, 'default', 'db-0').catch(() => undefined)
    return pod !== undefined && pod.metadata.uid !== before.metadata.uid
  })
  const after = await registry.get(POD, 'default', 'db-0')
  t.same(after.spec.volumes, before.spec.volumes)
  t.same(await claimNames(), ['data-db-0'])
})

t.test('Parallel scale-down removes every ordinal past replicas at once, keeping the claims', async (t) => {
  const { registry, podNames, claimNames, until, markReady , changeSpec } = await setup(t)
  await registry.create(STS, 'default', statefulSet('db', 3, { podManagementPolicy: 'Parallel' }), WRITE)
  await until('3 pods', async () => (await podNames('db')).length === 3)
  for (const n of ['db-0', 'db-1', 'db-2']) await markReady(n)
  // Through the scale subresource, as `kubectl scale sts/db --replicas=1` does.
  t.match(getScale(STS, await registry.get(STS, 'default', 'db')), { kind: 'Scale', spec: { replicas: 3 }, status: { replicas: 3, selector: 'app=db' } })
  const scale = () => updateScale(registry, STS, 'default', 'db', { kind: 'patch', patch: Buffer.from('{"spec":{"replicas":1}}'), contentType: 'application/merge-patch+json' }, WRITE)
  // The controller's status writes may come between the read and the write: try again, as a client does on 409.
  await until('scaled to 1', () => scale().then(() => true, (err) => (err.httpStatus === 409 ? false : Promise.reject(err))))
  await until('only db-0 is left', async () => (await podNames('db')).join() === 'db-0')
  t.same(await claimNames(), ['data-db-0', 'data-db-1', 'data-db-2'], 'claims stay (whenScaled: Retain)')
})

t.test('OrderedReady scale-down removes db-2 before db-1', async (t) => {
  const { registry, podNames, until, markReady , changeSpec } = await setup(t)
  const web = statefulSet('web', 3, { volumeClaimTemplates: [] })
  delete web.spec.template.spec.containers[0].volumeMounts
  await registry.create(STS, 'default', web, WRITE)
  for (const n of ['web-0', 'web-1', 'web-2']) {
    await until(`${n} exists`, async () => (await podNames('web')).includes(n))
    await markReady(n)
  }
  const seen: string[][] = []
  await changeSpec('web', (spec) => (spec.replicas = 1))
  await until('only web-0 is left', async () => {
    const names = await podNames('web')
    if (seen.at(-1)?.join() !== names.join()) seen.push(names)
    return names.join() === 'web-0'
  })
  t.ok(seen.every((names) => !(names.includes('web-2') && !names.includes('web-1'))), 'web-1 never goes while web-2 is there')
})

t.test('Parallel makes every pod at once', async (t) => {
  const { registry, podNames, until } = await setup(t)
  await registry.create(STS, 'default', statefulSet('cache', 3, { podManagementPolicy: 'Parallel' }), WRITE)
  await until('3 pods without any being ready', async () => (await podNames('cache')).length === 3)
  t.same(await podNames('cache'), ['cache-0', 'cache-1', 'cache-2'])
})

t.test('RollingUpdate replaces from the highest ordinal down to the partition', async (t) => {
  const { registry, podNames, until, markReady, status , changeSpec } = await setup(t)
  await registry.create(STS, 'default', statefulSet('db', 3, { podManagementPolicy: 'Parallel', updateStrategy: { type: 'RollingUpdate', rollingUpdate: { partition: 1 } } }), WRITE)
  await until('3 pods', async () => (await podNames('db')).length === 3)
  for (const n of ['db-0', 'db-1', 'db-2']) await markReady(n)
  await until('all ready', async () => (await status('db')).readyReplicas === 3)
  const oldRevision = (await status('db')).currentRevision
  await changeSpec('db', (spec) => (spec.template.spec.containers[0].image = 'busybox:2'))
  const revisionOf = async (n: string) => (await registry.get(POD, 'default', n).catch(() => undefined))?.metadata.labels?.[REVISION_LABEL]
  await until('db-2 at the new revision', async () => {
    const r = await revisionOf('db-2')
    return r !== undefined && r !== oldRevision
  })
  t.equal(await revisionOf('db-1'), oldRevision, 'db-1 waits until db-2 is ready')
  await markReady('db-2')
  await until('db-1 at the new revision', async () => {
    const r = await revisionOf('db-1')
    return r !== undefined && r !== oldRevision
  })
  await markReady('db-1')
  await until('status: 2 updated', async () => (await status('db')).updatedReplicas === 2 && (await status('db')).readyReplicas === 3)
  t.equal(await revisionOf('db-0'), oldRevision, 'db-0 is below the partition and keeps the old template')
  const s = await status('db')
  t.equal(s.currentRevision, oldRevision)
  t.not(s.updateRevision, oldRevision)
  t.equal((await registry.get(POD, 'default', 'db-0')).spec.containers[0].image, 'busybox:1')
})

t.test('OnDelete leaves old pods until they are deleted', async (t) => {
  const { registry, podNames, until, markReady, status , changeSpec } = await setup(t)
  await registry.create(STS, 'default', statefulSet('db', 1, { updateStrategy: { type: 'OnDelete' } }), WRITE)
  await until('db-0', async () => (await podNames('db')).length === 1)
  await markReady('db-0')
  await changeSpec('db', (spec) => (spec.template.spec.containers[0].image = 'busybox:2'))
  await until('the new generation is observed', async () => (await status('db')).observedGeneration === 2)
  t.equal((await registry.get(POD, 'default', 'db-0')).spec.containers[0].image, 'busybox:1')
  await registry.delete(POD, 'default', 'db-0', { dryRun: false })
  await until('db-0 comes back at the new template', async () => (await registry.get(POD, 'default', 'db-0').catch(() => undefined))?.spec.containers[0].image === 'busybox:2')
})

t.test('deleting the StatefulSet deletes its pods and keeps its claims', async (t) => {
  const { registry, podNames, claimNames, until } = await setup(t)
  await registry.create(STS, 'default', statefulSet('db', 2, { podManagementPolicy: 'Parallel' }), WRITE)
  await until('2 pods', async () => (await podNames('db')).length === 2)
  await registry.delete(STS, 'default', 'db', { dryRun: false })
  await until('pods collected', async () => (await podNames('db')).length === 0)
  t.same(await claimNames(), ['data-db-0', 'data-db-1'])
})

t.test('whenDeleted: Delete makes the claims owned by the StatefulSet, so they go with it', async (t) => {
  const { registry, podNames, claimNames, until } = await setup(t)
  await registry.create(STS, 'default', statefulSet('tmp', 1, { persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete', whenScaled: 'Retain' } }), WRITE)
  await until('1 pod', async () => (await podNames('tmp')).length === 1)
  await registry.delete(STS, 'default', 'tmp', { dryRun: false })
  await until('claims collected', async () => (await claimNames()).length === 0)
  t.pass('claim deleted with the set')
})

t.test('refuses a bad StatefulSet naming the field', async (t) => {
  const { registry } = await setup(t)
  const bad = statefulSet('bad', 1, { podManagementPolicy: 'Sometimes' })
  await t.rejects(registry.create(STS, 'default', bad, WRITE), { httpStatus: 422, message: /spec\.podManagementPolicy/ })
  const noStorage = statefulSet('bad', 1, { volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'] } }] })
  await t.rejects(registry.create(STS, 'default', noStorage, WRITE), { httpStatus: 422, message: /spec\.volumeClaimTemplates\[0\]\.spec\.resources\.requests\[storage\]/ })
})
