import t from 'tap'
import { applyDefaults, defaultPullPolicy } from '../../src/api/defaults.js'
import type { KubeObject } from '../../src/api/types.js'

t.test('chooses the image pull policy from the tag', async (t) => {
  t.equal(defaultPullPolicy('nginx'), 'Always')
  t.equal(defaultPullPolicy('nginx:latest'), 'Always')
  t.equal(defaultPullPolicy('nginx:1.27'), 'IfNotPresent')
  t.equal(defaultPullPolicy('registry.local:5000/app'), 'Always')
  t.equal(defaultPullPolicy('registry.local:5000/app:v2'), 'IfNotPresent')
  t.equal(defaultPullPolicy('app@sha256:abcd'), 'IfNotPresent')
})

t.test('fills pod defaults and leaves what was set', async (t) => {
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'p' },
    spec: {
      containers: [{ name: 'a', image: 'nginx:1.27', ports: [{ containerPort: 80 }], livenessProbe: { httpGet: { port: 80 } } }, { name: 'b', image: 'busybox', imagePullPolicy: 'Never' }],
      volumes: [{ name: 'c', configMap: { name: 'c' } }],
      restartPolicy: 'Never',
    },
  }
  const out = applyDefaults(pod)
  t.not(out, pod)
  t.equal(pod.spec.dnsPolicy, undefined, 'the input is not changed')
  t.match(out.spec, {
    restartPolicy: 'Never',
    dnsPolicy: 'ClusterFirst',
    terminationGracePeriodSeconds: 30,
    schedulerName: 'default-scheduler',
    containers: [
      {
        imagePullPolicy: 'IfNotPresent',
        terminationMessagePath: '/dev/termination-log',
        terminationMessagePolicy: 'File',
        ports: [{ containerPort: 80, protocol: 'TCP' }],
        livenessProbe: { httpGet: { port: 80, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
      },
      { imagePullPolicy: 'Never' },
    ],
    volumes: [{ configMap: { defaultMode: 420 } }],
  })
  t.equal(applyDefaults({ ...pod, spec: { containers: [] } }).spec.restartPolicy, 'Always')
})

t.test('fills workload defaults, templates included', async (t) => {
  const tpl = { metadata: { labels: { a: 'b' } }, spec: { containers: [{ name: 'c', image: 'x' }] } }
  const dep = applyDefaults({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { selector: { matchLabels: { a: 'b' } }, template: tpl } })
  t.match(dep.spec, {
    replicas: 1,
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
    revisionHistoryLimit: 10,
    progressDeadlineSeconds: 600,
    template: { spec: { restartPolicy: 'Always', containers: [{ imagePullPolicy: 'Always' }] } },
  })
  const recreate = applyDefaults({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 0, strategy: { type: 'Recreate' }, template: tpl } })
  t.same(recreate.spec.strategy, { type: 'Recreate' })
  t.equal(recreate.spec.replicas, 0)
  t.equal(applyDefaults({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'r' }, spec: { template: tpl } }).spec.replicas, 1)
  t.match(applyDefaults({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'd' }, spec: { template: tpl } }).spec, {
    updateStrategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } },
    revisionHistoryLimit: 10,
  })
  const jobSpec = { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'x:1' }] } } }
  t.match(applyDefaults({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: jobSpec }).spec, { backoffLimit: 6, completions: 1, parallelism: 1, completionMode: 'NonIndexed', suspend: false })
  t.equal(applyDefaults({ apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { ...jobSpec, parallelism: 3 } }).spec.completions, undefined, 'completions stay unset when parallelism is given')
  t.match(applyDefaults({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c' }, spec: { schedule: '@daily', jobTemplate: { spec: jobSpec } } }).spec, {
    concurrencyPolicy: 'Allow',
    suspend: false,
    successfulJobsHistoryLimit: 3,
    failedJobsHistoryLimit: 1,
    jobTemplate: { spec: { backoffLimit: 6, template: { spec: { dnsPolicy: 'ClusterFirst' } } } },
  })
})

t.test('fills service, secret and namespace defaults', async (t) => {
  t.match(applyDefaults({ apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ port: 80 }, { port: 53, protocol: 'UDP', targetPort: 'dns' }] } }).spec, {
    type: 'ClusterIP',
    sessionAffinity: 'None',
    ports: [
      { port: 80, protocol: 'TCP', targetPort: 80 },
      { port: 53, protocol: 'UDP', targetPort: 'dns' },
    ],
  })
  t.equal(applyDefaults({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' } }).type, 'Opaque')
  const secret = applyDefaults({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { a: 'eA==', b: 'eQ==' }, stringData: { b: 'pässword' } })
  t.same(secret.data, { a: 'eA==', b: Buffer.from('pässword').toString('base64') }, 'stringData is merged into data')
  t.equal(secret.stringData, undefined)
  const ns = applyDefaults({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a', labels: { owner: 'me' } } })
  t.same(ns.metadata.labels, { owner: 'me', 'kubernetes.io/metadata.name': 'team-a' })
  t.same(ns.status, { phase: 'Active' })
})

t.test('leaves other kinds and odd input alone, without throwing', async (t) => {
  const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } }
  t.same(applyDefaults(cm), cm)
  for (const odd of [null, 5, 'x', [], { kind: 'Pod', spec: 'x' }, { kind: 'Deployment', spec: { strategy: 3, template: [] } }, { kind: 'Service', spec: { ports: [null, 1] } }])
    t.doesNotThrow(() => applyDefaults(odd as never))
})
