// DaemonSets and Jobs on a real `bramble up` (hub, scheduler, controllers and a local agent on the
// real Docker engine): a DaemonSet's pod runs a busybox container on the node and rolls to a new
// template; a Job runs its busybox pods to completion one after another and keeps the pod objects;
// a Job whose pod fails goes Failed past its backoffLimit. kubectl, where installed, reads them.
// (The node drops a finished pod's containers, so their logs are not read here.)

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const NODE = 'ds-job-e2e'

const docker = dockerClient()

const daemonSet = (message: string) => `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: node-logger}
spec:
  selector: {matchLabels: {app: node-logger}}
  template:
    metadata: {labels: {app: node-logger}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: logger
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'trap "exit 0" TERM; while :; do echo "${message} on $NODE_NAME"; sleep 1; done']
        env:
        - name: NODE_NAME
          value: ${NODE}
`

const JOB = `
apiVersion: batch/v1
kind: Job
metadata: {name: count}
spec:
  completions: 2
  parallelism: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: count
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'echo counted; exit 0']
`

const FAILING_JOB = `
apiVersion: batch/v1
kind: Job
metadata: {name: doomed}
spec:
  backoffLimit: 1
  template:
    spec:
      restartPolicy: Never
      terminationGracePeriodSeconds: 1
      containers:
      - name: doomed
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'echo giving up; exit 3']
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
  const getJson = async (...args: string[]) => {
    const r = await bramble('get', ...args, '-o', 'json')
    return r.code === 0 ? JSON.parse(r.stdout) : undefined
  }
  const apply = async (name: string, manifest: string) => {
    const file = join(up.dataDir, `${name}.yaml`)
    writeFileSync(file, manifest)
    return bramble('apply', '-f', file)
  }
  const podsOf = async (selector: string) => (await getJson('pods', '-l', selector))?.items ?? []
  const hasCondition = (o: any, type: string) => o?.status?.conditions?.some((c: any) => c.type === type && c.status === 'True')

  await until('the node Ready', async () => hasCondition(await getJson('node', NODE), 'Ready'))

  await t.test('a DaemonSet runs its busybox pod on the node, then rolls it to a new template', async (t) => {
    const applied = await apply('ds', daemonSet('hello'))
    t.equal(applied.code, 0, applied.stderr)
    const pod = await until('the DaemonSet pod Running and Ready', async () => {
      const [p] = await podsOf('app=node-logger')
      return p?.status?.phase === 'Running' && hasCondition(p, 'Ready') && p
    })
    t.equal(pod.spec.nodeName, NODE, 'bound to the node by the scheduler')
    const logs = await until('its logs', async () => {
      const r = await bramble('logs', pod.metadata.name)
      return r.code === 0 && /hello on ds-job-e2e/.test(r.stdout) && r.stdout
    })
    t.match(logs, /hello on ds-job-e2e/)
    const running = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': pod.metadata.name, 'io.bramble.container.name': 'logger' }, false)
    t.equal(running.length, 1, 'one running container in Docker')
    const ds = await until('status: 1 desired, 1 available', async () => {
      const d = await getJson('daemonset', 'node-logger')
      return d?.status?.numberAvailable === 1 && d
    })
    t.match(ds.status, { desiredNumberScheduled: 1, currentNumberScheduled: 1, updatedNumberScheduled: 1, numberReady: 1 })
    const table = await bramble('get', 'ds')
    t.match(table.stdout, /^node-logger\s+1\s+1\s+1\s+1\s+1\s/m, '`get ds` shows DESIRED CURRENT READY UP-TO-DATE AVAILABLE')

    t.equal((await apply('ds', daemonSet('rolled'))).code, 0)
    const rolled = await until('a new pod with the new template Running', async () => {
      const pods = await podsOf('app=node-logger')
      const p = pods.find((x: any) => x.metadata.name !== pod.metadata.name)
      return pods.length === 1 && p?.status?.phase === 'Running' && p
    })
    t.not(rolled.metadata.labels['controller-revision-hash'], pod.metadata.labels['controller-revision-hash'], 'a new revision hash')
    await until('its logs say rolled', async () => /rolled on ds-job-e2e/.test((await bramble('logs', rolled.metadata.name)).stdout))
    await until('the old container is gone', async () => (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': pod.metadata.name })).length === 0)
  })

  await t.test('`kubectl rollout status ds` sees the DaemonSet rolled out', { skip: existsSync(KUBECTL) ? false : `${KUBECTL} is not installed` }, async (t) => {
    const r = await runCli(['rollout', 'status', 'daemonset/node-logger', '--timeout', '60s'], { bin: KUBECTL, kubeconfig: up.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /daemon set "node-logger" successfully rolled out/)
  })

  await t.test('a Job runs 2 completions one at a time, goes Complete, and keeps its pods', async (t) => {
    const applied = await apply('job', JOB)
    t.equal(applied.code, 0, applied.stderr)
    const job = await until('the Job Complete', async () => {
      const j = await getJson('job', 'count')
      return hasCondition(j, 'Complete') && j
    }, 120_000)
    t.match(job.status, { succeeded: 2, active: 0, failed: 0 })
    t.ok(job.status.startTime && job.status.completionTime)
    const pods = await podsOf('job-name=count')
    t.equal(pods.length, 2, 'its two pods, found by the label Kubernetes puts on them')
    t.ok(pods.every((p: any) => p.status.phase === 'Succeeded'))
    for (const p of pods) t.match(p.status.containerStatuses[0].state.terminated, { exitCode: 0, reason: 'Completed' }, 'its busybox container ran and exited 0')
    const table = await bramble('get', 'jobs')
    t.match(table.stdout, /^count\s+Complete\s+2\/2\s/m, '`get jobs` shows it Complete, 2/2')
  })

  await t.test('`kubectl wait --for=condition=complete` returns for the finished Job', { skip: existsSync(KUBECTL) ? false : `${KUBECTL} is not installed` }, async (t) => {
    const r = await runCli(['wait', '--for=condition=complete', 'job/count', '--timeout=30s'], { bin: KUBECTL, kubeconfig: up.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /job.batch\/count condition met/)
  })

  await t.test('a Job whose pods fail goes Failed after backoffLimit + 1 tries', async (t) => {
    t.equal((await apply('doomed', FAILING_JOB)).code, 0)
    const job = await until('the Job Failed', async () => {
      const j = await getJson('job', 'doomed')
      return hasCondition(j, 'Failed') && j
    }, 120_000)
    t.equal(job.status.conditions.find((c: any) => c.type === 'Failed').reason, 'BackoffLimitExceeded')
    t.equal(job.status.failed, 2)
    const pods = await podsOf('job-name=doomed')
    t.equal(pods.length, 2, 'two tries, kept')
    for (const p of pods) t.equal(p.status.containerStatuses[0].state.terminated?.exitCode, 3, 'its busybox container ran and exited 3')
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
