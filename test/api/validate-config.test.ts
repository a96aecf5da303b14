import t from 'tap'
import { validateObject } from '../../src/api/validate.js'
import type { FieldError } from '../../src/api/types.js'

const pairs = (errs: FieldError[]): string[] => [...new Set(errs.map((e) => `${e.field} ${e.type}`))].sort()

t.test('config maps: keys and size', async (t) => {
  const cm = (extra: Record<string, unknown>) => validateObject({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'default' }, ...extra })
  t.same(cm({ data: { 'app.properties': 'a=b', KEY_1: 'x', '.hidden': 'y' }, binaryData: { 'logo.png': 'iVBORw0KGgo=' } }).errors, [])
  t.same(pairs(cm({ data: { 'bad/key': 'x', '..': 'y', ['k'.repeat(254)]: 'z' } }).errors), ['data[..] FieldValueInvalid', 'data[bad/key] FieldValueInvalid', `data[${'k'.repeat(254)}] FieldValueInvalid`])
  t.same(pairs(cm({ data: { a: 'x'.repeat(1024 * 1024 + 1) } }).errors), ['data FieldValueTooLong'])
  t.same(pairs(cm({ binaryData: { a: 'not base64!' } }).errors), ['binaryData[a] FieldValueInvalid'])
  t.same(pairs(cm({ data: { a: 'x' }, binaryData: { a: 'eA==' } }).errors), ['binaryData[a] FieldValueDuplicate'])
  t.same(pairs(cm({ data: { a: 1 } }).errors), ['data[a] FieldValueTypeInvalid'])
})

t.test('secrets: keys, base64 values, size, typed keys', async (t) => {
  const secret = (extra: Record<string, unknown>) => validateObject({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, ...extra })
  t.same(secret({ data: { password: 'c2VjcmV0' }, stringData: { user: 'admin' } }).errors, [])
  const bad = secret({ data: { password: 'secret!' } }).errors
  t.same(pairs(bad), ['data[password] FieldValueInvalid'])
  t.notMatch(bad[0].message, 'secret!', 'secret values are not echoed')
  t.same(pairs(secret({ data: { a: Buffer.alloc(1024 * 1024 + 1).toString('base64') } }).errors), ['data FieldValueTooLong'])
  t.same(pairs(secret({ type: 'kubernetes.io/tls', data: { 'tls.crt': 'eA==' } }).errors), ['data[tls.key] FieldValueRequired'])
})

t.test('namespaces, nodes and events', async (t) => {
  t.same(validateObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team-a' }, spec: { finalizers: ['kubernetes'] } }).errors, [])
  t.same(pairs(validateObject({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'a', namespace: 'b' } }).errors), ['metadata.namespace FieldValueForbidden'])
  const node = (spec: Record<string, unknown>) => validateObject({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi1' }, spec })
  t.same(node({ unschedulable: true, podCIDR: '10.42.1.0/24', taints: [{ key: 'edge', effect: 'NoSchedule' }] }).errors, [])
  t.same(pairs(node({ podCIDR: '10.42.1.0', taints: [{ effect: 'Sometimes' }] }).errors), ['spec.podCIDR FieldValueInvalid', 'spec.taints[0].effect FieldValueNotSupported', 'spec.taints[0].key FieldValueRequired'])
  const ev = (extra: Record<string, unknown>) => validateObject({ apiVersion: 'v1', kind: 'Event', metadata: { name: 'web.17f', namespace: 'default' }, ...extra })
  t.same(ev({ involvedObject: { kind: 'Pod', name: 'web', namespace: 'default' }, reason: 'Pulled', type: 'Normal', message: 'ok' }).errors, [])
  t.same(pairs(ev({ reason: 'x' }).errors), ['involvedObject FieldValueRequired'])
  t.same(pairs(ev({ involvedObject: { kind: 'Pod', name: 'web', namespace: 'other' }, type: 'Loud' }).errors), ['involvedObject.namespace FieldValueInvalid', 'type FieldValueNotSupported'])
})
