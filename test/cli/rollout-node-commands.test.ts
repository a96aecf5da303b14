// `bramble rollout status|history|undo` and `bramble cordon|uncordon|drain` against a real hub
// process (no agent: pods stay Pending, which history, undo and drain do not need), judged by
// stdout, stderr, exit code and what the API then holds.

import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { BRAMBLE_BIN, startHubProcess, type HubProcess } from '../helpers/hub-process.js'

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

function bramble(...args: string[]): Promise<Run> {
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
let api: ApiTarget
let scratch: string

t.before(async () => {
  // A node made through the API sends no heartbeats: a long grace period keeps it Ready for the test.
  hub = await startHubProcess({ args: ['--node-grace-period', '10m'] })
  api = { server: hub.server, ca: hub.ca, token: hub.token }
  scratch = mkdtempSync(join(tmpdir(), 'bramble-rollout-'))
})
t.teardown(async () => {
  closeApiAgents()
  await hub?.cleanup()
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

/** Polls the API until `check` holds (the hub's controllers work asynchronously), within a generous deadline. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function deploymentManifest(name: string, image: string, cause: string): string {
  const file = join(scratch, `${name}-${image.replace(/\W/g, '_')}.yaml`)
  writeFileSync(
    file,
    `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${name}
  annotations:
    kubernetes.io/change-cause: "${cause}"
spec:
  replicas: 2
  selector: {matchLabels: {app: ${name}}}
  template:
    metadata: {labels: {app: ${name}}}
    spec:
      containers: [{name: app, image: "${image}"}]
`,
  )
  return file
}

async function revisions(name: string): Promise<Map<number, string>> {
  const res = await apiRequest(api, 'GET', '/apis/apps/v1/namespaces/default/replicasets')
  const out = new Map<number, string>()
  for (const rs of res.json.items) {
    if (rs.metadata.ownerReferences?.[0]?.name !== name) continue
    out.set(Number(rs.metadata.annotations['deployment.kubernetes.io/revision']), rs.spec.template.spec.containers[0].image)
  }
  return out
}

async function imageOf(name: string): Promise<string> {
  return (await apiRequest(api, 'GET', `/apis/apps/v1/namespaces/default/deployments/${name}`)).json.spec.template.spec.containers[0].image
}

async function applyRevision(name: string, image: string, cause: string, revision: number): Promise<void> {
  const run = await bramble('apply', '-f', deploymentManifest(name, image, cause))
  if (run.code !== 0) throw new Error(run.stderr)
  await until(`revision ${revision} of ${name} exists`, async () => (await revisions(name)).get(revision) === image)
}

t.test('rollout history and undo on a Deployment whose template changed twice', async (t) => {
  await applyRevision('web', 'nginx:1.25', 'first', 1)
  await applyRevision('web', 'nginx:1.26', 'second', 2)
  await applyRevision('web', 'nginx:1.27', 'third', 3)

  const history = await bramble('rollout', 'history', 'deployment/web')
  t.equal(history.code, 0, history.stderr)
  t.equal(history.stdout, 'deployment.apps/web \nREVISION  CHANGE-CAUSE\n1         first\n2         second\n3         third\n\n')

  const one = await bramble('rollout', 'history', 'deploy/web', '--revision', '2')
  t.equal(one.code, 0, one.stderr)
  t.match(one.stdout, /^deployment\.apps\/web with revision #2\nPod Template:\n/)
  t.match(one.stdout, /Image:\s+nginx:1\.26/)

  const undo = await bramble('rollout', 'undo', 'deployment/web')
  t.equal(undo.code, 0, undo.stderr)
  t.equal(undo.stdout, 'deployment.apps/web rolled back\n')
  t.equal(await imageOf('web'), 'nginx:1.26', 'back on the previous template')
  await until('the rolled-back ReplicaSet is revision 4', async () => (await revisions('web')).get(4) === 'nginx:1.26')
  const after = await bramble('rollout', 'history', 'deployment/web')
  t.match(after.stdout, /\n1 +first\n3 +third\n4 +second\n/, 'revision 2 became 4, its change-cause with it')

  const to1 = await bramble('rollout', 'undo', 'deployment/web', '--to-revision', '1')
  t.equal(to1.code, 0, to1.stderr)
  t.equal(await imageOf('web'), 'nginx:1.25')

  const missing = await bramble('rollout', 'undo', 'deployment/web', '--to-revision', '9')
  t.equal(missing.code, 1)
  t.match(missing.stderr, 'unable to find specified revision 9 in history of deployment "web"')
  t.equal(await imageOf('web'), 'nginx:1.25', 'nothing changed')

  // Out of the way of the drain test: its pods would still be coming and going.
  t.equal((await bramble('scale', 'deployment/web', '--replicas=0')).code, 0)
  await until('"web" has no pods', async () => (await apiRequest(api, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).json.items.length === 0)
})

t.test('rollout undo with no earlier revision says so', async (t) => {
  await applyRevision('solo', 'redis:7', 'only', 1)
  const run = await bramble('rollout', 'undo', 'deployment/solo')
  t.equal(run.code, 1)
  t.match(run.stderr, 'no rollout history found for deployment "solo"')
})

t.test('rollout status times out with a clear message when pods never become ready', async (t) => {
  const run = await bramble('rollout', 'status', 'deployment/solo', '--timeout', '2s')
  t.equal(run.code, 1)
  t.match(run.stdout, 'Waiting for deployment "solo" rollout to finish: 0 of 2 updated replicas are available...\n')
  t.match(run.stderr, 'timed out after 2s waiting for the rollout of deployment "solo" to finish')

  const once = await bramble('rollout', 'status', 'deployment/solo', '--watch=false')
  t.equal(once.code, 0, once.stderr)
  t.equal(once.stdout, 'Waiting for deployment "solo" rollout to finish: 0 of 2 updated replicas are available...\n')

  const unknown = await bramble('rollout', 'status', 'deployment/nope', '--timeout', '2s')
  t.equal(unknown.code, 1)
  t.match(unknown.stderr, 'deployments.apps "nope" not found')

  const usage = await bramble('rollout', 'status', 'service/solo')
  t.equal(usage.code, 2)
  t.match(usage.stderr, 'rollout status works on deployments, daemonsets and statefulsets')
})

async function createNode(name: string): Promise<void> {
  const res = await apiRequest(api, 'POST', '/api/v1/nodes', {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/arch': process.arch === 'arm64' ? 'arm64' : 'amd64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name } },
    status: {
      capacity: { cpu: '4', memory: '4Gi', pods: '110' },
      allocatable: { cpu: '4', memory: '4Gi', pods: '110' },
      conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'made by the test' }],
    },
  })
  if (res.status !== 201) throw new Error(res.text)
}

const nodeOf = async (name: string) => (await apiRequest(api, 'GET', `/api/v1/nodes/${name}`)).json

t.test('cordon and uncordon set and clear spec.unschedulable, saying when there is nothing to do', async (t) => {
  await createNode('pi-1')
  const cordon = await bramble('cordon', 'pi-1')
  t.equal(cordon.stdout, 'node/pi-1 cordoned\n', cordon.stderr)
  t.equal((await nodeOf('pi-1')).spec.unschedulable, true)
  t.equal((await bramble('cordon', 'node/pi-1')).stdout, 'node/pi-1 already cordoned\n')
  t.equal((await bramble('uncordon', 'pi-1')).stdout, 'node/pi-1 uncordoned\n')
  t.notOk((await nodeOf('pi-1')).spec?.unschedulable, 'the field is gone')
  t.equal((await bramble('uncordon', 'pi-1')).stdout, 'node/pi-1 already uncordoned\n')
  const missing = await bramble('cordon', 'pi-404')
  t.equal(missing.code, 1)
  t.match(missing.stderr, 'nodes "pi-404" not found')
})

async function podsOn(node: string): Promise<any[]> {
  return (await apiRequest(api, 'GET', `/api/v1/pods?fieldSelector=spec.nodeName%3D${node}`)).json.items
}

t.test('drain refuses an unmanaged pod without --force, then evicts every pod bound to the node', async (t) => {
  // pi-1 is the only Ready, schedulable node: the scheduler binds the Deployment's pods there.
  await until('both pods of "solo" are bound to pi-1', async () => (await podsOn('pi-1')).length === 2)
  const bare = await apiRequest(api, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bare' }, spec: { nodeName: 'pi-1', containers: [{ name: 'c', image: 'busybox' }] } })
  t.equal(bare.status, 201, bare.text)
  const before = await podsOn('pi-1')
  t.equal(before.length, 3, 'two pods of "solo" and "bare"')

  const refused = await bramble('drain', 'pi-1')
  t.equal(refused.code, 1)
  t.equal(refused.stdout, 'node/pi-1 cordoned\n')
  t.match(refused.stderr, 'cannot delete Pods that declare no controller (use --force to override): default/bare')
  t.match(refused.stderr, 'There are pending nodes to be drained:\n pi-1\n')
  t.equal((await podsOn('pi-1')).length, before.length, 'nothing was evicted')
  t.equal((await nodeOf('pi-1')).spec.unschedulable, true, 'the node stays cordoned')

  const drained = await bramble('drain', 'pi-1', '--force', '--timeout', '1m')
  t.equal(drained.code, 0, drained.stderr)
  t.match(drained.stderr, 'Warning: deleting Pods that declare no controller: default/bare')
  for (const pod of before) {
    t.match(drained.stderr, `evicting pod default/${pod.metadata.name}\n`)
    t.match(drained.stdout, `pod/${pod.metadata.name} evicted\n`)
  }
  t.match(drained.stdout, /^node\/pi-1 already cordoned\n[\s\S]*node\/pi-1 drained\n$/)
  t.same(await podsOn('pi-1'), [], 'no pod is bound to the node any more')
  await until('the ReplicaSet has made replacements, left unbound on the cordoned node', async () => {
    const pods = (await apiRequest(api, 'GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dsolo')).json.items
    return pods.length === 2 && pods.every((p: any) => !p.spec.nodeName)
  })
})

t.test('a DaemonSet: rollout status reads its counts; drain refuses its pod unless --ignore-daemonsets, which leaves it in place', async (t) => {
  await createNode('pi-2')
  const ds = await apiRequest(api, 'POST', '/apis/apps/v1/namespaces/default/daemonsets', {
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agentd' },
    spec: { selector: { matchLabels: { app: 'agentd' } }, template: { metadata: { labels: { app: 'agentd' } }, spec: { containers: [{ name: 'a', image: 'busybox' }] } } },
  })
  t.equal(ds.status, 201, ds.text)
  await until('the DaemonSet pod is bound to pi-2', async () => (await podsOn('pi-2')).some((p) => p.metadata.labels?.app === 'agentd'))

  const once = await bramble('rollout', 'status', 'daemonset/agentd', '--watch=false')
  t.equal(once.code, 0, once.stderr)
  t.match(once.stdout, /^Waiting for daemon set (spec update to be observed|"agentd" rollout to finish: \d+ (out )?of \d+ (new|updated) pods)/)
  const timedOut = await bramble('rollout', 'status', 'ds/agentd', '--timeout', '2s')
  t.equal(timedOut.code, 1)
  t.match(timedOut.stderr, 'timed out after 2s waiting for the rollout of daemonset "agentd" to finish')

  const refused = await bramble('drain', 'pi-2')
  t.equal(refused.code, 1)
  t.match(refused.stderr, /cannot delete DaemonSet-managed Pods \(use --ignore-daemonsets to ignore\): default\/agentd-/)

  const drained = await bramble('drain', 'pi-2', '--ignore-daemonsets', '--timeout', '1m')
  t.equal(drained.code, 0, drained.stderr)
  t.match(drained.stderr, /Warning: ignoring DaemonSet-managed Pods: default\/agentd-/)
  t.match(drained.stdout, 'node/pi-2 drained\n')
  const left = await podsOn('pi-2')
  t.ok(left.length > 0 && left.every((p) => p.metadata.labels?.app === 'agentd'), 'only the DaemonSet pod is left on the node')
})
