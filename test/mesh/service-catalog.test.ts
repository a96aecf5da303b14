// The services message: what the hub sends every node, and what a node accepts.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { decodeServicesMessage, serviceCatalog } from '../../src/mesh/service-catalog.js'

const service: KubeObject = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name: 'web', namespace: 'default', uid: 'u1', labels: { a: 'b' }, annotations: { big: 'x'.repeat(1000) }, resourceVersion: '7' },
  spec: { type: 'NodePort', clusterIP: '10.43.0.1', clusterIPs: ['10.43.0.1'], selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP', nodePort: 30080 }] },
}
const endpoints = { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.42.0.5', hostname: 'web-0', nodeName: 'n1', targetRef: { kind: 'Pod', name: 'p' } }], notReadyAddresses: [{ ip: '10.42.0.6' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] } as unknown as KubeObject

t.test('the catalog keeps what proxies and DNS read, and nothing else', async (t) => {
  const m = serviceCatalog([service], [endpoints], 42)
  t.same(m, {
    revision: 42,
    services: [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default', uid: 'u1' }, spec: { type: 'NodePort', clusterIP: '10.43.0.1', ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30080 }] } }],
    endpoints: [{ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.42.0.5', hostname: 'web-0', nodeName: 'n1' }], notReadyAddresses: [{ ip: '10.42.0.6' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }] }] }],
  })
  const decoded = decodeServicesMessage(Buffer.from(JSON.stringify(m)))
  t.ok(decoded.ok, 'a node accepts what the hub sends')
})

t.test('a node refuses a bad catalog, naming the field', async (t) => {
  const good = serviceCatalog([service], [endpoints], 1)
  const bad = (mutate: (m: any) => void) => {
    const m = structuredClone(good) as any
    mutate(m)
    const d = decodeServicesMessage(Buffer.from(JSON.stringify(m)))
    return d.ok ? 'accepted' : d.reason
  }
  t.match(bad((m) => (m.revision = -1)), /^revision:/)
  t.match(bad((m) => (m.services[0].spec.clusterIP = '10.43.0')), /services\[0\]\.spec\.clusterIP/)
  t.match(bad((m) => (m.services[0].metadata.name = 'we"b')), /services\[0\]\.metadata: name and namespace must be DNS labels/)
  t.match(bad((m) => (m.services[0].spec.ports[0].port = 70000)), /services\[0\]\.spec\.ports\[0\]\.port/)
  t.match(bad((m) => (m.services[0].spec.ports[0].name = 'a b')), /services\[0\]\.spec\.ports\[0\]\.name/)
  t.match(bad((m) => (m.endpoints[0].subsets[0].addresses[0].ip = 'x')), /endpoints\[0\]\.subsets\[0\]\.addresses\[0\]\.ip/)
  t.match(bad((m) => (m.endpoints[0].subsets[0].addresses[0].hostname = 'Web.0')), /endpoints\[0\]\.subsets\[0\]\.addresses\[0\]\.hostname: expected a DNS label/)
  const notJson = decodeServicesMessage(Buffer.from('{"revision":'))
  t.match(notJson.ok ? '' : notJson.reason, /not valid JSON/)
  const huge = decodeServicesMessage(Buffer.alloc(5 * 1024 * 1024, 32))
  t.match(huge.ok ? '' : huge.reason, /exceeds the limit/)
})
