// The agent's WireGuard flags: defaults, values, and bad input refused naming the flag.

import t from 'tap'
import { resolveAgentFlags } from '../../src/lib/config.js'

const ENV = { HOME: '/home/pi' }

t.test('defaults: interface bramble0, port 51820, keepalive 25 s, endpoint from the InternalIP', async (t) => {
  const f = resolveAgentFlags({}, ENV)
  t.equal(f.wireguardInterface, 'bramble0')
  t.equal(f.wireguardPort, 51820)
  t.equal(f.wireguardKeepaliveSeconds, 25)
  t.equal(f.advertiseAddress, '')
})

t.test('values: another interface, none to turn the overlay off, port, keepalive, advertised address', async (t) => {
  const f = resolveAgentFlags({ wireguardInterface: 'wg-pi1', wireguardPort: '51999', wireguardKeepalive: '1m', advertiseAddress: '192.0.2.7' }, ENV)
  t.same([f.wireguardInterface, f.wireguardPort, f.wireguardKeepaliveSeconds, f.advertiseAddress], ['wg-pi1', 51999, 60, '192.0.2.7'])
  t.equal(resolveAgentFlags({ wireguardInterface: 'none' }, ENV).wireguardInterface, '')
  t.equal(resolveAgentFlags({ wireguardKeepalive: '0' }, ENV).wireguardKeepaliveSeconds, 0)
})

t.test('bad values are refused, naming the flag', async (t) => {
  t.throws(() => resolveAgentFlags({ wireguardInterface: 'a-name-far-too-long' }, ENV), /--wireguard-interface must be an interface name/)
  t.throws(() => resolveAgentFlags({ wireguardPort: '0' }, ENV), /--wireguard-port must be a port 1-65535/)
  t.throws(() => resolveAgentFlags({ wireguardKeepalive: '1500ms' }, ENV), /--wireguard-keepalive must be whole seconds/)
  t.throws(() => resolveAgentFlags({ advertiseAddress: 'pi1.local' }, ENV), /--advertise-address must be an IP address/)
})
