import t from 'tap'
import { validateObject } from '../../src/api/validate.js'
import type { FieldError } from '../../src/api/types.js'

const pairs = (errs: FieldError[]): string[] => [...new Set(errs.map((e) => `${e.field} ${e.type}`))].sort()
const svc = (spec: Record<string, unknown>) => validateObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec })

t.test('services', async (t) => {
  t.same(svc({ selector: { app: 'web' }, ports: [{ port: 80, targetPort: 8080 }] }).errors, [])
  t.same(svc({ ports: [{ name: 'http', port: 80, targetPort: 'http-alt' }, { name: 'https', port: 443, protocol: 'TCP' }] }).errors, [])
  t.same(svc({ clusterIP: 'None', selector: { app: 'web' } }).errors, [], 'headless services need no ports')
  t.same(pairs(svc({ selector: { app: 'web' } }).errors), ['spec.ports FieldValueRequired'])
  t.same(pairs(svc({ ports: [{ port: 80 }, { port: 81 }] }).errors), ['spec.ports[0].name FieldValueRequired', 'spec.ports[1].name FieldValueRequired'])
  t.same(pairs(svc({ ports: [{ name: 'a', port: 80 }, { name: 'a', port: 81 }] }).errors), ['spec.ports[1].name FieldValueDuplicate'])
  t.same(pairs(svc({ ports: [{ port: 0, targetPort: 70000, protocol: 'ICMP' }] }).errors), [
    'spec.ports[0].port FieldValueInvalid',
    'spec.ports[0].protocol FieldValueNotSupported',
    'spec.ports[0].targetPort FieldValueInvalid',
  ])
  t.same(pairs(svc({ ports: [{ port: 80, targetPort: 'Not_A_Name' }] }).errors), ['spec.ports[0].targetPort FieldValueInvalid'])
  t.same(pairs(svc({ ports: [{ port: 80, targetPort: 1.5 }] }).errors), ['spec.ports[0].targetPort FieldValueTypeInvalid'])
  t.same(pairs(svc({ type: 'Magic', ports: [{ port: 80 }] }).errors), ['spec.type FieldValueNotSupported'])
  const np = svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 8080 }] }).errors
  t.same(pairs(np), ['spec.ports[0].nodePort FieldValueInvalid'])
  t.match(np[0].message, 'The range of valid ports is 30000-32767')
  t.same(svc({ type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] }).errors, [])
  t.same(pairs(svc({ ports: [{ port: 80, nodePort: 30080 }] }).errors), ['spec.ports[0].nodePort FieldValueForbidden'])
  t.same(pairs(svc({ clusterIP: '10.43.0.300', ports: [{ port: 80 }] }).errors), ['spec.clusterIP FieldValueInvalid'])
  t.same(svc({ clusterIP: '10.43.0.10', clusterIPs: ['10.43.0.10'], ports: [{ port: 80 }] }).errors, [])
  t.same(svc({ type: 'ExternalName', externalName: 'db.example.com' }).errors, [])
  t.same(pairs(svc({ type: 'ExternalName' }).errors), ['spec.externalName FieldValueRequired'])
  t.same(pairs(svc({ ports: [{ port: 80 }], selector: { app: 'bad value!' } }).errors), ['spec.selector FieldValueInvalid'])
})

t.test('endpoints', async (t) => {
  const ep = (subsets: unknown) => validateObject({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web' }, subsets })
  t.same(ep([{ addresses: [{ ip: '10.42.0.5', nodeName: 'pi1' }], ports: [{ port: 80, protocol: 'TCP' }] }]).errors, [])
  t.same(pairs(ep([{ addresses: [{ ip: 'ten' }, {}], notReadyAddresses: [{ ip: '::1' }], ports: [{ port: 0 }, { name: 'b', port: 80, protocol: 'X' }] }]).errors), [
    'subsets[0].addresses[0].ip FieldValueInvalid',
    'subsets[0].addresses[1].ip FieldValueRequired',
    'subsets[0].ports[0].name FieldValueRequired',
    'subsets[0].ports[0].port FieldValueInvalid',
    'subsets[0].ports[1].protocol FieldValueNotSupported',
  ])
})
