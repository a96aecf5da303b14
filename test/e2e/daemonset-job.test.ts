// DaemonSets and Jobs on a real `bramble up` (hub, scheduler, controllers and a local agent on the
// real Docker engine): a DaemonSet's pod runs a busybox container on the node and rolls to a new
// template; a Job runs its busybox pods to completion one after another and keeps the pod objects,
// whose logs `bramble logs` reads from their exited containers (kept, as Kubernetes keeps them,
// until the pods are deleted), also after `bramble up` restarts, which runs none of them again;
// a Job whose pod fails goes Failed past its backoffLimit. kubectl, where installed, reads them.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, freePort, runCli, until } from '../helpers/e2e.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

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
        command: [sh, -c, 'echo "counted by $(hostname)"; exit 0']
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
  // Fixed ports: `up` comes back on them after its restart, and its agent finds its hub again.
  const upArgs = ['--node-name', NODE, '--api-port', String(await freePort()), '--mqtt-port', String(await freePort())]
  let up: HubProcess = await startHubProcess({ command: 'up', args: upArgs })
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

  await t.test('`bramble logs` reads each completed Job pod\'s output; its container stays, exited, its sandbox is gone', async (t) => {
    for (const p of await podsOf('job-name=count')) {
      const name = p.metadata.name
      const r = await bramble('logs', name)
      t.equal(r.code, 0, r.stderr)
      t.equal(r.stdout, `counted by ${name}\n`, `${name}: the output of its finished container`)
      const left = await until(`${name}'s sandbox removed`, async () => {
        const cs = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': name })
        return cs.every((c) => c.Labels['io.bramble.role'] !== 'sandbox') && cs
      })
      t.same(left.map((c) => [c.Labels['io.bramble.container.name'], c.State]), [['count', 'exited']], `${name}: one exited container`)
    }
  })

  await t.test('`kubectl logs` reads a completed Job pod', { skip: existsSync(KUBECTL) ? false : `${KUBECTL} is not installed` }, async (t) => {
    const [p] = await podsOf('job-name=count')
    const r = await runCli(['logs', p.metadata.name], { bin: KUBECTL, kubeconfig: up.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, `counted by ${p.metadata.name}\n`)
  })

  await t.test('after `bramble up` restarts, the completed Job pods are not run again and their logs still read', async (t) => {
    const containersOf = async (name: string) => (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': name })).map((c) => `${c.Id} ${c.State}`).sort()
    const pods = await podsOf('job-name=count')
    const before = new Map<string, string[]>()
    for (const p of pods) before.set(p.metadata.name, await containersOf(p.metadata.name))
    await up.stop()
    up = await startHubProcess({ command: 'up', dataDir: up.dataDir, args: upArgs })
    await until('the node Ready again', async () => hasCondition(await getJson('node', NODE), 'Ready'))
    for (const p of pods) await until(`${p.metadata.name}'s logs through the restarted hub`, async () => (await bramble('logs', p.metadata.name)).stdout === `counted by ${p.metadata.name}\n`)
    await new Promise((r) => setTimeout(r, 3_000)) // the agent has long resynced by now; give a rerun the time to show
    for (const p of pods) {
      t.same(await containersOf(p.metadata.name), before.get(p.metadata.name), `${p.metadata.name}: the same exited container, no new one`)
      const now = await getJson('pod', p.metadata.name)
      t.equal(now.status.phase, 'Succeeded')
      t.equal(now.status.containerStatuses[0].state.terminated?.exitCode, 0)
    }
    const job = await getJson('job', 'count')
    t.match(job.status, { succeeded: 2, active: 0, failed: 0 }, 'the Job counts no new pod')
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
    for (const p of pods) t.equal((await bramble('logs', p.metadata.name)).stdout, 'giving up\n', 'the failed pod\'s logs read')
  })

  await t.test('deleting a finished Job takes its pods and their containers with it', async (t) => {
    const pods = (await podsOf('job-name=count')).map((p: any) => p.metadata.name)
    const r = await bramble('delete', 'job', 'count')
    t.equal(r.code, 0, r.stderr)
    await until('its pods gone', async () => (await podsOf('job-name=count')).length === 0)
    for (const name of pods) await until(`${name}'s containers removed`, async () => (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': name })).length === 0)
    t.pass('no container of the deleted Job remains')
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
