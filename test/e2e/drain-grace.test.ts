// `bramble up` (hub and a local agent on the real Docker engine) drained with `bramble drain
// --grace-period 1`: the Deployment's pod is evicted through pods/eviction, and its container,
// which ignores SIGTERM and whose pod allows itself 300 s to stop, is gone from Docker well before
// that: the eviction's grace period reached the node. `rollout status` then reports the rollout.

import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const NODE = 'drain-e2e'
const docker = dockerClient()

const STUBBORN = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: stubborn}
spec:
  replicas: 1
  selector: {matchLabels: {app: stubborn}}
  template:
    metadata: {labels: {app: stubborn}}
    spec:
      terminationGracePeriodSeconds: 300
      containers:
      - name: main
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'trap "" TERM; while :; do sleep 1; done']
`

async function run() {
  await ensureBusyboxImage(docker)
  const up = await startHubProcess({ command: 'up', args: ['--node-name', NODE] })
  const clusterId = readFileSync(join(up.dataDir, 'cluster-id'), 'utf8').trim()
  t.teardown(async () => {
    await up.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    await up.cleanup()
  })
  const bramble = (...args: string[]) => runCli(args, { kubeconfig: up.kubeconfig })
  const running = async () => (await clusterContainers(docker, clusterId, { 'io.bramble.container.name': 'main' }, false)).length

  await t.test('the Deployment rolls out on the node, as rollout status reports', async (t) => {
    const file = join(up.dataDir, 'stubborn.yaml')
    writeFileSync(file, STUBBORN)
    const applied = await bramble('apply', '-f', file)
    t.equal(applied.code, 0, applied.stderr)
    const status = await bramble('rollout', 'status', 'deployment/stubborn', '--timeout', '3m')
    t.equal(status.code, 0, status.stderr)
    t.match(status.stdout, 'deployment "stubborn" successfully rolled out\n')
    t.equal(await running(), 1, 'its container runs')
  })

  await t.test('drain --grace-period 1 evicts the pod, and its container stops within that, not the pod\'s 300 s', async (t) => {
    const drain = await bramble('drain', NODE, '--grace-period', '1', '--timeout', '2m')
    t.equal(drain.code, 0, drain.stderr)
    t.match(drain.stdout, `node/${NODE} cordoned\n`)
    t.match(drain.stdout, /pod\/stubborn-[a-z0-9]+-[a-z0-9]+ evicted\n/)
    t.match(drain.stdout, `node/${NODE} drained\n`)
    // A generous deadline, far below the 300 s the pod's own grace period would take.
    await until('the evicted container is stopped', async () => (await running()) === 0, 90_000)
    t.pass('stopped long before the pod\'s own grace period')
    const pods = JSON.parse((await bramble('get', 'pods', '-l', 'app=stubborn', '-o', 'json')).stdout).items
    t.ok(pods.every((p: any) => !p.spec.nodeName), 'the replacement waits: the only node is cordoned')
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
