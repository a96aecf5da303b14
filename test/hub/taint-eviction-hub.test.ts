// Eviction wired through a real hub process (startHub): a Node that never speaks is marked
// unreachable after --node-grace-period and its pod is evicted after the default toleration, with
// the TaintManagerEviction event. The node is excluded from the disruption count
// (node.kubernetes.io/exclude-disruption) since no other node here is alive to outvote it; the
// multi-node end-to-end tests run real agents.

import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

let hub: HubProcess
const api = (method: string, path: string, body?: unknown) => apiRequest(hub, method, path, body)

t.before(async () => {
  hub = await startHubProcess({ args: ['--node-grace-period', '2s', '--default-toleration-seconds', '1', '--heartbeat-interval', '1s'] })
})
t.teardown(async () => {
  closeApiAgents()
  await hub?.cleanup()
})

async function until<T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 30_000
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

t.test("a silent node's pod is evicted after the grace period and its toleration", async (t) => {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: 'silent', labels: { 'node.kubernetes.io/exclude-disruption': '' } },
    status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady' }] },
  }
  t.equal((await api('POST', '/api/v1/nodes', node)).status, 201)
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'stranded' }, spec: { nodeName: 'silent', containers: [{ name: 'c', image: 'busybox:1' }] } }
  t.equal((await api('POST', '/api/v1/namespaces/default/pods', pod)).status, 201)

  const taint = await until('the node is tainted unreachable', async () => (await api('GET', '/api/v1/nodes/silent')).json.spec?.taints?.find((x: any) => x.key === 'node.kubernetes.io/unreachable'))
  t.equal(taint.effect, 'NoExecute')
  t.ok(taint.timeAdded, 'with the time it was added')
  await until('the pod is evicted', async () => (await api('GET', '/api/v1/namespaces/default/pods/stranded')).status === 404)
  const events = (await api('GET', '/api/v1/namespaces/default/events')).json.items as any[]
  const eviction = events.find((e) => e.reason === 'TaintManagerEviction')
  t.equal(eviction?.message, 'Marking for deletion Pod default/stranded')
  t.equal(eviction?.involvedObject?.name, 'stranded')
})
