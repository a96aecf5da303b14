// An agent killed with SIGKILL while desired-state changes stream in (a real hub, a real agent on
// the Docker engine, ConfigMap updates and pod creations through the API): its LMDB replica opens
// as it is, and holds exactly the hub's state at the replica's revision (each ConfigMap the value
// of its last write at or before that revision, each pod there if and only if it was created by
// then). Started again, the agent converges: every pod reads its ConfigMap's final value, the pods
// deleted meanwhile are gone, and the replica matches the API.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { LmdbReplica } from '../../src/agent/replica.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { readInContainer } from '../helpers/container-read.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const docker = dockerClient()
const NODE = 'f1-replica'
const CM = '/api/v1/namespaces/default/configmaps'
const PODS = '/api/v1/namespaces/default/pods'
const CONFIGMAPS = ['f1-cm-0', 'f1-cm-1', 'f1-cm-2']
const UPDATES = 150
const KILL_AT = 60

const pod = (name: string, configMap: string) => ({
  apiVersion: 'v1',
  kind: 'Pod',
  metadata: { name, labels: { app: 'f1-replica' } },
  spec: {
    terminationGracePeriodSeconds: 1,
    volumes: [{ name: 'cfg', configMap: { name: configMap } }],
    containers: [{ name: 'app', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'], volumeMounts: [{ name: 'cfg', mountPath: '/cfg' }] }],
  },
})

interface Write {
  name: string
  value: string
  revision: number
}

async function run() {
  await ensureBusyboxImage(docker)
  const hub = await startHubProcess({ dataDir: mkdtempSync(join(tmpdir(), 'f1-replica-hub-')) })
  const agentDir = mkdtempSync(join(tmpdir(), 'f1-replica-agent-'))
  const replicaPath = join(agentDir, 'agent', 'replica')
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
  // No assertion out here: tap ends the root test at its first one when no subtest is pending.
  const token = await runCli(['token', 'create', '--data-dir', hub.dataDir])
  if (token.code !== 0) throw new Error(`token create: ${token.stderr}`)
  agent = startAgentProcess({ dataDir: agentDir, hub: new URL(hub.server).host, node: NODE, token: token.stdout.trim() })

  const writes: Write[] = []
  const created = new Map<string, number>() // pod → revision of its creation
  const current = new Map<string, any>()
  const post = async (path: string, body: unknown) => {
    const res = await apiRequest(hub, 'POST', path, body)
    if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${res.text}`)
    return res.json
  }
  for (const name of CONFIGMAPS) {
    const made = await post(CM, { metadata: { name }, data: { value: 'v0' } })
    current.set(name, made)
    writes.push({ name, value: 'v0', revision: Number(made.metadata.resourceVersion) })
  }
  for (let i = 0; i < 3; i++) created.set(`f1-r-${i}`, Number((await post(PODS, pod(`f1-r-${i}`, CONFIGMAPS[i]!))).metadata.resourceVersion))
  await until('the three pods Running', async () => {
    const items = (await apiRequest(hub, 'GET', `${PODS}?labelSelector=app%3Df1-replica`)).json.items
    return items.length === 3 && items.every((p: any) => p.status?.phase === 'Running')
  }, 120_000)

  await t.test(`SIGKILL after ${KILL_AT} of ${UPDATES} ConfigMap updates: the replica holds the hub's state at its revision`, async (t) => {
    for (let k = 1; k <= UPDATES; k++) {
      const name = CONFIGMAPS[k % CONFIGMAPS.length]!
      const value = `v${k}`
      const res = await apiRequest(hub, 'PUT', `${CM}/${name}`, { ...current.get(name), data: { value } })
      if (res.status !== 200) throw new Error(`update ${k} of ${name}: ${res.status} ${res.text}`)
      current.set(name, res.json)
      writes.push({ name, value, revision: Number(res.json.metadata.resourceVersion) })
      if (k === 20 || k === 100) {
        const p = `f1-r-${k === 20 ? 3 : 4}`
        // f1-r-3 mounts f1-cm-1 too, so that ConfigMap stays desired on the node after f1-r-1 (its
        // other user) is deleted: a ConfigMap no pod on the node uses leaves the replica.
        const made = await apiRequest(hub, 'POST', PODS, pod(p, k === 20 ? 'f1-cm-1' : 'f1-cm-0'))
        t.equal(made.status, 201, `${p} created after update ${k}`)
        created.set(p, Number(made.json.metadata.resourceVersion))
      }
      if (k === 40) t.equal((await apiRequest(hub, 'DELETE', `${PODS}/f1-r-1`)).status, 200, 'f1-r-1 deleted')
      if (k === KILL_AT) await agent!.stop('SIGKILL')
    }
    t.pass(`${UPDATES} updates written, the agent killed after ${KILL_AT}`)

    const replica = await LmdbReplica.open(replicaPath)
    try {
      const r = replica.revision()
      t.ok(r > 0, `the replica opens as it is, at revision ${r}`)
      for (const name of CONFIGMAPS) {
        const expected = writes.filter((w) => w.name === name && w.revision <= r).at(-1)?.value
        t.equal((replica.configMap('default', name)?.data as Record<string, string> | undefined)?.value, expected, `${name} holds its last value at or before revision ${r}`)
      }
      for (const [name, revision] of created) {
        if (name === 'f1-r-1') continue // its deletion is graceful: it stays desired until its containers stop
        t.equal(replica.pods().some((p) => p.metadata.name === name), revision <= r, `${name} ${revision <= r ? 'is' : 'is not yet'} in the replica (created at ${revision})`)
      }
      t.ok(replica.pods().every((p) => Number(p.metadata.resourceVersion) <= r), 'no object newer than the replica\'s revision')
    } finally {
      await replica.close()
    }
  })

  await t.test('started again, the agent converges and its replica matches the API', async (t) => {
    agent = startAgentProcess({ dataDir: agentDir, hub: new URL(hub.server).host, node: NODE })
    const wanted = ['f1-r-0', 'f1-r-2', 'f1-r-3', 'f1-r-4']
    const finalValue = (name: string) => current.get(name).data.value
    await until('every pod runs and reads its ConfigMap\'s final value', async () => {
      const running = await clusterContainers(docker, clusterId, { 'io.bramble.container.role': 'app' }, false)
      const byPod = new Map(running.map((c) => [c.Labels['io.bramble.pod.name']!, c.Id]))
      if ([...byPod.keys()].sort().join() !== wanted.join() || running.length !== wanted.length) return false
      for (const p of wanted) {
        const cm = p === 'f1-r-3' ? 'f1-cm-1' : p === 'f1-r-0' || p === 'f1-r-4' ? 'f1-cm-0' : 'f1-cm-2'
        if ((await readInContainer(docker, byPod.get(p)!, '/cfg/value')) !== finalValue(cm)) return false
      }
      return true
    }, 180_000)
    t.pass('the pods run once each and read the final values')
    await until('f1-r-1 gone from the API', async () => (await apiRequest(hub, 'GET', `${PODS}/f1-r-1`)).status === 404, 60_000)
    t.equal((await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'f1-r-1' })).length, 0, 'nothing of the deleted pod is left on the engine')

    await agent.stop('SIGTERM')
    const replica = await LmdbReplica.open(replicaPath)
    try {
      t.ok(replica.revision() >= writes.at(-1)!.revision, 'the replica reached the last write')
      t.same(replica.pods().map((p) => p.metadata.name).sort(), wanted, 'its pods are the API\'s')
      for (const name of CONFIGMAPS) t.equal((replica.configMap('default', name)?.data as Record<string, string> | undefined)?.value, finalValue(name), `${name} holds its final value`)
    } finally {
      await replica.close()
    }
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
