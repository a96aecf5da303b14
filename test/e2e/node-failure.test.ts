// Node failure on a real multi-node cluster with the hub's default settings (heartbeat 5 s, node
// grace period 20 s, default toleration 30 s): three agents in network namespaces, each with its
// own dockerd, run a Deployment; one agent is killed with SIGKILL, and its pods must run again on
// the other nodes within 60 s of its death. The test prints when the hub noticed, when the pods
// were evicted and when the replacements ran. When the agent comes back, it stops the pods the
// hub moved away while it was gone.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { until } from '../helpers/e2e.js'
import { NetnsCluster, podReady } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'

const NODES = ['alpha', 'beta', 'gamma']
const VICTIM = 'gamma'
const REPLICAS = 6
const RECOVERY_BOUND_S = 60
const PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Dworker'

const DEPLOYMENT = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: worker}}
  template:
    metadata: {labels: {app: worker}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`

async function run() {
  const cluster = await NetnsCluster.start()
  t.teardown(() => cluster.cleanup())
  await Promise.all(NODES.map((n) => cluster.addNode(n)))
  const pods = async (): Promise<any[]> => (await cluster.get(PODS)).items
  /** The app containers running on a node, read from the node's own dockerd. */
  const appContainers = (node: string) =>
    cluster.agent(node).host.docker.listContainers({ filters: { label: ['io.bramble.pod.namespace=default', 'io.bramble.container.role=app'] } })

  await t.test(`a Deployment of ${REPLICAS} replicas runs on all ${NODES.length} nodes`, async (t) => {
    const file = join(cluster.hub.dataDir, 'worker.yaml')
    writeFileSync(file, DEPLOYMENT)
    await cluster.bramble('apply', '-f', file)
    const list = await until('every replica Running and Ready', async () => {
      const l = await pods()
      return l.length === REPLICAS && l.every(podReady) && l
    }, 60_000)
    const perNode = NODES.map((n) => list.filter((p: any) => p.spec.nodeName === n).length)
    t.same(perNode, [2, 2, 2], 'two replicas on each node')
    t.equal((await appContainers(VICTIM)).length, 2, `${VICTIM}'s dockerd runs its two replicas`)
  })

  let victimPods: string[] = []
  await t.test(`${VICTIM}'s agent killed with SIGKILL: its pods run again on the other nodes within ${RECOVERY_BOUND_S} s`, async (t) => {
    victimPods = (await pods()).filter((p) => p.spec.nodeName === VICTIM).map((p) => p.metadata.name)
    const killedAt = Date.now()
    await cluster.agent(VICTIM).stop('SIGKILL')
    const seconds = () => (Date.now() - killedAt) / 1000
    const milestones: Record<string, number> = {}
    let last = ''
    try {
      await until('every replica Running and Ready on the surviving nodes', async () => {
        const node = await cluster.get(`/api/v1/nodes/${VICTIM}`)
        const ready = node?.status?.conditions?.find((c: any) => c.type === 'Ready')
        if (ready?.status !== 'True') milestones.notReady ??= seconds()
        if (node?.spec?.taints?.some((x: any) => x.key === 'node.kubernetes.io/unreachable' && x.effect === 'NoExecute')) milestones.tainted ??= seconds()
        const list = await pods()
        if (!list.some((p) => victimPods.includes(p.metadata.name))) milestones.evicted ??= seconds()
        const elsewhere = list.filter((p) => p.spec.nodeName && p.spec.nodeName !== VICTIM && !p.metadata.deletionTimestamp)
        if (elsewhere.length === REPLICAS && elsewhere.every((p) => p.status?.phase === 'Running')) milestones.running ??= seconds()
        last = `node ${VICTIM} Ready=${ready?.status}; pods ${list.map((p) => `${p.metadata.name}@${p.spec.nodeName ?? '-'} ${p.status?.phase}${podReady(p) ? ' ready' : ''}`).join(', ')}`
        return elsewhere.length === REPLICAS && elsewhere.every(podReady)
      }, (RECOVERY_BOUND_S + 30) * 1000)
    } catch (err) {
      throw new Error(`${(err as Error).message} after ${seconds().toFixed(1)} s; last seen: ${last}\n${await cluster.diagnostics()}`, { cause: err })
    }
    const readyAfter = seconds()
    const at = (m: string) => (milestones[m] === undefined ? 'not seen' : `${milestones[m]!.toFixed(1)} s`)
    t.comment(`after SIGKILL of ${VICTIM}: NotReady at ${at('notReady')}, unreachable taint at ${at('tainted')}, its pods evicted at ${at('evicted')}, ` +
      `all ${REPLICAS} replicas Running elsewhere at ${at('running')}, Ready at ${readyAfter.toFixed(1)} s`)
    t.ok(milestones.running !== undefined && milestones.running <= RECOVERY_BOUND_S, `replicas Running on the other nodes ${at('running')} after the kill (bound ${RECOVERY_BOUND_S} s)`)
    const list = await pods()
    t.same(list.filter((p) => victimPods.includes(p.metadata.name)), [], `the pods bound to ${VICTIM} are gone from the API`)
    t.same(NODES.filter((n) => list.some((p) => p.spec.nodeName === n)), NODES.filter((n) => n !== VICTIM), 'the replicas run on the surviving nodes')
  })

  await t.test(`${VICTIM}'s agent back: it stops the pods the hub moved away, and the node is Ready again`, async (t) => {
    t.equal((await appContainers(VICTIM)).length, 2, `while its agent was dead, ${VICTIM}'s containers kept running (the node cannot know)`)
    const agent = await cluster.restartAgent(cluster.agent(VICTIM))
    t.equal(agent.node, VICTIM)
    t.ok(await until(`${VICTIM} runs no app container`, async () => (await appContainers(VICTIM)).length === 0, 60_000), `${VICTIM} stopped the moved pods`)
    const list = await pods()
    t.equal(list.filter(podReady).length, REPLICAS, `still ${REPLICAS} replicas Ready`)
    t.notOk(list.some((p) => victimPods.includes(p.metadata.name)), 'the evicted pods did not come back')
  })
}

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
