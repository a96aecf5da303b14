// An agent killed with SIGKILL in the middle of a Deployment's rolling update (a real hub, a real
// agent on the Docker engine): once it is started again from its data dir, the rollout completes,
// every pod of the new version runs exactly one container, and nothing of the old version is left,
// neither pods in the API nor containers on the engine, running or exited.

import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const docker = dockerClient()
const NODE = 'f1-rollout'
const REPLICAS = 4
const PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Df1-roll'
const DEPLOYMENT = '/apis/apps/v1/namespaces/default/deployments/f1-roll'

/** A readiness delay makes each step of the rollout take a few seconds: there is a middle to kill it in. */
const manifest = (version: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: f1-roll}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: f1-roll}}
  strategy: {type: RollingUpdate, rollingUpdate: {maxSurge: 1, maxUnavailable: 0}}
  template:
    metadata: {labels: {app: f1-roll}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        env: [{name: VERSION, value: "${version}"}]
        command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
        readinessProbe: {exec: {command: ['true']}, initialDelaySeconds: 2, periodSeconds: 1}
`

async function run() {
  await ensureBusyboxImage(docker)
  const hub = await startHubProcess({ dataDir: mkdtempSync(join(tmpdir(), 'f1-rollout-hub-')) })
  const agentDir = mkdtempSync(join(tmpdir(), 'f1-rollout-agent-'))
  const clusterId = readFileSync(join(hub.dataDir, 'cluster-id'), 'utf8').trim()
  let agent: AgentProcess | undefined
  t.teardown(async () => {
    await agent?.stop()
    await hub.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    rmSync(agentDir, { recursive: true, force: true })
    await hub.cleanup()
  })
  const apply = async (version: string) => {
    const file = join(agentDir, `f1-roll-${version}.yaml`)
    writeFileSync(file, manifest(version))
    const r = await runCli(['apply', '-f', file], { kubeconfig: hub.kubeconfig })
    if (r.code !== 0) throw new Error(`apply ${version}: ${r.stderr}`)
  }
  const pods = async (): Promise<any[]> => (await apiRequest(hub, 'GET', PODS)).json.items
  const ready = (p: any) => !p.metadata.deletionTimestamp && p.status?.phase === 'Running' && p.status.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
  const hashOf = (p: any) => p.metadata.labels['pod-template-hash']

  // No assertion out here: tap ends the root test at its first one when no subtest is pending.
  const token = await runCli(['token', 'create', '--data-dir', hub.dataDir])
  if (token.code !== 0) throw new Error(`token create: ${token.stderr}`)
  agent = startAgentProcess({ dataDir: agentDir, hub: new URL(hub.server).host, node: NODE, token: token.stdout.trim() })
  await apply('v1')
  const v1 = await until('v1: every replica Ready', async () => {
    const list = await pods()
    return list.length === REPLICAS && list.every(ready) && list
  }, 120_000)
  const oldHash = hashOf(v1[0])
  const oldPods = v1.map((p) => p.metadata.name)

  await t.test('the agent is killed with SIGKILL halfway through the rollout to v2', async (t) => {
    await apply('v2')
    const middle = await until('the rollout half done: some v2 pods Ready, some v1 pods still there', async () => {
      const list = await pods()
      const fresh = list.filter((p) => hashOf(p) !== oldHash)
      const stale = list.filter((p) => hashOf(p) === oldHash)
      return fresh.filter(ready).length >= 1 && stale.length >= 2 && { fresh: fresh.length, stale: stale.length }
    }, 120_000)
    await agent!.stop('SIGKILL')
    t.pass(`killed with ${middle.fresh} v2 and ${middle.stale} v1 pods in the API`)
    t.ok((await clusterContainers(docker, clusterId, { 'io.bramble.container.role': 'app' }, false)).length > 0, 'its containers keep running without it')
    await new Promise((r) => setTimeout(r, 2_000))
  })

  await t.test('started again, the agent completes the rollout: v2 only, one container per pod, v1 gone', async (t) => {
    agent = startAgentProcess({ dataDir: agentDir, hub: new URL(hub.server).host, node: NODE })
    const done = await until('the Deployment rolled out', async () => {
      const d = (await apiRequest(hub, 'GET', DEPLOYMENT)).json
      const s = d?.status ?? {}
      return d.metadata.generation === s.observedGeneration && s.updatedReplicas === REPLICAS && s.readyReplicas === REPLICAS && s.availableReplicas === REPLICAS && s.replicas === REPLICAS && d
    }, 180_000)
    t.equal(done.status.unavailableReplicas ?? 0, 0)
    const list = await until('only v2 pods left, all Ready', async () => {
      const l = await pods()
      return l.length === REPLICAS && l.every((p) => hashOf(p) !== oldHash && ready(p)) && l
    }, 120_000)
    const names = list.map((p) => p.metadata.name).sort()
    t.notOk(names.some((n) => oldPods.includes(n)), 'no v1 pod is left in the API')

    const containers = await until('the engine runs exactly the v2 pods, one app container each, and keeps nothing of v1', async () => {
      const all = await clusterContainers(docker, clusterId, { 'io.bramble.container.role': 'app' })
      const running = all.filter((c) => c.State === 'running')
      const perPod = new Map<string, number>()
      for (const c of running) perPod.set(c.Labels['io.bramble.pod.name']!, (perPod.get(c.Labels['io.bramble.pod.name']!) ?? 0) + 1)
      const stale = all.filter((c) => !names.includes(c.Labels['io.bramble.pod.name']!))
      return stale.length === 0 && [...perPod.keys()].sort().join() === names.join() && [...perPod.values()].every((n) => n === 1) && running
    }, 120_000)
    t.equal(containers.length, REPLICAS, `${REPLICAS} app containers run, one per pod`)
    for (const c of containers) {
      const env = (await docker.getContainer(c.Id).inspect()).Config.Env ?? []
      t.ok(env.includes('VERSION=v2'), `${c.Labels['io.bramble.pod.name']} runs v2`)
    }
    const sandboxes = await clusterContainers(docker, clusterId, { 'io.bramble.container.role': 'sandbox' })
    t.same(sandboxes.map((c) => c.Labels['io.bramble.pod.name']).sort(), names, 'one sandbox per v2 pod, none for v1')
    const replicaSets = (await apiRequest(hub, 'GET', '/apis/apps/v1/namespaces/default/replicasets')).json.items
    t.same(replicaSets.filter((r: any) => r.spec.replicas > 0).map((r: any) => r.metadata.labels['pod-template-hash']), [hashOf(list[0])], 'only the v2 ReplicaSet is scaled up')
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
