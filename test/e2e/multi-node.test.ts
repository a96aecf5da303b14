// A Deployment on a real multi-node cluster: `bramble hub` plus two `bramble agent`s, each agent in a
// network namespace of its own with its own dockerd. Four replicas spread over both nodes; a
// rolling update to a new image keeps at least replicas - maxUnavailable pods Ready throughout
// (sampled every 200 ms); `rollout undo` brings the old image back the same way. A DaemonSet runs
// a pod on each node, and on a third node that joins later.

import { existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { runCli, until } from '../helpers/e2e.js'
import { NetnsCluster, podReady } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'

const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const NODES = ['alpha', 'beta']
const REPLICAS = 4
const MAX_UNAVAILABLE = 1
const IMAGE_V1 = BUSYBOX_IMAGE
const IMAGE_V2 = 'bramble-test/busybox:2'
const PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb'
const DEPLOYMENT = '/apis/apps/v1/namespaces/default/deployments/web'

const LATE_NODE = 'gamma'
const DAEMON_PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Ddaemon'
const DAEMONSET = `
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: daemon}
spec:
  selector: {matchLabels: {app: daemon}}
  template:
    metadata: {labels: {app: daemon}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: daemon
        image: ${IMAGE_V1}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`

/** Each replica turns Ready 2 s after it starts, so readiness (not mere start) drives the rollout. */
const deployment = (image: string) => `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: ${REPLICAS}
  selector: {matchLabels: {app: web}}
  strategy:
    type: RollingUpdate
    rollingUpdate: {maxSurge: 1, maxUnavailable: ${MAX_UNAVAILABLE}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 2
      containers:
      - name: app
        image: ${image}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'trap "exit 0" TERM; sleep 2; touch /tmp/ready; while :; do sleep 1; done']
        readinessProbe:
          exec: {command: [cat, /tmp/ready]}
          periodSeconds: 1
`

async function run() {
  const began = Date.now()
  const cluster = await NetnsCluster.start()
  t.teardown(() => cluster.cleanup())
  await Promise.all(NODES.map((n) => cluster.addNode(n)))
  // Found before any subtest runs: tap ends the file once its subtests are done and nothing else is queued.
  const undo = await rolloutUndo(cluster)
  const noUndo = `neither \`bramble rollout\` nor ${KUBECTL} is available to undo a rollout`
  // The second image is the same busybox under a new tag, made on each node (no registry is reachable).
  const [repo, tag] = IMAGE_V2.split(':') as [string, string]
  for (const host of cluster.lab.hosts) await host.docker.getImage(IMAGE_V1).tag({ repo, tag })
  t.comment(`cluster of a hub and ${NODES.length} agents in network namespaces up in ${((Date.now() - began) / 1000).toFixed(1)} s`)

  const apply = async (image: string) => {
    const file = join(cluster.hub.dataDir, 'web.yaml')
    writeFileSync(file, deployment(image))
    return cluster.bramble('apply', '-f', file)
  }
  const pods = async (): Promise<any[]> => (await cluster.get(PODS)).items

  /** The Deployment is done when its status says so and exactly its replicas, all Ready, run `image`. */
  const rolledOut = async (image: string) => {
    let last = ''
    try {
      return await until(`web rolled out to ${image}`, async () => {
        const d = await cluster.get(DEPLOYMENT)
        const s = d?.status ?? {}
        const list = await pods()
        last = `deployment generation ${d?.metadata.generation} status ${JSON.stringify(s)}; pods ${list.map(podSummary).join(', ')}`
        if (!(s.observedGeneration >= d.metadata.generation && s.updatedReplicas === REPLICAS && s.readyReplicas === REPLICAS && s.replicas === REPLICAS)) return false
        return list.length === REPLICAS && list.every((p) => podReady(p) && p.spec.containers[0].image === image) && list
      }, 120_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}; last seen: ${last}\n${await cluster.diagnostics()}`, { cause: err })
    }
  }

  /** Polls the pods every 200 ms while `change` rolls out; the fewest Ready pods seen. */
  const fewestReadyDuring = async (change: () => Promise<unknown>, image: string) => {
    let fewest = Infinity
    let most = 0
    let sampling = true
    const sampler = (async () => {
      for (let i = 0; sampling && i < 1000; i++) {
        const list = await pods()
        fewest = Math.min(fewest, list.filter(podReady).length)
        most = Math.max(most, list.filter((p) => !p.metadata.deletionTimestamp).length)
        await new Promise((r) => setTimeout(r, 200))
      }
    })()
    const started = Date.now()
    try {
      await change()
      const done = await rolledOut(image)
      return { fewest, most, seconds: (Date.now() - started) / 1000, pods: done }
    } finally {
      sampling = false
      await sampler
    }
  }

  /** Running app containers per node, read from each node's own dockerd: node → images. */
  const containerImages = async () => {
    const byNode: Record<string, string[]> = {}
    for (const node of NODES) byNode[node] = (await cluster.appContainers(node)).map((c) => c.Image).sort()
    return byNode
  }

  await t.test(`a Deployment of ${REPLICAS} replicas spreads over the ${NODES.length} nodes`, async (t) => {
    await apply(IMAGE_V1)
    const list = await rolledOut(IMAGE_V1)
    const perNode = Object.fromEntries(NODES.map((n) => [n, list.filter((p: any) => p.spec.nodeName === n).length]))
    t.same(perNode, { alpha: 2, beta: 2 }, 'two replicas on each node')
    const images = await until('each node runs the containers of its pods', async () => {
      const byNode = await containerImages()
      return NODES.every((n) => byNode[n]!.length === perNode[n]) && byNode
    }, 30_000)
    t.same(images, { alpha: [IMAGE_V1, IMAGE_V1], beta: [IMAGE_V1, IMAGE_V1] }, "each node's own dockerd runs its two replicas")
  })

  await t.test(`a rolling update to a new image keeps at least ${REPLICAS - MAX_UNAVAILABLE} pods Ready throughout`, async (t) => {
    const r = await fewestReadyDuring(() => apply(IMAGE_V2), IMAGE_V2)
    t.comment(`rolling update to ${IMAGE_V2}: ${r.seconds.toFixed(1)} s, fewest Ready pods ${r.fewest}, most pods at once ${r.most}`)
    t.ok(r.fewest >= REPLICAS - MAX_UNAVAILABLE, `fewest Ready pods during the update: ${r.fewest}`)
    t.same(new Set(r.pods.map((p: any) => p.spec.nodeName)), new Set(NODES), 'the new replicas use both nodes')
    const images = await until('only the new image runs', async () => {
      const byNode = await containerImages()
      const all = Object.values(byNode).flat()
      return all.length === REPLICAS && all.every((i) => i === IMAGE_V2) && byNode
    }, 30_000)
    t.ok(images, 'the nodes run the new image only')
    const d = await cluster.get(DEPLOYMENT)
    t.equal(d.metadata.annotations['deployment.kubernetes.io/revision'], '2', 'the update is revision 2')
  })

  await t.test('rollout undo restores the old image, again keeping enough pods Ready', { skip: undo ? false : noUndo }, async (t) => {
    const r = await fewestReadyDuring(undo!, IMAGE_V1)
    t.comment(`rollout undo to ${IMAGE_V1}: ${r.seconds.toFixed(1)} s, fewest Ready pods ${r.fewest}, most pods at once ${r.most}`)
    t.ok(r.fewest >= REPLICAS - MAX_UNAVAILABLE, `fewest Ready pods during the undo: ${r.fewest}`)
    const d = await cluster.get(DEPLOYMENT)
    t.equal(d.spec.template.spec.containers[0].image, IMAGE_V1, 'the template has the old image again')
    t.equal(d.metadata.annotations['deployment.kubernetes.io/revision'], '3', 'the undo is a new revision')
    const sets = (await cluster.get('/apis/apps/v1/namespaces/default/replicasets')).items
    t.equal(sets.length, 2, 'the old ReplicaSet is reused, not copied')
    t.ok(await until('only the old image runs', async () => {
      const all = Object.values(await containerImages()).flat()
      return all.length === REPLICAS && all.every((i) => i === IMAGE_V1)
    }, 30_000), 'the nodes run the old image only')
  })

  await t.test('a DaemonSet runs one pod on every node, and on a node that joins later', async (t) => {
    const file = join(cluster.hub.dataDir, 'ds.yaml')
    writeFileSync(file, DAEMONSET)
    await cluster.bramble('apply', '-f', file)
    const onNodes = async () => {
      const list = (await cluster.get(DAEMON_PODS)).items.filter(podReady)
      return list.map((p: any) => p.spec.nodeName).sort()
    }
    t.same(await until('a Ready daemon pod on each node', async () => {
      const nodes = await onNodes()
      return nodes.length === NODES.length && nodes
    }, 60_000), NODES, 'one daemon pod on alpha and one on beta')
    await cluster.addNode(LATE_NODE)
    const joinedAt = Date.now()
    const nodes = await until(`a Ready daemon pod on ${LATE_NODE}`, async () => {
      const n = await onNodes()
      return n.includes(LATE_NODE) && n
    }, 60_000)
    t.comment(`daemon pod Ready on ${LATE_NODE} ${((Date.now() - joinedAt) / 1000).toFixed(1)} s after its Node was Ready`)
    t.same(nodes, [...NODES, LATE_NODE], 'exactly one daemon pod per node, the late one included')
    const running = await cluster.appContainers(LATE_NODE)
    t.same(running.map((c) => c.Labels['io.bramble.container.name']), ['daemon'], `${LATE_NODE}'s own dockerd runs the daemon pod and nothing else`)
  })
}

/** One pod as `name@node:image phase ready [terminating]`, for failure messages. */
function podSummary(p: any): string {
  return `${p.metadata.name}@${p.spec.nodeName ?? '-'}:${p.spec.containers[0].image.split(':')[1]} ${p.status?.phase} ${podReady(p) ? 'ready' : 'unready'}${p.metadata.deletionTimestamp ? ' terminating' : ''}`
}

/** `bramble rollout undo` where the CLI has it, else the pinned kubectl; undefined with neither. */
async function rolloutUndo(cluster: NetnsCluster): Promise<(() => Promise<unknown>) | undefined> {
  const help = await runCli(['--help'])
  if (/^\s+rollout\b/m.test(help.stdout)) return () => cluster.bramble('rollout', 'undo', 'deployment/web')
  if (!existsSync(KUBECTL)) return undefined
  return async () => {
    const r = await runCli(['rollout', 'undo', 'deployment/web'], { bin: KUBECTL, kubeconfig: cluster.hub.kubeconfig })
    if (r.code !== 0) throw new Error(`kubectl rollout undo exited with ${r.code}: ${r.stderr}`)
    return r
  }
}

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
