// Registry writes with warnings: false (what the hub's own writers pass): the same validation, the
// same Strict refusal of unknown fields, only no Warning texts worked out.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const POD = KINDS.find((k) => k.kind === 'Pod')!

async function setup(t: any) {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-registry-warnings-'))
  const store = await openLmdbStore({ path: join(dir, 'store') })
  await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  t.teardown(async () => {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  return new Registry(store, systemClock, silentLogger())
}

// shareProcessNamespace is a field Kubernetes defines that Bramble keeps but does not act on; `colour` is no field at all.
const pod = (name: string, extra: Record<string, unknown> = {}) => ({ metadata: { name }, spec: { shareProcessNamespace: true, containers: [{ name: 'c', image: 'busybox' }], ...extra } })

t.test('Warn names ignored and unknown fields; warnings: false stores the same object without texts', async (t) => {
  const registry = await setup(t)
  const warned = await registry.create(POD, 'default', pod('a', { colour: 'red' }), { dryRun: false, fieldValidation: 'Warn' })
  t.ok(warned.warnings.some((w) => w.includes('unknown field "spec.colour"')), 'the unknown field is named')
  t.ok(warned.warnings.some((w) => w.includes('spec.shareProcessNamespace')), 'the ignored field is named')
  const quiet = await registry.create(POD, 'default', pod('b', { colour: 'red' }), { dryRun: false, fieldValidation: 'Warn', warnings: false })
  t.same(quiet.warnings, [])
  t.equal(quiet.object.spec.shareProcessNamespace, true, 'the field is kept all the same')
})

t.test('warnings: false changes no validation: Strict still refuses unknown fields, bad values are still 422', async (t) => {
  const registry = await setup(t)
  await t.rejects(registry.create(POD, 'default', pod('c', { colour: 'red' }), { dryRun: false, fieldValidation: 'Strict', warnings: false }), { reason: 'BadRequest', message: /unknown field "spec.colour"/ })
  const refused = await registry.create(POD, 'default', { metadata: { name: 'd' }, spec: { containers: [{ name: 'c' }] } }, { dryRun: false, fieldValidation: 'Ignore', warnings: false }).catch((err: unknown) => err)
  t.match(refused, { reason: 'Invalid', details: { causes: [{ field: 'spec.containers[0].image' }] } })
})
