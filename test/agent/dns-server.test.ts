// The node's DNS server on a real UDP socket: cluster names answered, others forwarded to the
// upstream resolver (a real UDP server in the test), SERVFAIL when no upstream answers.

import { createSocket } from 'node:dgram'
import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { resolvConfNameservers, startDnsServer } from '../../src/agent/dns-server.js'
import { RCODE, TYPE_AAAA, decodeAnswer, decodeQuery, encodeAnswer, encodeQuery } from '../../src/mesh/dns.js'
import { silentLogger } from '../../src/lib/logger.js'

let services: KubeObject[] = [{ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.43.0.10' } }]

/** An upstream resolver answering every A query with 93.184.216.34, and counting them. */
async function upstream(t: any) {
  const s = createSocket('udp4')
  const seen: string[] = []
  s.on('message', (msg, from) => {
    const q = decodeQuery(msg)
    seen.push(q.question.name)
    s.send(encodeAnswer(q, msg, RCODE.NOERROR, ['93.184.216.34'], false, 300), from.port, from.address)
  })
  await new Promise<void>((r) => s.bind(0, '127.0.0.1', () => r()))
  t.teardown(() => s.close())
  return { port: s.address().port, seen }
}

async function ask(port: number, name: string, type = 1) {
  const s = createSocket('udp4')
  try {
    return await new Promise<ReturnType<typeof decodeAnswer>>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no answer for ${name}`)), 5000)
      s.on('message', (msg) => {
        clearTimeout(timer)
        resolve(decodeAnswer(msg))
      })
      s.send(encodeQuery(0xbeef, name, type), port, '127.0.0.1')
    })
  } finally {
    s.close()
  }
}

t.test('answers cluster names from the Services it holds and forwards the rest', async (t) => {
  const up = await upstream(t)
  const dns = await startDnsServer({ host: '127.0.0.1', port: 0, upstreams: [`127.0.0.1:${up.port}`], cluster: () => ({ services, endpoints: [] }), logger: silentLogger() })
  t.teardown(() => dns.close())

  t.same(await ask(dns.port, 'web.default.svc.cluster.local'), { id: 0xbeef, rcode: RCODE.NOERROR, authoritative: true, addresses: ['10.43.0.10'] })
  t.same((await ask(dns.port, 'nope.default.svc.cluster.local')).rcode, RCODE.NXDOMAIN)
  const aaaa = await ask(dns.port, 'web.default.svc.cluster.local', TYPE_AAAA)
  t.same([aaaa.rcode, aaaa.addresses], [RCODE.NOERROR, []], 'no IPv6 address: an empty answer, not NXDOMAIN')
  t.same(up.seen, [], 'cluster names never leave the node')

  t.same(await ask(dns.port, 'example.com'), { id: 0xbeef, rcode: RCODE.NOERROR, authoritative: false, addresses: ['93.184.216.34'] }, "the upstream's answer")
  t.same(up.seen, ['example.com'])

  services = []
  t.equal((await ask(dns.port, 'web.default.svc.cluster.local')).rcode, RCODE.NXDOMAIN, 'a deleted Service is gone at the next query')
})

t.test('SERVFAIL when no upstream answers in time', async (t) => {
  const silent = createSocket('udp4')
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()))
  t.teardown(() => silent.close())
  const dns = await startDnsServer({ host: '127.0.0.1', port: 0, upstreams: [`127.0.0.1:${silent.address().port}`], forwardTimeoutMs: 200, cluster: () => ({ services: [], endpoints: [] }), logger: silentLogger() })
  t.teardown(() => dns.close())
  t.equal((await ask(dns.port, 'example.com')).rcode, RCODE.SERVFAIL)
})

t.test('reads the IPv4 nameservers of a resolv.conf', async (t) => {
  t.same(resolvConfNameservers('# comment\nnameserver 10.0.0.2\nsearch lan\nnameserver ::1\n nameserver 1.1.1.1 \noptions ndots:1\n'), ['10.0.0.2', '1.1.1.1'])
})
