// The container runtime restarted under a running agent: the node's own dockerd (in its network
// namespace, never the machine's shared one) is stopped as systemd would stop it, which stops the
// pods' containers too. While it is down the agent keeps running and the Node reports
// Ready=False (KubeletNotReady, "container runtime is down: ..."); once dockerd is back the agent
// watches its events again, the pods run again (the agent starts new containers for them, one per
// pod container, under the same pods) and the Node is Ready again. A container killed
// afterwards is restarted too: the agent hears the engine's events again.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { until } from '../helpers/e2e.js'
import { startHostDocker, stopHostDocker } from '../helpers/host-dockerd.js'
import { NetnsCluster, nodeReady, podReady } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'

const NODE = 'f1-runtime'
const PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Df1-rt'
const REPLICAS = 2

// Kubernetes' own default for the not-ready taint (300 s), over the hub's shorter one: a runtime
// restart is a pause, not a reason to move the pods.
const DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: f1-rt}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: f1-rt}}
  template:
    metadata: {labels: {app: f1-rt}}
    spec:
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 300}
      containers:
      - name: app
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`

async function run() {
  const cluster = await NetnsCluster.start()
  t.teardown(() => cluster.cleanup())
  const agent = await cluster.addNode(NODE)
  const host = agent.host
  const pods = async (): Promise<any[]> => (await cluster.get(PODS)).items
  const readyCondition = async () => (await cluster.get(`/api/v1/nodes/${NODE}`))?.status?.conditions?.find((c: any) => c.type === 'Ready')
  /** Running app containers by pod name, from the node's own dockerd. */
  const running = async () => {
    const m = new Map<string, string[]>()
    for (const c of await cluster.appContainers(NODE)) {
      const pod = c.Labels['io.bramble.pod.name']!
      m.set(pod, [...(m.get(pod) ?? []), c.Id])
    }
    return m
  }
  const oneEach = async (names: string[]) => {
    const m = await running()
    return m.size === names.length && names.every((n) => m.get(n)?.length === 1) && m
  }

  const file = join(cluster.hub.dataDir, 'f1-rt.yaml')
  writeFileSync(file, DEPLOYMENT)
  await cluster.bramble('apply', '-f', file)
  const before = await until('both replicas Running and Ready', async () => {
    const list = await pods()
    return list.length === REPLICAS && list.every(podReady) && list
  }, 90_000)
  const names = before.map((p: any) => p.metadata.name).sort()
  const containersBefore = await until('one container per pod', () => oneEach(names))

  await t.test('dockerd stopped: the agent keeps running and the Node says Ready=False, container runtime is down', async (t) => {
    const argv = await stopHostDocker(host)
    const ready = await until('Ready=False for the runtime', async () => {
      const c = await readyCondition()
      return c?.status === 'False' && c
    }, 60_000)
    t.equal(ready.reason, 'KubeletNotReady')
    t.match(ready.message, /^container runtime is down/, `the message says why: ${ready.message}`)
    t.equal(agent.child.exitCode, null, 'the agent did not exit')
    t.equal(agent.child.signalCode, null)

    const restartedAt = Date.now()
    await startHostDocker(host, argv)
    await until(`${NODE} Ready again`, async () => nodeReady(await cluster.get(`/api/v1/nodes/${NODE}`)), 90_000)
    t.comment(`Ready again ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after dockerd was started`)
  })

  await t.test('with dockerd back, the same pods run again, one container each, restarted by the agent', async (t) => {
    const after = await until('each pod container running once, under the same pod', () => oneEach(names), 120_000)
    for (const n of names) t.not(after.get(n)![0], containersBefore.get(n)![0], `${n} runs a new container (the old one stopped with dockerd)`)
    let seen = ''
    // Compared with what runs at each look: a sandbox dockerd cannot remove after its restart
    // ("device or resource busy") may cost a pod one more attempt after the first look.
    let runningNow = after
    const list = await until('both pods Ready with the new containers', async () => {
      const l = await pods()
      runningNow = (await oneEach(names)) || runningNow
      seen = JSON.stringify(l.map((p: any) => ({ name: p.metadata.name, phase: p.status?.phase, ready: podReady(p), containers: p.status?.containerStatuses })))
      return l.length === REPLICAS && l.every(podReady) && l.every((p: any) => p.status.containerStatuses?.[0]?.containerID === `docker://${runningNow.get(p.metadata.name)![0]}`) && l
    }, 120_000).catch((err) => {
      throw new Error(`${(err as Error).message}; running: ${JSON.stringify([...runningNow])}; last seen: ${seen}\n${agent.output().split('\n').slice(-20).join('\n')}`)
    })
    t.same(list.map((p: any) => p.metadata.name).sort(), names, 'no pod was replaced: the same pods, on the same node')
    t.ok(list.every((p: any) => p.spec.nodeName === NODE))
    t.pass('the API shows the containers that run now, Ready')
    // Usually 1; a dockerd stopped while the agent was recreating a sandbox can lose the exited
    // container the count is read from (see pod-executor's dead-container note), so it is shown, not asserted.
    t.comment(`restartCount after the restart: ${list.map((p: any) => `${p.metadata.name} ${p.status.containerStatuses[0].restartCount}`).join(', ')}`)
    t.equal(agent.child.exitCode, null, 'the same agent process, still running')
    t.match(agent.output(), /the container runtime answers again/, 'the agent logged that the engine is back')
  })

  await t.test('the agent hears the engine\'s events again: a killed container is restarted', async (t) => {
    const victim = names[0]!
    const [id] = (await running()).get(victim)!
    const killedAt = Date.now()
    await host.docker.getContainer(id!).kill()
    const now = await until(`a new container for ${victim}`, async () => {
      const m = await running()
      return m.get(victim)?.length === 1 && m.get(victim)![0] !== id && m
    }, 90_000)
    t.comment(`restarted ${((Date.now() - killedAt) / 1000).toFixed(1)} s after the kill`)
    t.ok(await oneEach(names), 'still one container per pod')
    t.not(now.get(victim)![0], id)
  })
}

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
