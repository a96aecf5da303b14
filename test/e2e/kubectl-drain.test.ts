// The real kubectl (every pinned version from 1.29 to 1.33 found here) cordons, uncordons and
// drains a node of a real hub: drain finds pods/eviction through discovery and evicts through it.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { pinnedKubectls, runKubectl, type KubectlRun } from '../helpers/kubectl.js'



const found = pinnedKubectls()

let hub: HubProcess
let api: ApiTarget
const home = mkdtempSync(join(tmpdir(), 'bramble-kubectl-drain-'))

function kubectl(bin: string, args: string[]): Promise<KubectlRun> {
  return runKubectl(bin, hub.kubeconfig, home, args)
}

async function create(path: string, body: unknown): Promise<void> {
  const res = await apiRequest(api, 'POST', path, body)
  if (res.status !== 201) throw new Error(`POST ${path}: ${res.text}`)
}

const bound = (name: string, node: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: node, containers: [{ name: 'c', image: 'busybox' }] } })

if (found.length === 0) {
  t.comment('no pinned kubectl (kubectl.1.29 ... kubectl.1.33) on PATH or in /usr/lib/google-cloud-sdk/bin: skipping kubectl cordon and drain')
  t.pass('skipped: no kubectl found')
} else {
  t.before(async () => {
    hub = await startHubProcess()
    api = { server: hub.server, ca: hub.ca, token: hub.token }
  })
  t.teardown(async () => {
    closeApiAgents()
    await hub?.cleanup()
    rmSync(home, { recursive: true, force: true })
  })

  for (const { version, bin } of found) {
    t.test(`kubectl ${version}`, async (t) => {
      const node = `drain-${version.replace('.', '-')}`
      const run = (...args: string[]) => kubectl(bin, args)
      await create('/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: node } })
      await create('/api/v1/namespaces/default/pods', bound(`${node}-a`, node))
      await create('/api/v1/namespaces/default/pods', bound(`${node}-b`, node))

      const cordon = await run('cordon', node)
      t.equal(cordon.code, 0, cordon.stderr)
      t.match(cordon.stdout, `node/${node} cordoned`)
      t.equal((await apiRequest(api, 'GET', `/api/v1/nodes/${node}`)).json.spec.unschedulable, true)

      const refused = await run('drain', node)
      t.not(refused.code, 0, 'unmanaged pods are refused without --force')
      t.match(refused.stderr, `default/${node}-a`)
      t.equal((await apiRequest(api, 'GET', `/api/v1/namespaces/default/pods/${node}-a`)).status, 200, 'nothing was evicted')

      const drain = await run('drain', node, '--force', '--timeout', '60s')
      t.equal(drain.code, 0, drain.stderr)
      // "evicted", not "deleted": kubectl found pods/eviction in discovery and used it.
      t.match(drain.stdout, `pod/${node}-a evicted`)
      t.match(drain.stdout, `pod/${node}-b evicted`)
      t.match(drain.stdout, `node/${node} drained`)
      const left = await apiRequest(api, 'GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${node}`)
      t.same(left.json.items, [], 'the pods bound to the node are gone')

      const uncordon = await run('uncordon', node)
      t.equal(uncordon.code, 0, uncordon.stderr)
      t.match(uncordon.stdout, `node/${node} uncordoned`)
      t.notOk((await apiRequest(api, 'GET', `/api/v1/nodes/${node}`)).json.spec?.unschedulable)
    })
  }
}
