// DNS messages and cluster names: queries read, answers written, names resolved.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { RCODE, decodeAnswer, decodeQuery, encodeAnswer, encodeQuery, resolveClusterName } from '../../src/mesh/dns.js'

const services: KubeObject[] = [
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.43.0.10' } },
  { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'data' }, spec: { clusterIP: 'None' } },
]
const endpoints = [
  { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'db', namespace: 'data' }, subsets: [{ addresses: [{ ip: '10.42.1.9', hostname: 'db-1' }, { ip: '10.42.0.12', hostname: 'db-0' }], notReadyAddresses: [{ ip: '10.42.2.2', hostname: 'db-2' }] }] },
  { apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'default' }, subsets: [{ addresses: [{ ip: '10.42.0.3', hostname: 'web-0' }] }] },
] as unknown as KubeObject[]

t.test('a query is read back as written, names lower-cased', async (t) => {
  const q = decodeQuery(encodeQuery(0x1234, 'Web.Default.svc.cluster.local.'))
  t.equal(q.id, 0x1234)
  t.same(q.question, { name: 'web.default.svc.cluster.local', type: 1, class: 1 })
  t.equal(q.flags & 0x0100, 0x0100, 'recursion desired')
})

t.test('an answer carries the id, the question and one A record per address', async (t) => {
  const raw = encodeQuery(7, 'web.default.svc.cluster.local')
  const reply = encodeAnswer(decodeQuery(raw), raw, RCODE.NOERROR, ['10.43.0.10', '10.43.0.11'], true)
  t.same(decodeAnswer(reply), { id: 7, rcode: 0, authoritative: true, addresses: ['10.43.0.10', '10.43.0.11'] })
  t.equal(reply.readUInt16BE(2) & 0x8000, 0x8000, 'marked as a response')
  t.equal(reply.readUInt32BE(raw.length + 6), 5, 'TTL of 5 s')
})

t.test('malformed messages are refused with DnsFormatError', async (t) => {
  t.throws(() => decodeQuery(Buffer.from([1, 2, 3])), { name: 'Error', code: 'BRAMBLE_MESH_DNS_FORMAT', message: /12-byte header/ })
  const raw = encodeQuery(1, 'a.b')
  t.throws(() => decodeQuery(raw.subarray(0, raw.length - 3)), /cut short/)
  const looped = Buffer.from(raw)
  looped.writeUInt16BE(0xc00c, 12)
  t.throws(() => decodeQuery(looped), /compression pointer/)
  t.throws(() => decodeQuery(encodeAnswer(decodeQuery(raw), raw, 0, [], false)), /a response/)
})

t.test('cluster names resolve to the ClusterIP, or a headless Service\'s ready pod IPs', async (t) => {
  t.same(resolveClusterName('web.default.svc.cluster.local', services, endpoints), { rcode: RCODE.NOERROR, addresses: ['10.43.0.10'] })
  t.same(resolveClusterName('db.data.svc.cluster.local', services, endpoints), { rcode: RCODE.NOERROR, addresses: ['10.42.0.12', '10.42.1.9'] })
  t.same(resolveClusterName('web.other.svc.cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] }, 'wrong namespace')
  t.same(resolveClusterName('example.com.default.svc.cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] }, 'a search-path expansion of an outside name')
  t.same(resolveClusterName('cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] })
  t.equal(resolveClusterName('example.com', services, endpoints), undefined, 'outside the cluster domain: forwarded')
  t.equal(resolveClusterName('web.default.svc.cluster.localhost', services, endpoints), undefined)
})

t.test("a StatefulSet's pod resolves by its hostname under its headless Service, while ready", async (t) => {
  t.same(resolveClusterName('db-0.db.data.svc.cluster.local', services, endpoints), { rcode: RCODE.NOERROR, addresses: ['10.42.0.12'] })
  t.same(resolveClusterName('db-1.db.data.svc.cluster.local', services, endpoints), { rcode: RCODE.NOERROR, addresses: ['10.42.1.9'] })
  t.same(resolveClusterName('db-2.db.data.svc.cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] }, 'not ready')
  t.same(resolveClusterName('db-9.db.data.svc.cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] }, 'no such pod')
  t.same(resolveClusterName('web-0.web.default.svc.cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] }, 'only under a headless Service')
  t.same(resolveClusterName('a.db-0.db.data.svc.cluster.local', services, endpoints), { rcode: RCODE.NXDOMAIN, addresses: [] })
})
