import t from 'tap'
import { validateObject } from '../../src/api/validate.js'
import type { FieldError } from '../../src/api/types.js'

const pod = (spec: Record<string, unknown>, metadata: Record<string, unknown> = { name: 'web', namespace: 'default' }): Record<string, unknown> => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata,
  spec,
})
const c = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'app', image: 'nginx:1.27', ...extra })
/** The distinct (field, cause) pairs, in a stable order: reports are compared as sets. */
const fields = (errs: FieldError[]): [string, string][] => {
  const seen = new Set<string>()
  return errs
    .map((e): [string, string] => [e.field, e.type])
    .filter(([f, ty]) => !seen.has(`${f} ${ty}`) && seen.add(`${f} ${ty}`) !== undefined)
    .sort((a, b) => (a[0] + ' ' + a[1] < b[0] + ' ' + b[1] ? -1 : 1))
}
const srt = (pairs: [string, string][]): [string, string][] => fields(pairs.map(([field, type]) => ({ field, type, message: '' }) as FieldError))
const byField = (errs: FieldError[], field: string): FieldError | undefined => errs.find((e) => e.field === field)

t.test('a correct pod is valid, with nothing unknown or ignored', async (t) => {
  const r = validateObject(
    pod({
      containers: [
        c({
          ports: [{ containerPort: 80, name: 'http', protocol: 'TCP' }],
          resources: { requests: { cpu: '500m', memory: '128Mi' }, limits: { cpu: '1', memory: '1Gi' } },
          env: [{ name: 'MODE', value: 'prod' }, { name: 'POD', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } }],
          volumeMounts: [{ name: 'conf', mountPath: '/etc/app' }],
          livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
        }),
      ],
      volumes: [{ name: 'conf', configMap: { name: 'app-config' } }],
      restartPolicy: 'Always',
      nodeSelector: { 'kubernetes.io/arch': 'arm64' },
      tolerations: [{ key: 'edge', operator: 'Exists', effect: 'NoSchedule' }],
    }),
  )
  t.same(r, { errors: [], unknownFields: [], ignoredFields: [] })
})

t.test('refuses what is not an object of a supported kind', async (t) => {
  for (const bad of [null, undefined, 42, 'pod', [], [{ kind: 'Pod' }]]) t.same(fields(validateObject(bad).errors), srt([['', 'FieldValueTypeInvalid']]), String(bad))
  t.same(fields(validateObject({}).errors), srt([['apiVersion', 'FieldValueRequired'], ['kind', 'FieldValueRequired']]))
  t.same(fields(validateObject({ apiVersion: 'v1', kind: 'Gadget', metadata: { name: 'x' } }).errors), srt([['kind', 'FieldValueNotSupported']]))
  const wrongGroup = validateObject({ apiVersion: 'v1', kind: 'Deployment', metadata: { name: 'x' } }).errors
  t.same(fields(wrongGroup), srt([['apiVersion', 'FieldValueNotSupported']]))
  t.match(wrongGroup[0].message, 'supported values: "apps/v1"')
  t.same(fields(validateObject({ apiVersion: 2, kind: 'Pod' }).errors), srt([['apiVersion', 'FieldValueTypeInvalid']]))
})

t.test('checks metadata with the name rule of each kind', async (t) => {
  t.same(fields(validateObject(pod({ containers: [c()] }, {})).errors), srt([['metadata.name', 'FieldValueRequired']]))
  t.same(validateObject(pod({ containers: [c()] }, { generateName: 'web-' })).errors, [])
  t.same(fields(validateObject(pod({ containers: [c()] }, { name: 'Web_1' })).errors), srt([['metadata.name', 'FieldValueInvalid']]))
  t.same(validateObject(pod({ containers: [c()] }, { name: 'web.v1' })).errors, [], 'pods take DNS subdomains')
  const ns = (name: string) => validateObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }).errors
  t.same(ns('team-a'), [])
  t.same(fields(ns('team.a')), srt([['metadata.name', 'FieldValueInvalid']]), 'namespaces take DNS labels')
  const svc = (name: string) => validateObject({ apiVersion: 'v1', kind: 'Service', metadata: { name }, spec: { ports: [{ port: 80 }] } }).errors
  t.same(svc('web'), [])
  t.same(fields(svc('1web')), srt([['metadata.name', 'FieldValueInvalid']]), 'services take DNS-1035 labels')
  t.same(fields(validateObject(pod({ containers: [c()] }, { name: 'web', namespace: 'Bad NS', labels: { 'a/b/c': 'x' }, annotations: { '!': 'y' } })).errors), srt([
    ['metadata.namespace', 'FieldValueInvalid'],
    ['metadata.labels', 'FieldValueInvalid'],
    ['metadata.annotations', 'FieldValueInvalid'],
  ]))
  const cj = validateObject({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'c'.repeat(53) }, spec: { schedule: '@hourly', jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [c()] } } } } } })
  t.match(cj.errors, [{ field: 'metadata.name', message: /must be no more than 52 characters/ }])
})

t.test('reports wrong JSON types against the Kubernetes schema', async (t) => {
  const r = validateObject(pod({ containers: [c({ ports: [{ containerPort: '80' }], stdin: 'yes' })], terminationGracePeriodSeconds: 1.5, nodeSelector: { a: 1 } }))
  t.same(fields(r.errors), srt([
    ['spec.containers[0].ports[0].containerPort', 'FieldValueTypeInvalid'],
    ['spec.containers[0].stdin', 'FieldValueTypeInvalid'],
    ['spec.nodeSelector[a]', 'FieldValueTypeInvalid'],
    ['spec.terminationGracePeriodSeconds', 'FieldValueTypeInvalid'],
  ]))
  t.equal(byField(r.errors, 'spec.containers[0].ports[0].containerPort')?.message, 'Invalid value: "80": must be of type number')
  t.equal(byField(r.errors, 'spec.terminationGracePeriodSeconds')?.message, 'Invalid value: 1.5: must be of type integer')
  t.same(fields(validateObject(pod({ containers: { name: 'x' } })).errors), srt([['spec.containers', 'FieldValueTypeInvalid']]))
  t.same(fields(validateObject(pod('spec' as never)).errors), srt([['spec', 'FieldValueTypeInvalid']]))
})

t.test('names unknown fields by path', async (t) => {
  const r = validateObject({ ...pod({ containers: [c({ imagePullPolicyy: 'Always' })], extra: { deep: 1 } }), metadata: { name: 'web', colour: 'red' }, top: 1 })
  t.same(r.unknownFields.sort(), ['metadata.colour', 'spec.containers[0].imagePullPolicyy', 'spec.extra', 'top'])
  t.same(r.errors, [])
})

t.test('names fields Kubernetes defines but Bramble does not act on, once per path', async (t) => {
  const r = validateObject(
    pod({
      containers: [c({ securityContext: { privileged: true, seccompProfile: { type: 'RuntimeDefault' } }, tty: true }), c({ name: 'b', lifecycle: { preStop: { exec: { command: ['x'] } } }, securityContext: {} })],
      volumes: [{ name: 'd', nfs: { server: 'nas', path: '/share' } }],
      priorityClassName: 'high',
      affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'zone' }] } },
    }),
  )
  t.same([...r.ignoredFields].sort(), [
    'spec.affinity.podAffinity',
    'spec.containers[0].securityContext.seccompProfile',
    'spec.containers[0].tty',
    'spec.containers[1].lifecycle',
    'spec.priorityClassName',
    'spec.volumes[0].nfs',
  ])
  t.same(r.errors, [])
  const status = validateObject({ ...pod({ containers: [c()] }), status: { phase: 'Running', hostIP: '10.0.0.1' } })
  t.same(status.ignoredFields, [], 'status is never ignored')
  const cm = validateObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' }, immutable: true })
  t.same(cm, { errors: [], unknownFields: [], ignoredFields: [] })
  const dep = validateObject({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'd' },
    spec: { selector: { matchLabels: { a: 'b' } }, template: { metadata: { labels: { a: 'b' } }, spec: { containers: [c({ stdin: true })], shareProcessNamespace: true } } },
  })
  t.same(dep.ignoredFields, ['spec.template.spec.containers[0].stdin', 'spec.template.spec.shareProcessNamespace'])
})

t.test('pod spec: containers, names, images', async (t) => {
  t.same(fields(validateObject(pod({})).errors), srt([['spec.containers', 'FieldValueRequired']]))
  t.same(fields(validateObject(pod({ containers: [] })).errors), srt([['spec.containers', 'FieldValueRequired']]))
  t.same(fields(validateObject(pod({ containers: [c({ name: undefined, image: undefined }), c({ name: 'Bad_Name' }), c(), c()] })).errors), srt([
    ['spec.containers[0].name', 'FieldValueRequired'],
    ['spec.containers[0].image', 'FieldValueRequired'],
    ['spec.containers[1].name', 'FieldValueInvalid'],
    ['spec.containers[3].name', 'FieldValueDuplicate'],
  ]))
  t.same(fields(validateObject(pod({ containers: [c({ imagePullPolicy: 'Sometimes' })] })).errors), srt([['spec.containers[0].imagePullPolicy', 'FieldValueNotSupported']]))
})

t.test('pod spec: ports', async (t) => {
  const r = validateObject(
    pod({
      containers: [
        c({ ports: [{ containerPort: 0 }, { containerPort: 70000 }, { containerPort: 80, protocol: 'HTTP' }, { containerPort: 81, name: 'web' }, { containerPort: 82, name: 'web' }, { name: 'Bad--' }] }),
      ],
    }),
  )
  t.same(fields(r.errors), srt([
    ['spec.containers[0].ports[0].containerPort', 'FieldValueInvalid'],
    ['spec.containers[0].ports[1].containerPort', 'FieldValueInvalid'],
    ['spec.containers[0].ports[2].protocol', 'FieldValueNotSupported'],
    ['spec.containers[0].ports[4].name', 'FieldValueDuplicate'],
    ['spec.containers[0].ports[5].containerPort', 'FieldValueRequired'],
    ['spec.containers[0].ports[5].name', 'FieldValueInvalid'],
  ]))
  t.equal(byField(r.errors, 'spec.containers[0].ports[0].containerPort')?.message, 'Invalid value: 0: must be between 1 and 65535, inclusive')
  t.equal(byField(r.errors, 'spec.containers[0].ports[2].protocol')?.message, 'Unsupported value: "HTTP": supported values: "TCP", "UDP", "SCTP"')
})

t.test('pod spec: resources are quantities, requests within limits', async (t) => {
  const r = validateObject(pod({ containers: [c({ resources: { requests: { cpu: 'lots', memory: '2Gi', 'example.com/gpu': '1' }, limits: { memory: '1Gi', cpu: '-1', widgets: '2' } } }), c({ name: 'b', resources: { requests: { cpu: 2, memory: true } } })] }))
  t.same(fields(r.errors), srt([
    ['spec.containers[0].resources.limits.cpu', 'FieldValueInvalid'],
    // An extended resource cannot be overcommitted: its request needs a limit.
    ['spec.containers[0].resources.limits.example.com/gpu', 'FieldValueForbidden'],
    ['spec.containers[0].resources.limits.widgets', 'FieldValueInvalid'],
    ['spec.containers[0].resources.requests.cpu', 'FieldValueInvalid'],
    ['spec.containers[0].resources.requests.memory', 'FieldValueInvalid'],
    ['spec.containers[1].resources.requests[memory]', 'FieldValueTypeInvalid'],
  ]))
  t.match(byField(r.errors, 'spec.containers[0].resources.requests.cpu')?.message, /^Invalid value: "lots": quantities must match the regular expression/)
  t.equal(byField(r.errors, 'spec.containers[0].resources.requests.memory')?.message, 'Invalid value: "2Gi": must be less than or equal to memory limit of 1Gi')
  t.same(validateObject(pod({ containers: [c({ resources: { requests: { cpu: 0.5, memory: 1e9 } } })] })).errors, [], 'numbers are quantities too')
})

t.test('pod spec: env, envFrom, volume mounts, volumes', async (t) => {
  const r = validateObject(
    pod({
      containers: [
        c({
          env: [{ name: '1BAD' }, { value: 'x' }, { name: 'A', value: 'x', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }, { name: 'B', valueFrom: {} }],
          envFrom: [{}, { configMapRef: { name: 'c' }, prefix: '9' }],
          volumeMounts: [{ name: 'nope', mountPath: '/a' }, { name: 'data', mountPath: '/a' }, { name: 'data' }],
        }),
      ],
      volumes: [{ name: 'data', emptyDir: {} }, { name: 'data', hostPath: { path: '/srv' } }, { name: 'two', emptyDir: {}, configMap: { name: 'c' } }, { name: 'none' }, { name: 'cm', configMap: {} }],
    }),
  )
  t.same(fields(r.errors), srt([
    ['spec.volumes[1].name', 'FieldValueDuplicate'],
    ['spec.volumes[2].configMap', 'FieldValueForbidden'],
    ['spec.volumes[3]', 'FieldValueRequired'],
    ['spec.volumes[4].configMap.name', 'FieldValueRequired'],
    ['spec.containers[0].env[0].name', 'FieldValueInvalid'],
    ['spec.containers[0].env[1].name', 'FieldValueRequired'],
    ['spec.containers[0].env[2].valueFrom', 'FieldValueInvalid'],
    ['spec.containers[0].env[3].valueFrom', 'FieldValueInvalid'],
    ['spec.containers[0].envFrom[0]', 'FieldValueInvalid'],
    ['spec.containers[0].envFrom[1].prefix', 'FieldValueInvalid'],
    ['spec.containers[0].volumeMounts[0].name', 'FieldValueInvalid'],
    ['spec.containers[0].volumeMounts[1].mountPath', 'FieldValueInvalid'],
    ['spec.containers[0].volumeMounts[2].mountPath', 'FieldValueRequired'],
  ]))
})

t.test('pod spec: restart policy, node selector, tolerations, probes, affinity', async (t) => {
  const r = validateObject(
    pod({
      containers: [c({ livenessProbe: {}, readinessProbe: { exec: { command: ['true'] }, tcpSocket: { port: 80 } }, startupProbe: { tcpSocket: { port: 0 }, successThreshold: 2 } })],
      restartPolicy: 'Sometimes',
      nodeSelector: { 'bad key!': 'x' },
      tolerations: [{ operator: 'Equal', value: 'x' }, { key: 'k', operator: 'Exists', value: 'v' }, { key: 'k', effect: 'NoWay' }, { key: 'k', effect: 'NoSchedule', tolerationSeconds: 5 }],
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'cpus', operator: 'Gt', values: ['x'] }] }] } },
        podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 101, podAffinityTerm: { labelSelector: { matchLabels: { app: 'web' } } } }] },
      },
    }),
  )
  t.same(fields(r.errors), srt([
    ['spec.containers[0].livenessProbe', 'FieldValueRequired'],
    ['spec.containers[0].readinessProbe.tcpSocket', 'FieldValueForbidden'],
    ['spec.containers[0].startupProbe.successThreshold', 'FieldValueInvalid'],
    ['spec.containers[0].startupProbe.tcpSocket.port', 'FieldValueInvalid'],
    ['spec.restartPolicy', 'FieldValueNotSupported'],
    ['spec.nodeSelector', 'FieldValueInvalid'],
    ['spec.tolerations[0].operator', 'FieldValueInvalid'],
    ['spec.tolerations[1].operator', 'FieldValueInvalid'],
    ['spec.tolerations[2].effect', 'FieldValueNotSupported'],
    ['spec.tolerations[3].effect', 'FieldValueInvalid'],
    ['spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0]', 'FieldValueInvalid'],
    ['spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight', 'FieldValueInvalid'],
    ['spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey', 'FieldValueRequired'],
  ]))
})

t.test('reports every violation at once', async (t) => {
  const r = validateObject(pod({ containers: [c({ name: 'X', image: '', ports: [{ containerPort: 99999 }] })], restartPolicy: 'Nope' }, { name: 'Bad!' }))
  t.equal(r.errors.length, 5)
})

t.test('never throws, whatever it is given', async (t) => {
  const cyclic: Record<string, unknown> = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x' } }
  cyclic.spec = { containers: [cyclic] }
  const odd = [cyclic, { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x'.repeat(1_000_000) }, spec: { containers: [c({ image: 'y'.repeat(1_000_000) })] } }, Object.create(null), { apiVersion: 'v1', kind: 'Pod', metadata: [], spec: [] }]
  for (const o of odd) t.doesNotThrow(() => validateObject(o))
  const huge = validateObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x'.repeat(1_000_000) }, spec: { containers: [c()] } })
  t.ok(huge.errors[0].message.length < 1000, 'messages about huge values stay short')
})
