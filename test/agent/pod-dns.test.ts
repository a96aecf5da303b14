// A pod's resolv.conf from its dnsPolicy and dnsConfig, as the kubelet writes it.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { podDns, sandboxSpec } from '../../src/agent/pod-container-spec.js'

const cluster = { nameserver: '169.254.20.10', domain: 'cluster.local' }
const pod = (spec: Record<string, unknown> = {}): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop', uid: 'u1' }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec } })

t.test('ClusterFirst (the default): the node DNS, the namespace search path and ndots:5', async (t) => {
  t.same(podDns(pod(), cluster), { servers: ['169.254.20.10'], search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], options: ['ndots:5'] })
  const spec = sandboxSpec({ pod: pod(), configMaps: {}, secrets: {} }, { clusterId: 'c', podsDir: '/tmp', secretsDir: '/run/bramble/c/pods', pauseImage: 'pause', log: { maxSize: '1m', maxFile: 1 }, defaultGraceSeconds: 1, clusterDns: cluster }, 0)
  t.same(spec.dns?.servers, ['169.254.20.10'], 'the sandbox carries it')
})

t.test('Default, and host-network pods under ClusterFirst, keep the node resolvers; ClusterFirstWithHostNet does not', async (t) => {
  t.equal(podDns(pod({ dnsPolicy: 'Default' }), cluster), undefined)
  t.equal(podDns(pod({ hostNetwork: true }), cluster), undefined)
  t.same(podDns(pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }), cluster)?.servers, ['169.254.20.10'])
  t.equal(podDns(pod(), undefined), undefined, 'no cluster DNS on the node: the engine default')
})

t.test('None uses dnsConfig alone; dnsConfig adds to the others', async (t) => {
  const dnsConfig = { nameservers: ['1.1.1.1'], searches: ['corp.example'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] }
  t.same(podDns(pod({ dnsPolicy: 'None', dnsConfig }), cluster), { servers: ['1.1.1.1'], search: ['corp.example'], options: ['ndots:2', 'edns0'] })
  t.same(podDns(pod({ dnsConfig }), cluster), { servers: ['169.254.20.10', '1.1.1.1'], search: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example'], options: ['ndots:2', 'edns0'] })
})
