// The WireGuard port's contract against the real adapter (kernel WireGuard where the kernel has
// it, wireguard-go here), inside a network namespace made for the run.

import t from 'tap'
import { WireGuardLink } from '../../src/agent/wireguard-link.js'
import { wireGuardContract } from '../contract/wireguard.js'
import { uniqueInterfaceName, WireGuardNetns, wireguardNetnsUnavailable } from '../helpers/wireguard-netns.js'

const unavailable = await wireguardNetnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else {
  wireGuardContract(t, 'wg/ip in a network namespace', async () => {
    const ns = await WireGuardNetns.create()
    const other = await WireGuardNetns.create()
    const interfaceName = uniqueInterfaceName()
    ns.ownLink(interfaceName)
    return {
      wireguard: new WireGuardLink({ netns: ns.name }),
      reopen: () => new WireGuardLink({ netns: ns.name }),
      otherNamespace: () => new WireGuardLink({ netns: other.name }),
      interfaceName,
      close: async () => {
        await ns.cleanup()
        await other.cleanup()
      },
    }
  })
}
