// `bramble delete --cascade` and the API's propagationPolicy against a real hub process: the hub's
// garbage collector orphans, or deletes in the background or foreground, what a Deployment owns.
// And `bramble delete --wait=false` of a claim a pod uses (pvc-protection): marked, not gone.
// No agent runs: pods stay Pending, which is all ownership needs.

import { spawn } from 'node:child_process'
import t, { type Test } from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BRAMBLE_BIN, startHubProcess, type HubProcess } from '../helpers/hub-process.js'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function bramble(args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env }
    delete env.KUBECONFIG
    const child = spawn(process.execPath, [BRAMBLE_BIN, '--kubeconfig', hub.kubeconfig, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
  })
}

let hub: HubProcess
const api = (method: string, path: string, body?: unknown) => apiRequest(hub, method, path, body)
const APPS = '/apis/apps/v1/namespaces/default'

t.before(async () => {
  hub = await startHubProcess({ args: ['--default-toleration-seconds', '45'] })
})
t.teardown(async () => {
  closeApiAgents()
  await hub?.cleanup()
})

async function until<T>(what: string, check: () => Promise<T | undefined | false>): Promise<T> {
  const deadline = Date.now() + 20_000
  for (;;) {
    const v = await check()
    if (v !== undefined && v !== false) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

const byApp = async (path: string, app: string) => ((await api('GET', path)).json.items as any[]).filter((o) => o.metadata.labels?.app === app)

async function deploymentWithPods(t: Test, name: string, replicas: number): Promise<any> {
  const body = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } } },
  }
  t.equal((await api('POST', `${APPS}/deployments`, body)).status, 201)
  return until(`${name} has its ReplicaSet and pods`, async () => {
    const rs = await byApp(`${APPS}/replicasets`, name)
    return rs.length === 1 && (await byApp('/api/v1/namespaces/default/pods', name)).length === replicas && rs[0]
  })
}

t.test('--cascade=orphan keeps the ReplicaSet and its pods, no longer owned; deleting the ReplicaSet then takes its pods', async (t) => {
  const rs = await deploymentWithPods(t, 'keep', 2)
  const run = await bramble(['delete', 'deployment', 'keep', '--cascade=orphan'])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'deployment.apps "keep" deleted\n')
  t.equal((await api('GET', `${APPS}/deployments/keep`)).status, 404, 'the Deployment is gone when the command returns')
  const [kept] = await byApp(`${APPS}/replicasets`, 'keep')
  t.equal(kept?.metadata.uid, rs.metadata.uid, 'the same ReplicaSet stays')
  t.notOk(kept?.metadata.ownerReferences, 'without a reference to the deleted Deployment')
  t.equal((await byApp('/api/v1/namespaces/default/pods', 'keep')).length, 2, 'its pods stay')

  const again = await bramble(['delete', 'rs', rs.metadata.name])
  t.equal(again.code, 0, again.stderr)
  await until('the pods follow their ReplicaSet (background, the default)', async () => (await byApp('/api/v1/namespaces/default/pods', 'keep')).length === 0)
})

t.test('--cascade=foreground returns once the Deployment is gone, its ReplicaSet and pods gone before it', async (t) => {
  await deploymentWithPods(t, 'fore', 2)
  const run = await bramble(['delete', 'deployment/fore', '--cascade=foreground'])
  t.equal(run.code, 0, run.stderr)
  t.equal((await api('GET', `${APPS}/deployments/fore`)).status, 404)
  t.equal((await byApp(`${APPS}/replicasets`, 'fore')).length, 0)
  t.equal((await byApp('/api/v1/namespaces/default/pods', 'fore')).length, 0)
})

t.test('a claim a pod on a node uses is only marked: `delete --wait=false` returns at once, `get pvc` says Terminating, and it goes with the pod', async (t) => {
  const CORE = '/api/v1/namespaces/default'
  const claim = { apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'db-data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }
  const made = await api('POST', `${CORE}/persistentvolumeclaims`, claim)
  t.equal(made.status, 201)
  t.same(made.json.metadata.finalizers, ['kubernetes.io/pvc-protection'], 'made with the protection finalizer')
  // On a node (which never reports: no agent runs), not finished: it may be writing to the volume.
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'db' }, spec: { nodeName: 'pi-1', containers: [{ name: 'c', image: 'busybox:1' }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'db-data' } }] } }
  t.equal((await api('POST', `${CORE}/pods`, pod)).status, 201)

  const run = await bramble(['delete', 'pvc', 'db-data', '--wait=false'])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'persistentvolumeclaim "db-data" deleted\n')
  const table = await bramble(['get', 'pvc', 'db-data'])
  t.match(table.stdout, /^db-data\s+Terminating\s/m, `shown Terminating:\n${table.stdout}`)
  await new Promise((r) => setTimeout(r, 500))
  t.equal((await api('GET', `${CORE}/persistentvolumeclaims/db-data`)).status, 200, 'still there while the pod is')
  const described = await bramble(['describe', 'pvc', 'db-data'])
  t.match(described.stdout, /^Status:\s+Terminating$[\s\S]*^Finalizers:\s+\[kubernetes\.io\/pvc-protection\]$[\s\S]*^Used By:\s+db$/m, `describe says who holds it:\n${described.stdout}`)

  t.equal((await bramble(['delete', 'pod', 'db'])).code, 0)
  await until('the claim gone with its pod', async () => (await api('GET', `${CORE}/persistentvolumeclaims/db-data`)).status === 404)
  t.pass('released once no pod uses it')

  const bad = await bramble(['delete', 'pvc', 'other', '--wait=sometimes'])
  t.equal(bad.code, 2)
  t.match(bad.stderr, /invalid --wait value \(sometimes\)\. Must be "true" or "false"/)
})

t.test('a bad --cascade is a usage error; a bad propagationPolicy is a 400 naming the field', async (t) => {
  const run = await bramble(['delete', 'deployment', 'whatever', '--cascade=sideways'])
  t.equal(run.code, 2)
  t.match(run.stderr, /invalid cascade value \(sideways\)\. Must be "background", "foreground", or "orphan"/)
  const res = await api('DELETE', `${APPS}/deployments/whatever?propagationPolicy=Sideways`)
  t.equal(res.status, 400)
  t.match(res.json.message, /^propagationPolicy: Unsupported value: "Sideways"/)
})

t.test("new pods tolerate not-ready and unreachable for the hub's --default-toleration-seconds", async (t) => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'tol' }, spec: { containers: [{ name: 'c', image: 'busybox:1' }] } }
  const res = await api('POST', '/api/v1/namespaces/default/pods', pod)
  t.equal(res.status, 201)
  t.same(res.json.spec.tolerations, [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 45 },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 45 },
  ])
})
