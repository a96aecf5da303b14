import t from 'tap'
import { patchStrategyOf, strategicMergePatch } from '../../src/api/strategic-merge.js'

const pod = (spec: object) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec })
const merge = (original: Record<string, unknown>, patch: Record<string, unknown>) =>
  strategicMergePatch(original, patch, original.apiVersion as string, original.kind as string)

t.test('the patch-strategy table follows the Kubernetes struct tags', async (t) => {
  t.match(patchStrategyOf('V1PodSpec', 'containers'), { strategy: 'merge', mergeKey: 'name' })
  t.match(patchStrategyOf('V1PodSpec', 'volumes'), { strategy: 'merge,retainKeys', mergeKey: 'name' })
  t.match(patchStrategyOf('V1Container', 'ports'), { strategy: 'merge', mergeKey: 'containerPort' })
  t.match(patchStrategyOf('V1Container', 'volumeMounts'), { mergeKey: 'mountPath' })
  t.match(patchStrategyOf('V1ServiceSpec', 'ports'), { mergeKey: 'port' })
  t.match(patchStrategyOf('V1ObjectMeta', 'ownerReferences'), { mergeKey: 'uid' })
  t.match(patchStrategyOf('V1ObjectMeta', 'finalizers'), { strategy: 'merge' })
  t.match(patchStrategyOf('V1DeploymentSpec', 'strategy'), { strategy: 'retainKeys' })
  t.equal(patchStrategyOf('V1PodSpec', 'tolerations'), undefined, 'untagged lists are replaced')
  t.equal(patchStrategyOf('V1PodSpec', 'toString'), undefined)
})

t.test('maps merge recursively and null deletes a key', async (t) => {
  const out = merge(
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: { a: '1', b: '2' } }, data: { x: '1' } },
    { metadata: { labels: { b: null, c: '3' } }, data: { y: '2' } },
  )
  t.same(out, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', labels: { a: '1', c: '3' } }, data: { x: '1', y: '2' } })
})

t.test('containers merge by name and keep fields the patch does not mention', async (t) => {
  const out = merge(
    pod({ containers: [{ name: 'a', image: 'x:1', env: [{ name: 'K', value: 'v' }] }, { name: 'b', image: 'y:1' }] }),
    { spec: { containers: [{ name: 'b', image: 'y:2' }, { name: 'c', image: 'z:1' }] } },
  ) as any
  t.same(out.spec.containers, [
    { name: 'a', image: 'x:1', env: [{ name: 'K', value: 'v' }] },
    { name: 'b', image: 'y:2' },
    { name: 'c', image: 'z:1' },
  ])
})

t.test('the merge key comes from the schema type, also inside a CronJob pod template', async (t) => {
  const cron = {
    apiVersion: 'batch/v1',
    kind: 'CronJob',
    metadata: { name: 'c' },
    spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'a', image: 'x:1', args: ['run'] }] } } } } },
  }
  const out = merge(cron, { spec: { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'a', image: 'x:2' }] } } } } } }) as any
  t.same(out.spec.jobTemplate.spec.template.spec.containers, [{ name: 'a', image: 'x:2', args: ['run'] }])
})

t.test('untagged lists are replaced wholesale', async (t) => {
  const out = merge(pod({ tolerations: [{ key: 'a' }, { key: 'b' }], containers: [{ name: 'a', args: ['1', '2'] }] }), {
    spec: { tolerations: [{ key: 'c' }], containers: [{ name: 'a', args: ['3'] }] },
  }) as any
  t.same(out.spec.tolerations, [{ key: 'c' }])
  t.same(out.spec.containers, [{ name: 'a', args: ['3'] }])
})

t.test('lists merge by their own keys: env by name, ports by containerPort, volumeMounts by mountPath', async (t) => {
  const out = merge(
    pod({
      containers: [{
        name: 'a',
        env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }],
        ports: [{ containerPort: 80, protocol: 'TCP' }],
        volumeMounts: [{ name: 'v', mountPath: '/data' }],
      }],
    }),
    { spec: { containers: [{ name: 'a', env: [{ name: 'B', value: '3' }], ports: [{ containerPort: 443 }], volumeMounts: [{ name: 'w', mountPath: '/data' }] }] } },
  ) as any
  const c = out.spec.containers[0]
  t.same(c.env, [{ name: 'A', value: '1' }, { name: 'B', value: '3' }])
  t.same(c.ports, [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 443 }])
  t.same(c.volumeMounts, [{ name: 'w', mountPath: '/data' }])
})

t.test('service ports merge by port', async (t) => {
  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }] } }
  const out = merge(svc, { spec: { ports: [{ port: 80, targetPort: 'http' }] } }) as any
  t.same(out.spec.ports, [{ port: 80, targetPort: 'http', protocol: 'TCP' }])
})

t.test('$patch: delete in a list item removes the item with that key', async (t) => {
  const out = merge(pod({ containers: [{ name: 'a' }, { name: 'b' }] }), { spec: { containers: [{ name: 'a', $patch: 'delete' }] } }) as any
  t.same(out.spec.containers, [{ name: 'b' }])
})

t.test('an env var is removed by $patch: delete, a field by null', async (t) => {
  const out = merge(pod({ containers: [{ name: 'a', image: 'x', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }] }] }), {
    spec: { containers: [{ name: 'a', image: null, env: [{ name: 'A', $patch: 'delete' }] }] },
  }) as any
  t.same(out.spec.containers, [{ name: 'a', env: [{ name: 'B', value: '2' }] }])
})

t.test('$patch: replace on a map replaces it instead of merging', async (t) => {
  const out = merge(pod({ nodeSelector: { a: '1', b: '2' } }), { spec: { nodeSelector: { $patch: 'replace', c: '3' } } }) as any
  t.same(out.spec.nodeSelector, { c: '3' })
})

t.test('$patch: replace in a merging list replaces the whole list', async (t) => {
  const out = merge(pod({ containers: [{ name: 'a', image: 'x' }, { name: 'b' }] }), { spec: { containers: [{ name: 'c' }, { $patch: 'replace' }] } }) as any
  t.same(out.spec.containers, [{ name: 'c' }])
})

t.test('$patch: delete on a map empties it', async (t) => {
  const out = merge(pod({ nodeSelector: { a: '1' }, hostname: 'h' }), { spec: { nodeSelector: { $patch: 'delete' } } }) as any
  t.same(out.spec, { nodeSelector: {}, hostname: 'h' })
})

t.test('$retainKeys drops the keys it does not list (switching a Deployment strategy)', async (t) => {
  const d = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1 } } } }
  const out = merge(d, { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } }) as any
  t.same(out.spec.strategy, { type: 'Recreate' })
})

t.test('$setElementOrder orders the merged list as given, unlisted items last', async (t) => {
  const out = merge(pod({ containers: [{ name: 'a' }, { name: 'b' }, { name: 'x' }] }), {
    spec: { '$setElementOrder/containers': [{ name: 'c' }, { name: 'b' }, { name: 'a' }], containers: [{ name: 'c' }] },
  } as any) as any
  t.same(out.spec.containers.map((c: { name: string }) => c.name), ['c', 'b', 'a', 'x'])
})

t.test('finalizers merge as a set; $deleteFromPrimitiveList removes values', async (t) => {
  const base = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', finalizers: ['a', 'b'] } }
  t.same((merge(base, { metadata: { finalizers: ['b', 'c'] } }) as any).metadata.finalizers, ['a', 'b', 'c'])
  t.same((merge(base, { metadata: { '$deleteFromPrimitiveList/finalizers': ['a'] } }) as any).metadata.finalizers, ['b'])
})

t.test('ownerReferences merge by uid', async (t) => {
  const base = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', ownerReferences: [{ uid: '1', name: 'rs1' }] } }
  const out = merge(base, { metadata: { ownerReferences: [{ uid: '2', name: 'rs2' }] } }) as any
  t.same(out.metadata.ownerReferences, [{ uid: '1', name: 'rs1' }, { uid: '2', name: 'rs2' }])
})

t.test('status conditions merge by type', async (t) => {
  const base = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, status: { conditions: [{ type: 'Available', status: 'False' }, { type: 'Progressing', status: 'True' }] } }
  const out = merge(base, { status: { conditions: [{ type: 'Available', status: 'True' }] } }) as any
  t.same(out.status.conditions, [{ type: 'Available', status: 'True' }, { type: 'Progressing', status: 'True' }])
})

t.test('unknown kinds merge maps and replace lists', async (t) => {
  const out = merge({ apiVersion: 'x/v1', kind: 'Thing', metadata: { name: 't' }, spec: { items: [{ name: 'a' }], m: { a: 1 } } }, {
    spec: { items: [{ name: 'b' }], m: { b: 2 } },
  }) as any
  t.same(out.spec, { items: [{ name: 'b' }], m: { a: 1, b: 2 } })
})

t.test('an empty patch changes nothing and the original is never modified', async (t) => {
  const original = pod({ containers: [{ name: 'a', image: 'x' }] })
  const copy = structuredClone(original)
  t.same(merge(original, {}), copy)
  merge(original, { spec: { containers: [{ name: 'a', image: 'y' }] } })
  t.same(original, copy)
})

t.test('bad directives and items without their merge key are refused', async (t) => {
  t.throws(() => merge(pod({}), { spec: { $patch: 'explode' } }), { name: 'PatchError', code: 'BRAMBLE_PATCH_BAD_DIRECTIVE' })
  t.throws(() => merge(pod({}), { spec: { $frobnicate: 1 } }), { name: 'PatchError', code: 'BRAMBLE_PATCH_BAD_DIRECTIVE' })
  t.throws(() => merge(pod({ containers: [] }), { spec: { containers: [{ image: 'x' }] } }), { name: 'PatchError', code: 'BRAMBLE_PATCH_MALFORMED', message: /merge key "name"/ })
})
