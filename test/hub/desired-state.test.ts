// Which ConfigMaps and Secrets a pod brings into its node's desired state.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { referencedObjects } from '../../src/hub/desired-objects.js'

function pod(spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop' }, spec } as KubeObject
}

t.test('a pod that uses no ConfigMap or Secret brings none', async (t) => {
  t.same(referencedObjects(pod({ containers: [{ name: 'a', image: 'busybox', env: [{ name: 'X', value: '1' }] }] })), [])
})

t.test('volumes, projected sources, env valueFrom and envFrom of every container, init containers too', async (t) => {
  const refs = referencedObjects(
    pod({
      volumes: [
        { name: 'v1', configMap: { name: 'cm-vol' } },
        { name: 'v2', secret: { secretName: 'sec-vol' } },
        { name: 'v3', projected: { sources: [{ configMap: { name: 'cm-proj' } }, { secret: { name: 'sec-proj' } }, { downwardAPI: {} }] } },
        { name: 'v4', emptyDir: {} },
      ],
      initContainers: [{ name: 'init', image: 'busybox', envFrom: [{ secretRef: { name: 'sec-init' } }] }],
      containers: [
        {
          name: 'a',
          image: 'busybox',
          env: [
            { name: 'A', valueFrom: { configMapKeyRef: { name: 'cm-env', key: 'a' } } },
            { name: 'B', valueFrom: { secretKeyRef: { name: 'sec-env', key: 'b' } } },
            { name: 'C', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
          ],
          envFrom: [{ configMapRef: { name: 'cm-from' } }, { configMapRef: { name: 'cm-vol' } }],
        },
      ],
    }),
  )
  t.same(refs.sort(), [
    'ConfigMap/shop/cm-env',
    'ConfigMap/shop/cm-from',
    'ConfigMap/shop/cm-proj',
    'ConfigMap/shop/cm-vol',
    'Secret/shop/sec-env',
    'Secret/shop/sec-init',
    'Secret/shop/sec-proj',
    'Secret/shop/sec-vol',
  ], 'each once, in the pod\'s namespace')
})

t.test("a pod's imagePullSecrets go to its node, so the agent can pull with them", async (t) => {
  const refs = referencedObjects(pod({ imagePullSecrets: [{ name: 'regcred' }, { name: '' }, {}], containers: [{ name: 'a', image: '127.0.0.1:5000/app:1' }] }))
  t.same(refs, ['Secret/shop/regcred'])
})
