// The patch a re-apply sends: computed from the last-applied manifest, the new one and the live object.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { applyPatch, LAST_APPLIED, lastAppliedOf, withLastApplied, withoutLastApplied } from '../../src/cli/apply-patch.js'

function deployment(image: string, extra: Record<string, unknown> = {}): KubeObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', labels: { app: 'web' } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: { containers: [{ name: 'web', image, env: [{ name: 'MODE', value: 'prod' }], ports: [{ containerPort: 80 }] }] },
      },
      ...extra,
    },
  }
}

/** What the hub holds after applying `manifest`: defaults filled in, server fields added. */
function liveOf(manifest: KubeObject): KubeObject {
  const applied = withLastApplied(manifest)
  const live = structuredClone(applied) as any
  live.metadata.uid = 'u-1'
  live.metadata.resourceVersion = '42'
  live.metadata.creationTimestamp = '2025-01-01T00:00:00Z'
  live.spec.strategy = { type: 'RollingUpdate' }
  for (const c of live.spec.template.spec.containers) {
    c.imagePullPolicy = 'IfNotPresent'
    for (const p of c.ports ?? []) p.protocol = 'TCP'
  }
  live.status = { replicas: 2 }
  return live
}

t.test('the created object records the manifest, without the annotation itself, as sorted JSON', async (t) => {
  const applied = withLastApplied(deployment('nginx:1'))
  const recorded = JSON.parse(applied.metadata.annotations![LAST_APPLIED])
  t.same(recorded, deployment('nginx:1'))
  t.equal(recorded.metadata.annotations, undefined)
  t.match(applied.metadata.annotations![LAST_APPLIED], /^\{"apiVersion":"apps\/v1","kind":"Deployment","metadata"/)
  t.same(withoutLastApplied(applied), deployment('nginx:1'))
})

t.test('re-applying the same manifest sends nothing, although the live object carries defaults', async (t) => {
  const live = liveOf(deployment('nginx:1'))
  t.same(applyPatch(lastAppliedOf(live), deployment('nginx:1'), live), {})
})

t.test('a changed image sends the container list whole (env kept) and the new annotation', async (t) => {
  const live = liveOf(deployment('nginx:1'))
  const patch = applyPatch(lastAppliedOf(live), deployment('nginx:2'), live) as any
  t.same(patch.spec.template.spec.containers, deployment('nginx:2').spec.template.spec.containers)
  t.same(Object.keys(patch.spec), ['template'], 'only what changed')
  t.same(JSON.parse(patch.metadata.annotations[LAST_APPLIED]), deployment('nginx:2'))
  t.equal(patch.status, undefined, 'status is left alone')
})

t.test('an added field is set', async (t) => {
  const live = liveOf(deployment('nginx:1'))
  const patch = applyPatch(lastAppliedOf(live), deployment('nginx:1', { minReadySeconds: 5 }), live) as any
  t.equal(patch.spec.minReadySeconds, 5)
  t.equal(patch.spec.template, undefined)
})

t.test('a field dropped from the manifest is deleted; fields the server set are kept', async (t) => {
  const before = deployment('nginx:1', { minReadySeconds: 5 })
  const live = liveOf(before)
  const after = deployment('nginx:1')
  delete after.metadata.labels
  const patch = applyPatch(lastAppliedOf(live), after, live) as any
  t.equal(patch.spec.minReadySeconds, null)
  t.equal(patch.metadata.labels, null)
  t.equal(patch.spec.strategy, undefined, 'a defaulted field the manifest never had stays')
  t.equal(patch.metadata.uid, undefined)
})

t.test('a field removed inside a list item sends that list whole', async (t) => {
  const live = liveOf(deployment('nginx:1'))
  const after = deployment('nginx:1')
  delete (after.spec.template.spec.containers[0] as any).env
  const patch = applyPatch(lastAppliedOf(live), after, live) as any
  t.same(patch.spec.template.spec.containers, [{ name: 'web', image: 'nginx:1', ports: [{ containerPort: 80 }] }])
})

t.test('an object never applied before (no annotation) gets what differs plus the annotation', async (t) => {
  const live = liveOf(deployment('nginx:1')) as any
  delete live.metadata.annotations
  const patch = applyPatch(undefined, deployment('nginx:1'), live) as any
  t.same(Object.keys(patch), ['metadata'])
  t.ok(patch.metadata.annotations[LAST_APPLIED])
})

t.test('someone else changed a field the manifest sets: apply sets it back', async (t) => {
  const live = liveOf(deployment('nginx:1')) as any
  live.spec.replicas = 7
  const patch = applyPatch(lastAppliedOf(live), deployment('nginx:1'), live) as any
  t.same(patch, { spec: { replicas: 2 } })
})
