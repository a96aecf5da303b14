import t from 'tap'
import { validateUpdate } from '../../src/api/validate.js'
import type { FieldError, KubeObject } from '../../src/api/types.js'

const pairs = (errs: FieldError[]): string[] => errs.map((e) => `${e.field} ${e.type}`).sort()
const with_ = (o: KubeObject, f: (c: any) => void): KubeObject => {
  const c = structuredClone(o)
  f(c)
  return c
}

const pod: KubeObject = {
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name: 'web', namespace: 'default', uid: 'u1' },
  spec: { containers: [{ name: 'app', image: 'nginx:1.26' }], tolerations: [{ key: 'a', operator: 'Exists' }], activeDeadlineSeconds: 100 },
}

t.test('an unchanged object is a valid update', async (t) => {
  t.same(validateUpdate(pod, structuredClone(pod)), [])
})

t.test('name, namespace and uid are immutable', async (t) => {
  t.same(pairs(validateUpdate(pod, with_(pod, (p) => ((p.metadata.name = 'other'), (p.metadata.namespace = 'x'), (p.metadata.uid = 'u2'))))), [
    'metadata.name FieldValueInvalid',
    'metadata.namespace FieldValueInvalid',
    'metadata.uid FieldValueInvalid',
  ])
  t.equal(validateUpdate(pod, with_(pod, (p) => (p.metadata.name = 'other')))[0].message, 'Invalid value: "other": field is immutable')
  t.same(validateUpdate(pod, with_(pod, (p) => delete p.metadata.uid)), [], 'an update may leave the uid out')
  t.same(validateUpdate(pod, with_(pod, (p) => (p.metadata.labels = { a: 'b' }))), [], 'labels may change')
})

t.test('a pod spec changes only in image, deadline, added tolerations and a first binding', async (t) => {
  t.same(validateUpdate(pod, with_(pod, (p) => (p.spec.containers[0].image = 'nginx:1.27'))), [])
  t.same(validateUpdate(pod, with_(pod, (p) => (p.spec.activeDeadlineSeconds = 50))), [])
  t.same(validateUpdate(pod, with_(pod, (p) => p.spec.tolerations.push({ key: 'b', operator: 'Exists' }))), [])
  t.same(validateUpdate(pod, with_(pod, (p) => (p.spec.nodeName = 'pi1'))), [])
  t.same(pairs(validateUpdate(pod, with_(pod, (p) => (p.spec.activeDeadlineSeconds = 200)))), ['spec.activeDeadlineSeconds FieldValueInvalid'])
  t.same(pairs(validateUpdate(pod, with_(pod, (p) => (p.spec.tolerations = [])))), ['spec.tolerations FieldValueForbidden'])
  const env = validateUpdate(pod, with_(pod, (p) => (p.spec.containers[0].env = [{ name: 'A', value: 'b' }])))
  t.same(pairs(env), ['spec FieldValueForbidden'])
  t.match(env[0].message, /pod updates may not change fields other than `spec.containers\[\*\]\.image`.*changed: spec.containers/)
  const bound = with_(pod, (p) => (p.spec.nodeName = 'pi1'))
  t.same(pairs(validateUpdate(bound, with_(bound, (p) => (p.spec.nodeName = 'pi2')))), ['spec FieldValueForbidden'])
})

t.test('workload selectors and job templates are immutable', async (t) => {
  const dep: KubeObject = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd' }, spec: { replicas: 1, selector: { matchLabels: { app: 'a' } }, template: {} } }
  t.same(validateUpdate(dep, with_(dep, (d) => (d.spec.replicas = 5))), [])
  t.same(pairs(validateUpdate(dep, with_(dep, (d) => (d.spec.selector = { matchLabels: { app: 'b' } })))), ['spec.selector FieldValueInvalid'])
  const job: KubeObject = { apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' }, spec: { selector: { matchLabels: { a: 'b' } }, template: { spec: { containers: [{ name: 'c', image: 'x' }] } } } }
  t.same(validateUpdate(job, with_(job, (j) => (j.spec.suspend = true))), [])
  t.same(pairs(validateUpdate(job, with_(job, (j) => (j.spec.template.spec.containers[0].image = 'y')))), ['spec.template FieldValueInvalid'])
})

t.test('a service keeps its cluster IP', async (t) => {
  const svc: KubeObject = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { clusterIP: '10.43.0.10', ports: [{ port: 80 }] } }
  t.same(validateUpdate(svc, with_(svc, (s) => (s.spec.ports[0].port = 81))), [])
  t.same(pairs(validateUpdate(svc, with_(svc, (s) => (s.spec.clusterIP = '10.43.0.11')))), ['spec.clusterIP FieldValueInvalid'])
  const unset: KubeObject = { ...svc, spec: { ports: [{ port: 80 }] } }
  t.same(validateUpdate(unset, with_(unset, (s) => (s.spec.clusterIP = '10.43.0.11'))), [], 'an unset cluster IP may be set')
})

t.test('immutable config maps and secrets', async (t) => {
  const cm: KubeObject = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: '1' }, immutable: true }
  t.same(validateUpdate(cm, with_(cm, (c) => (c.metadata.labels = { x: 'y' }))), [])
  t.same(pairs(validateUpdate(cm, with_(cm, (c) => ((c.data.a = '2'), (c.immutable = false))))), ['data FieldValueForbidden', 'immutable FieldValueForbidden'])
  const mutable: KubeObject = { ...cm, immutable: undefined }
  t.same(validateUpdate(mutable, with_(mutable, (c) => (c.data.a = '2'))), [])
  const secret: KubeObject = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data: { a: 'eA==' }, immutable: true, type: 'Opaque' }
  t.same(pairs(validateUpdate(secret, with_(secret, (s) => ((s.data = {}), (s.type = 'kubernetes.io/tls'))))), ['data FieldValueForbidden', 'type FieldValueInvalid'])
})

t.test("a node's pod subnet may be set once, never changed or removed", async (t) => {
  const node: KubeObject = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1', uid: 'n1' }, spec: {} }
  const leased = with_(node, (n) => (n.spec = { podCIDR: '10.42.0.0/24', podCIDRs: ['10.42.0.0/24'] }))
  t.same(validateUpdate(node, leased), [], 'from none to one')
  t.same(validateUpdate(leased, with_(leased, (n) => (n.spec.unschedulable = true))), [], 'other fields change freely')
  t.same(pairs(validateUpdate(leased, with_(leased, (n) => (n.spec = { podCIDR: '10.42.1.0/24', podCIDRs: ['10.42.1.0/24'] })))), ['spec.podCIDR FieldValueForbidden', 'spec.podCIDRs FieldValueForbidden'])
  t.same(pairs(validateUpdate(leased, with_(leased, (n) => (n.spec = {})))), ['spec.podCIDR FieldValueForbidden', 'spec.podCIDRs FieldValueForbidden'], 'nor removed')
})

t.test('never throws', async (t) => {
  t.doesNotThrow(() => validateUpdate(null as never, undefined as never))
  t.doesNotThrow(() => validateUpdate({ kind: 'Pod', spec: 5 } as never, { kind: 'Pod', metadata: 'x', spec: [] } as never))
})
