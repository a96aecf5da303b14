// The informer's cache against a real LMDB store: what a controller assumes after its own write
// never outlives the object, and never replaces a newer version the watch delivered.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const CONFIG_MAP = KINDS.find((k) => k.kind === 'ConfigMap')!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-informer-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  const registry = new Registry(store, systemClock, silentLogger())
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  const informer = new Informer(registry, CONFIG_MAP)
  await informer.start()
  t.teardown(async () => {
    informer.stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  const seen = (check: () => boolean) =>
    new Promise<void>((resolve) => {
      const poll = () => (check() ? resolve() : setTimeout(poll, 5))
      poll()
    })
  return { registry, informer, seen }
}

const configMap = (name: string, value: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { value } })

t.test('a write assumed after the watch delivered its deletion does not bring the object back', async (t) => {
  const { registry, informer, seen } = await setup(t)
  const { object: written } = await registry.create(CONFIG_MAP, 'default', configMap('gone', 'a'), WRITE)
  await seen(() => informer.get('default/gone') !== undefined)
  await registry.delete(CONFIG_MAP, 'default', 'gone', { dryRun: false })
  await seen(() => informer.get('default/gone') === undefined)
  // A controller whose write returned just before the deletion records it only now.
  informer.assume(written)
  t.equal(informer.get('default/gone'), undefined, 'the deleted object stays out of the cache')
})

t.test('a write assumed before its watch event is seen at once, and the event then takes over', async (t) => {
  const { registry, informer, seen } = await setup(t)
  const { object: written } = await registry.create(CONFIG_MAP, 'default', configMap('fresh', 'a'), WRITE)
  informer.assume(written)
  t.equal((informer.get('default/fresh')?.data as { value?: string } | undefined)?.value, 'a', 'the new object is in the cache before its event')
  const { object: updated } = await registry.update(CONFIG_MAP, 'default', 'fresh', { ...written, data: { value: 'b' } }, WRITE)
  await seen(() => (informer.get('default/fresh')?.data as { value?: string } | undefined)?.value === 'b')
  informer.assume(written)
  t.equal(informer.get('default/fresh')?.metadata.resourceVersion, updated.metadata.resourceVersion, 'an older version never replaces a newer one')
})
