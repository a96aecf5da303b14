// The event recorder against a real LMDB store and Registry. It stores its Events without a
// request's checks (Registry.createOwn), so these tests hold what it writes to the API's own
// validation: every Event it makes, for a namespaced and a cluster-scoped object, is valid and
// carries no unknown field. Repeats bump the count instead of piling up objects.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { validateObject } from '../../src/api/validate.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-events-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const recorder = new EventRecorder(registry, systemClock, silentLogger(), { component: 'default-scheduler', host: 'hub-1' })
  const events = async () => (await registry.list(kind('Event'), undefined)).items
  return { registry, recorder, events }
}

t.test('events for a pod and for a node pass the API validation with no unknown field', async (t) => {
  const { registry, recorder, events } = await setup(t)
  const pod = (await registry.create(kind('Pod'), 'default', { metadata: { name: 'web-1' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } }, WRITE)).object
  const node = (await registry.create(kind('Node'), '', { metadata: { name: 'pi-1' } }, WRITE)).object
  await recorder.record(pod, 'Normal', 'Scheduled', 'Successfully assigned default/web-1 to pi-1')
  await recorder.record(node, 'Warning', 'NodeNotReady', 'Node pi-1 status is now: NodeNotReady')
  const stored = await events()
  t.equal(stored.length, 2)
  for (const e of stored) {
    const { errors, unknownFields } = validateObject(e)
    t.same(errors, [], `${e.reason} is valid`)
    t.same(unknownFields, [], `${e.reason} has no unknown field`)
  }
  const scheduled = stored.find((e: KubeObject) => e.reason === 'Scheduled')!
  t.match(scheduled, {
    metadata: { namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'web-1', namespace: 'default', uid: pod.metadata.uid },
    type: 'Normal',
    count: 1,
    source: { component: 'default-scheduler', host: 'hub-1' },
  })
  const notReady = stored.find((e: KubeObject) => e.reason === 'NodeNotReady')!
  t.equal(notReady.metadata.namespace, 'default', "a cluster-scoped object's events live in default")
  t.notOk('namespace' in (notReady.involvedObject as Record<string, unknown>), 'no namespace for a cluster-scoped object')
})

t.test('a repeat of the same event bumps its count (the do-nothing case for the object list)', async (t) => {
  const { registry, recorder, events } = await setup(t)
  const pod = (await registry.create(kind('Pod'), 'default', { metadata: { name: 'web-2' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } }, WRITE)).object
  await recorder.record(pod, 'Warning', 'FailedScheduling', '0/1 nodes are available: 1 Insufficient cpu.')
  await recorder.record(pod, 'Warning', 'FailedScheduling', '0/1 nodes are available: 1 Insufficient cpu.')
  const stored = await events()
  t.equal(stored.length, 1)
  t.equal(stored[0]!.count, 2)
})
