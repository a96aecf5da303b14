import t from 'tap'
import { readFileSync } from 'node:fs'
import { applyPatch } from '../../src/api/patch.js'
import type { KubeObject } from '../../src/api/types.js'

const fixture = (name: string) => readFileSync(new URL(`../fixtures/patch/${name}`, import.meta.url), 'utf8')
const stored = (): KubeObject => JSON.parse(fixture('deployment-stored.json'))
const SMP = 'application/strategic-merge-patch+json'

t.test('kubectl 1.32 re-apply with a changed image keeps the container env, ports and resources', async (t) => {
  const before = stored()
  const after = applyPatch(before, fixture('deployment-reapply-image.kubectl-1.32.json'), SMP)
  const [web] = after.spec.template.spec.containers
  t.equal(web.image, 'nginx:1.27')
  t.same(web.env, [{ name: 'MODE', value: 'prod' }])
  t.same(web.ports, [{ containerPort: 80, protocol: 'TCP' }])
  t.same(web.resources, { limits: { memory: '128Mi' }, requests: { cpu: '100m' } })
  t.equal(web.terminationMessagePolicy, 'File', 'server defaults stay')
  t.equal(after.status.replicas, 2, 'status stays')
  t.equal(after.metadata.resourceVersion, '42')
  t.match(after.metadata.annotations?.['kubectl.kubernetes.io/last-applied-configuration'], /nginx:1\.27/)
  t.equal(after.metadata.annotations?.['deployment.kubernetes.io/revision'], '1')
  t.equal(before.spec.template.spec.containers[0].image, 'nginx:1.25', 'the original is not modified')
})

t.test('kubectl 1.32 re-apply that drops env and adds a sidecar first', async (t) => {
  const after = applyPatch(stored(), fixture('deployment-reapply-drop-env-add-sidecar.kubectl-1.32.json'), SMP)
  const containers = after.spec.template.spec.containers
  t.same(containers.map((c: { name: string }) => c.name), ['sidecar', 'web'])
  t.same(containers[0], { image: 'busybox', name: 'sidecar' })
  t.notOk('env' in containers[1])
  t.equal(containers[1].image, 'nginx:1.25')
})

t.test('content type parameters are ignored', async (t) => {
  const after = applyPatch(stored(), '{"spec":{"replicas":3}}', `${SMP}; charset=utf-8`)
  t.equal(after.spec.replicas, 3)
})

t.test('merge patch (RFC 7386) replaces lists and deletes with null', async (t) => {
  const after = applyPatch(stored(), Buffer.from('{"metadata":{"labels":{"app":null,"tier":"web"}},"spec":{"template":{"spec":{"containers":[{"name":"x","image":"y"}]}}}}'), 'application/merge-patch+json')
  t.same(after.metadata.labels, { tier: 'web' })
  t.same(after.spec.template.spec.containers, [{ name: 'x', image: 'y' }])
  t.equal(after.spec.replicas, 2)
})

t.test('JSON patch (RFC 6902) applies operations in order, test included', async (t) => {
  const ops = [
    { op: 'test', path: '/spec/replicas', value: 2 },
    { op: 'replace', path: '/spec/replicas', value: 5 },
    { op: 'add', path: '/metadata/labels/tier', value: 'web' },
    { op: 'remove', path: '/spec/template/spec/containers/0/env' },
  ]
  const after = applyPatch(stored(), JSON.stringify(ops), 'application/json-patch+json')
  t.equal(after.spec.replicas, 5)
  t.equal(after.metadata.labels?.tier, 'web')
  t.notOk('env' in after.spec.template.spec.containers[0])
})

t.test('a failing JSON patch test changes nothing and says so', async (t) => {
  const before = stored()
  t.throws(() => applyPatch(before, '[{"op":"test","path":"/spec/replicas","value":9},{"op":"replace","path":"/spec/replicas","value":1}]', 'application/json-patch+json'), {
    name: 'PatchError',
    code: 'BRAMBLE_PATCH_TEST_FAILED',
  })
  t.equal(before.spec.replicas, 2)
})

t.test('JSON patch errors: missing path, malformed operation', async (t) => {
  t.throws(() => applyPatch(stored(), '[{"op":"remove","path":"/spec/nothing/here"}]', 'application/json-patch+json'), { code: 'BRAMBLE_PATCH_CONFLICT' })
  t.throws(() => applyPatch(stored(), '[{"op":"frobnicate","path":"/spec"}]', 'application/json-patch+json'), { code: 'BRAMBLE_PATCH_MALFORMED' })
  t.throws(() => applyPatch(stored(), '{"op":"add"}', 'application/json-patch+json'), { code: 'BRAMBLE_PATCH_MALFORMED', message: /list of operations/ })
})

t.test('bad bodies and unknown content types are refused with a typed error', async (t) => {
  t.throws(() => applyPatch(stored(), '{not json', SMP), { code: 'BRAMBLE_PATCH_MALFORMED', message: /not valid JSON/ })
  t.throws(() => applyPatch(stored(), '[1]', 'application/merge-patch+json'), { code: 'BRAMBLE_PATCH_MALFORMED', message: /JSON object/ })
  t.throws(() => applyPatch(stored(), '{}', 'application/json'), { code: 'BRAMBLE_PATCH_UNSUPPORTED_TYPE' })
  t.throws(() => applyPatch(stored(), '[{"op":"replace","path":"","value":[]}]', 'application/json-patch+json'), { code: 'BRAMBLE_PATCH_MALFORMED', message: /patched object/ })
})

t.test('an empty patch changes nothing', async (t) => {
  for (const type of [SMP, 'application/merge-patch+json']) t.same(applyPatch(stored(), '{}', type), stored(), type)
  t.same(applyPatch(stored(), '[]', 'application/json-patch+json'), stored())
})
