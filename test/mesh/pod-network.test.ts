// The pod network as data: the rules that keep pod IPs inside the cluster and masquerade the
// rest, the network's name and gateway, and the bridge MTU that fits the WireGuard tunnel.

import t from 'tap'
import { FALLBACK_LINK_MTU, podBridgeMtu, podGateway, podNetworkName, podNetworkRules, ruleMarker } from '../../src/mesh/pod-network.js'

t.test('rules: accept cluster traffic into and out of the bridge, masquerade only what leaves the cluster CIDR', async (t) => {
  const rules = podNetworkRules({ clusterId: 'c1', node: 'pi-1', bridge: 'br-0123456789ab', podCidr: '10.42.3.0/24', clusterCidr: '10.42.0.0/16' })
  const comment = ['-m', 'comment', '--comment', 'bramble:c1:pi-1:pod-network']
  t.same(rules, [
    { table: 'filter', chain: 'DOCKER-USER', args: ['-s', '10.42.0.0/16', '-o', 'br-0123456789ab', ...comment, '-j', 'ACCEPT'] },
    { table: 'filter', chain: 'DOCKER-USER', args: ['-d', '10.42.0.0/16', '-i', 'br-0123456789ab', ...comment, '-j', 'ACCEPT'] },
    { table: 'nat', chain: 'POSTROUTING', args: ['-s', '10.42.3.0/24', '!', '-d', '10.42.0.0/16', '!', '-o', 'br-0123456789ab', ...comment, '-j', 'MASQUERADE'] },
  ])
  t.ok(rules.every((r) => r.args.includes(ruleMarker('c1', 'pi-1'))), 'every rule carries the marker it is found by')
  t.not(ruleMarker('c1', 'pi-1'), ruleMarker('c1', 'pi-2'), 'two agents on one host keep their rules apart')
})

t.test('without a DOCKER-USER chain (Docker run with --iptables=false) the accept rules go into FORWARD', async (t) => {
  const rules = podNetworkRules({ clusterId: 'c1', node: 'pi-1', bridge: 'br-0123456789ab', podCidr: '10.42.3.0/24', clusterCidr: '10.42.0.0/16', forwardChain: 'FORWARD' })
  t.same(rules.map((r) => `${r.table} ${r.chain}`), ['filter FORWARD', 'filter FORWARD', 'nat POSTROUTING'])
})

t.test("the network is named after the cluster and the subnet; the gateway is the subnet's first host", async (t) => {
  t.equal(podNetworkName('3c53', '10.42.3.0/24'), 'bramble-3c53-10.42.3.0-24')
  t.not(podNetworkName('3c53', '10.42.3.0/24'), podNetworkName('3c53', '10.42.4.0/24'), 'a new lease is a new network')
  t.equal(podGateway('10.42.3.0/24'), '10.42.3.1')
  t.throws(() => podNetworkName('3c53', '10.42.3.1/24'), /spec\.podCIDR has host bits set/)
})

t.test("the bridge MTU is the tunnel's: the link's minus WireGuard's 80 bytes", async (t) => {
  t.equal(podBridgeMtu(1500), 1420)
  t.equal(podBridgeMtu(9000), 8920)
  t.equal(podBridgeMtu(undefined), FALLBACK_LINK_MTU - 80, 'an unknown link counts as Ethernet')
  t.throws(() => podBridgeMtu(600), /below the 576 a tunnel needs/)
})
