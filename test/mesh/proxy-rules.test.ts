// The service proxy's rules: from Services and Endpoints to the iptables-restore text.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { chainName, chainsFor, proxyRules, servicePorts } from '../../src/mesh/proxy-rules.js'

const NONE = { nat: [], filter: [] }
const chains = chainsFor('1a2b3c4d5e6f7a8b')
const P = chains.prefix

function svc(name: string, spec: Record<string, unknown>): KubeObject {
  return { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec }
}

function ep(name: string, subsets: unknown[]): KubeObject {
  return { apiVersion: 'v1', kind: 'Endpoints', metadata: { name, namespace: 'default' }, subsets } as KubeObject
}

const web = svc('web', { clusterIP: '10.43.0.10', ports: [{ port: 80, protocol: 'TCP' }] })
const webEndpoints = ep('web', [{ addresses: [{ ip: '10.42.1.3' }, { ip: '10.42.0.5' }, { ip: '10.42.2.7' }], notReadyAddresses: [{ ip: '10.42.0.9' }], ports: [{ port: 8080, protocol: 'TCP' }] }])

t.test('a ClusterIP port jumps to its service chain, which spreads over one DNAT chain per ready endpoint', async (t) => {
  const text = proxyRules({ chains, services: [web], endpoints: [webEndpoints], existingChains: NONE })
  const svcChain = chainName(P, 'SVC', 'default/web/tcp')
  t.ok(svcChain.length <= 28, 'fits iptables chain names')
  t.match(text, `-A ${P}SERVICES -d 10.43.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web" -j ${svcChain}`)
  const spread = text.split('\n').filter((l) => l.startsWith(`-A ${svcChain} `))
  t.equal(spread.length, 3, 'one jump per ready endpoint; the not-ready one is out')
  t.match(spread[0], new RegExp(`--probability 0\\.3333333333 -j ${P}SEP-`))
  t.match(spread[1], new RegExp(`--probability 0\\.5000000000 -j ${P}SEP-`))
  t.notMatch(spread[2], /probability/, 'the last takes what is left')
  const dnat = text.split('\n').filter((l) => l.includes('DNAT'))
  t.same(dnat.map((l) => l.split('--to-destination ')[1]), ['10.42.0.5:8080', '10.42.1.3:8080', '10.42.2.7:8080'])
  t.notMatch(text, /10\.42\.0\.9/)
  t.match(text, `:${svcChain} - [0:0]`, 'declared, so --noflush flushes it before filling it')
  t.match(text, /^\*nat\n[\s\S]*COMMIT\n\*filter\n[\s\S]*COMMIT\n$/)
  t.equal(proxyRules({ chains, services: [web], endpoints: [webEndpoints], existingChains: NONE }), text, 'the same input gives the same text')
})

t.test('a port without endpoints is rejected in the filter table and gets no nat chain', async (t) => {
  const text = proxyRules({ chains, services: [web], endpoints: [], existingChains: NONE })
  t.match(text, `-A ${P}SERVICES -d 10.43.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web has no endpoints" -j REJECT`)
  t.notMatch(text, new RegExp(`${P}SVC-`))
})

t.test('named ports pick the endpoints port of the same name; UDP ports match udp', async (t) => {
  const dns = svc('dns', { clusterIP: '10.43.0.53', ports: [{ name: 'dns', port: 53, protocol: 'UDP' }, { name: 'dns-tcp', port: 53, protocol: 'TCP' }] })
  const e = ep('dns', [{ addresses: [{ ip: '10.42.0.4' }], ports: [{ name: 'dns', port: 5353, protocol: 'UDP' }, { name: 'dns-tcp', port: 5354, protocol: 'TCP' }] }])
  const views = servicePorts([dns], [e])
  t.same(views.map((v) => [v.id, v.protocol, v.endpoints]), [
    ['default/dns:dns', 'udp', ['10.42.0.4:5353']],
    ['default/dns:dns-tcp', 'tcp', ['10.42.0.4:5354']],
  ])
  const text = proxyRules({ chains, services: [dns], endpoints: [e], existingChains: NONE })
  t.match(text, '-p udp -m udp --dport 53')
  t.match(text, '-j DNAT --to-destination 10.42.0.4:5353')
})

t.test('node ports mark for masquerade and reach the service chain; local destinations go to the node port chain last', async (t) => {
  const np = svc('np', { type: 'NodePort', clusterIP: '10.43.0.11', ports: [{ port: 80, nodePort: 30080 }] })
  const text = proxyRules({ chains, services: [np], endpoints: [ep('np', [{ addresses: [{ ip: '10.42.0.5' }], ports: [{ port: 80 }] }])], existingChains: NONE })
  const svcChain = chainName(P, 'SVC', 'default/np/tcp')
  t.match(text, `-A ${P}NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment "default/np" -j ${P}MARK-MASQ`)
  t.match(text, `-A ${P}NODEPORTS -p tcp -m tcp --dport 30080 -m comment --comment "default/np" -j ${svcChain}`)
  const nat = text.split('COMMIT')[0]!.trim().split('\n')
  t.equal(nat.filter((l) => l.startsWith(`-A ${P}SERVICES`)).at(-1), `-A ${P}SERVICES -m addrtype --dst-type LOCAL -j ${P}NODEPORTS`)
  t.match(text, `-A ${P}POSTROUTING -m comment --comment "bramble service traffic requiring SNAT" -j MASQUERADE`)
})

t.test('headless and ExternalName Services get no rules; with a cluster CIDR, outside sources are masqueraded', async (t) => {
  const headless = svc('h', { clusterIP: 'None', ports: [{ port: 80 }] })
  const ext = svc('x', { type: 'ExternalName', externalName: 'example.org' })
  t.same(servicePorts([headless, ext], [ep('h', [{ addresses: [{ ip: '10.42.0.5' }], ports: [{ port: 80 }] }])]), [])
  const text = proxyRules({ chains, services: [web], endpoints: [webEndpoints], existingChains: NONE, clusterCidr: '10.42.0.0/16' })
  t.match(text, `-A ${chainName(P, 'SVC', 'default/web/tcp')} ! -s 10.42.0.0/16 -d 10.43.0.10/32 -p tcp -m tcp --dport 80 -m comment --comment "default/web" -j ${P}MARK-MASQ`)
})

t.test('chains of ours no longer needed are flushed and deleted; nobody else\'s are touched, another cluster\'s neither', async (t) => {
  const gone = chainName(P, 'SVC', 'default/old/tcp')
  const other = chainName(chainsFor('ffee99').prefix, 'SVC', 'default/old/tcp')
  t.ok(chains.prefix.startsWith('BRAMBLE-1A2B3C-') && gone.length === 28, gone)
  const text = proxyRules({ chains, services: [], endpoints: [], existingChains: { nat: [gone, `${P}SERVICES`, other, 'DOCKER', 'KUBE-SERVICES'], filter: ['DOCKER-USER'] } })
  t.notMatch(text, other)
  t.match(text, `:${gone} - [0:0]`)
  t.match(text, `-X ${gone}\nCOMMIT`)
  t.notMatch(text, /DOCKER|KUBE-/)
  t.notMatch(text, `-X ${P}SERVICES`)
})
