// Claims and volumes against a real LMDB store, Registry and Informers: the built-in local-path
// class, a claim bound when its first pod is scheduled (a PV on that node), a hand-made volume
// bound to a claim that fits, and what happens to a volume when its claim goes: with the
// pvc-protection controller, as in the hub, a deleted claim and its volume stay while a pod uses it.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { PvcProtection } from '../../src/hub/pvc-protection.js'
import { Registry } from '../../src/hub/registry.js'
import { VolumeBinder, volumeNode } from '../../src/hub/volume-binder.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }
const POD = kind('Pod')
const PVC = kind('PersistentVolumeClaim')
const PV = kind('PersistentVolume')
const SC = kind('StorageClass')

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'sts-binder-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const informers = { pods: new Informer(registry, POD), claims: new Informer(registry, PVC), volumes: new Informer(registry, PV), storageClasses: new Informer(registry, SC) }
  const binder = new VolumeBinder({ registry, ...informers, events: new EventRecorder(registry, systemClock, silentLogger(), { component: 'persistentvolume-controller' }), clock: systemClock, logger: silentLogger() })
  const protection = new PvcProtection({ registry, pods: informers.pods, claims: informers.claims, clock: systemClock, logger: silentLogger() })
  for (const i of Object.values(informers)) await i.start()
  protection.start()
  await binder.start()
  t.teardown(async () => {
    await binder.stop()
    await protection.stop()
    for (const i of Object.values(informers)) i.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const until = async (what: string, check: () => Promise<boolean>) => {
    const deadline = Date.now() + 15_000
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  const claim = (name: string) => registry.get(PVC, 'default', name).catch(() => undefined)
  const volumes = async () => (await registry.list(PV, '')).items
  return { registry, store, until, claim, volumes }
}

function claimObject(name: string, extra: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, ...extra } }
}

function podUsing(name: string, claim: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: { containers: [{ name: 'c', image: 'busybox:1', volumeMounts: [{ name: 'data', mountPath: '/data' }] }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: claim } }] },
  }
}

t.test('the hub serves a default local-path StorageClass that waits for the first consumer', async (t) => {
  const { registry } = await setup(t)
  const sc = await registry.get(SC, '', 'local-path')
  t.equal(sc.provisioner, 'rancher.io/local-path')
  t.equal(sc.volumeBindingMode, 'WaitForFirstConsumer')
  t.equal(sc.reclaimPolicy, 'Delete')
  t.equal(sc.metadata.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true')
})

t.test('a claim stays Pending until its first pod is scheduled, then is bound to a new volume on that node', async (t) => {
  const { registry, until, claim, volumes } = await setup(t)
  await registry.create(PVC, 'default', claimObject('data'), WRITE)
  await registry.create(POD, 'default', podUsing('app', 'data'), WRITE)
  await new Promise((r) => setTimeout(r, 300))
  t.equal((await claim('data'))?.status?.phase, 'Pending', 'no pod scheduled: nothing to bind')
  t.same(await volumes(), [])

  await registry.bind('default', 'app', { node: 'pi-2' }, false)
  await until('the claim is Bound', async () => (await claim('data'))?.status?.phase === 'Bound')
  const bound = (await claim('data'))!
  const [pv] = await volumes()
  t.equal(bound.spec.volumeName, pv.metadata.name)
  t.equal(pv.metadata.name, `pvc-${bound.metadata.uid}`)
  t.equal(bound.spec.storageClassName, 'local-path', 'the default class is written into the claim')
  t.equal(bound.metadata.annotations?.['volume.kubernetes.io/selected-node'], 'pi-2')
  t.same(bound.status.capacity, { storage: '1Gi' })
  t.equal(volumeNode(pv), 'pi-2')
  t.same(pv.spec.hostPath, { path: `volumes/${pv.metadata.name}`, type: 'DirectoryOrCreate' })
  t.equal(pv.spec.persistentVolumeReclaimPolicy, 'Delete')
  t.match(pv.spec.claimRef, { namespace: 'default', name: 'data', uid: bound.metadata.uid })
  t.equal(pv.status.phase, 'Bound')
})

t.test('a deleted claim stays Terminating with its volume while a pod uses it; once none does, its volume is deleted (Delete) or released (Retain)', async (t) => {
  const { registry, until, claim, volumes } = await setup(t)
  await registry.create(SC, '', { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'keep' }, provisioner: 'rancher.io/local-path', reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer' }, WRITE)
  await registry.create(PVC, 'default', claimObject('scratch'), WRITE)
  await registry.create(PVC, 'default', claimObject('precious', { storageClassName: 'keep' }), WRITE)
  await registry.create(POD, 'default', podUsing('a', 'scratch'), WRITE)
  await registry.create(POD, 'default', podUsing('b', 'precious'), WRITE)
  await registry.bind('default', 'a', { node: 'pi-1' }, false)
  await registry.bind('default', 'b', { node: 'pi-1' }, false)
  await until('both bound', async () => (await claim('scratch'))?.status?.phase === 'Bound' && (await claim('precious'))?.status?.phase === 'Bound')
  const scratchPv = (await claim('scratch'))!.spec.volumeName
  const preciousPv = (await claim('precious'))!.spec.volumeName
  t.same((await claim('scratch'))!.metadata.finalizers, ['kubernetes.io/pvc-protection'], 'a claim is made with the protection finalizer')

  const marked = await registry.delete(PVC, 'default', 'scratch', { dryRun: false })
  await registry.delete(PVC, 'default', 'precious', { dryRun: false })
  t.ok(marked.metadata.deletionTimestamp, 'the delete answers the claim marked for deletion')
  await new Promise((r) => setTimeout(r, 500))
  for (const name of ['scratch', 'precious']) {
    const held = await claim(name)
    t.ok(held?.metadata.deletionTimestamp && held.metadata.finalizers?.includes('kubernetes.io/pvc-protection'), `${name}: Terminating while its pod runs`)
  }
  const kept = (await volumes()).map((v) => v.metadata.name)
  t.ok(kept.includes(scratchPv) && kept.includes(preciousPv), 'both volumes kept meanwhile')
  t.equal((await volumes()).find((v) => v.metadata.name === scratchPv)?.status?.phase, 'Bound')

  // One pod finishes, the other is deleted: neither uses its claim any more.
  const a = await registry.get(POD, 'default', 'a')
  await registry.update(POD, 'default', 'a', { ...a, status: { ...a.status, phase: 'Succeeded' } }, WRITE, 'status')
  await registry.delete(POD, 'default', 'b', { dryRun: false })
  await until('both claims gone', async () => !(await claim('scratch')) && !(await claim('precious')))
  await until('scratch volume deleted', async () => !(await volumes()).some((v) => v.metadata.name === scratchPv))
  await until('precious volume released', async () => (await volumes()).find((v) => v.metadata.name === preciousPv)?.status?.phase === 'Released')
  t.pass('Delete removed the volume; Retain kept it as Released')
})

t.test('a claim no scheduled pod uses goes at once; a claim from before protection gets the finalizer', async (t) => {
  const { registry, store, until, claim } = await setup(t)
  await registry.create(PVC, 'default', claimObject('unused'), WRITE)
  await registry.create(PVC, 'default', claimObject('waiting'), WRITE)
  await registry.create(POD, 'default', podUsing('pending', 'waiting'), WRITE)
  await registry.delete(PVC, 'default', 'unused', { dryRun: false })
  await registry.delete(PVC, 'default', 'waiting', { dryRun: false })
  await until('both gone', async () => !(await claim('unused')) && !(await claim('waiting')))
  t.pass('a pod not bound to a node does not hold its claim')

  // As a hub before pvc-protection wrote it: straight into the store, without the finalizer.
  const old = claimObject('old')
  old.metadata.finalizers = ['example.com/keep']
  await store.create({ resource: 'persistentvolumeclaims', namespace: 'default', name: 'old' }, { ...old, metadata: { ...old.metadata, namespace: 'default' } })
  await until('the finalizer added back', async () => ((await claim('old'))?.metadata.finalizers ?? []).includes('kubernetes.io/pvc-protection'))
  t.same((await claim('old'))!.metadata.finalizers, ['example.com/keep', 'kubernetes.io/pvc-protection'], 'beside the finalizers it had')
})

t.test('a hand-made hostPath volume binds to a claim of its class that fits, without waiting for a pod', async (t) => {
  const { registry, until, claim } = await setup(t)
  await registry.create(
    PV,
    '',
    { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'usb-disk' }, spec: { capacity: { storage: '10Gi' }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', hostPath: { path: '/mnt/usb' } } },
    WRITE,
  )
  await until('the volume Available', async () => (await registry.get(PV, '', 'usb-disk')).status?.phase === 'Available')
  await registry.create(PVC, 'default', claimObject('too-big', { storageClassName: 'manual', resources: { requests: { storage: '20Gi' } } }), WRITE)
  await registry.create(PVC, 'default', claimObject('media', { storageClassName: 'manual' }), WRITE)
  await until('media bound', async () => (await claim('media'))?.status?.phase === 'Bound')
  t.equal((await claim('media'))?.spec?.volumeName, 'usb-disk')
  t.equal((await registry.get(PV, '', 'usb-disk')).status?.phase, 'Bound')
  t.equal((await claim('too-big'))?.spec?.volumeName, undefined, 'a volume too small is not bound')
})

t.test('bad claims and volumes are refused naming the field', async (t) => {
  const { registry } = await setup(t)
  await t.rejects(registry.create(PVC, 'default', claimObject('x', { accessModes: ['ReadWriteSometimes'] }), WRITE), { httpStatus: 422, message: /spec\.accessModes\[0\]/ })
  await t.rejects(registry.create(PVC, 'default', claimObject('y', { resources: {} }), WRITE), { httpStatus: 422, message: /spec\.resources\.requests\[storage\]/ })
  await t.rejects(
    registry.create(PV, '', { apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'z' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/x' }, persistentVolumeReclaimPolicy: 'Keep' } }, WRITE),
    { httpStatus: 422, message: /spec\.persistentVolumeReclaimPolicy/ },
  )
  await t.rejects(registry.create(SC, '', { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'w' }, provisioner: 'x', volumeBindingMode: 'Later' }, WRITE), { httpStatus: 422, message: /volumeBindingMode/ })
})
