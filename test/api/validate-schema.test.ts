import t from 'tap'
import { KINDS, apiVersionOf } from '../../src/api/kinds.js'
import { fieldsOfType, k8sSchema, typeOfKind } from '../../src/api/k8s-schema.js'

t.test('every served kind has a schema type', async (t) => {
  for (const k of KINDS) t.ok(fieldsOfType(typeOfKind(apiVersionOf(k), k.kind) ?? ''), k.kind)
})

t.test('types carry client-node type strings and formats', async (t) => {
  t.equal(typeOfKind('v1', 'Pod'), 'V1Pod')
  t.equal(typeOfKind('apps/v1', 'Deployment'), 'V1Deployment')
  t.equal(typeOfKind('v1', 'Deployment'), undefined)
  t.equal(typeOfKind('v1', 'toString'), undefined)
  t.same(k8sSchema.types.V1PodSpec.containers, { type: 'Array<V1Container>' })
  t.same(k8sSchema.types.V1PodSpec.activeDeadlineSeconds, { type: 'number', format: 'int64' })
  t.same(k8sSchema.types.V1PodSpec.nodeSelector, { type: '{ [key: string]: string; }' })
  t.same(k8sSchema.types.V1ServicePort.targetPort, { type: 'IntOrString', format: 'int-or-string' })
})

t.test('every referenced type is present', async (t) => {
  const prim = new Set(['string', 'number', 'boolean', 'Date', 'object', 'any', 'IntOrString', 'V1MicroTime'])
  const strip = (s: string): string => {
    const a = /^Array<(.+)>$/.exec(s) ?? /^\{ \[key: string\]: (.+); \}$/.exec(s)
    return a ? strip(a[1]) : s
  }
  const missing: string[] = []
  for (const fields of Object.values(k8sSchema.types))
    for (const f of Object.values(fields)) {
      const base = strip(f.type)
      if (!prim.has(base) && !fieldsOfType(base)) missing.push(base)
    }
  t.same(missing, [])
})
