// A node cut off from the network, as by a pulled cable or a power cut: its link goes down and no
// connection is closed, so the hub learns nothing until the node's heartbeats are overdue. With the
// hub's default settings (heartbeat 5 s, node grace period 20 s, default toleration 30 s) its pods
// run again on the other nodes about 50 s after the cut (20 s to notice, 30 s to evict, then a
// start); the test prints the timeline and allows a generous margin over that. With the link back, the node's agent reconnects by itself, stops
// the pods the hub moved away within 10 s of the link coming up (measured from link-up until its
// dockerd runs none of them: a pod never runs twice for much longer than the partition itself),
// and the node is Ready again.

import t from 'tap'
import { until } from '../helpers/e2e.js'
import { deployWorkers, watchFailover, WORKER_PODS } from '../helpers/failover-watch.js'
import { NetnsCluster, nodeReady, podReady } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'

const NODES = ['alpha', 'beta', 'gamma']
const VICTIM = 'beta'
const REPLICAS = 6
const GRACE_S = 20
const TOLERATION_S = 30
const RECOVERY_BOUND_S = GRACE_S + TOLERATION_S + 25
/** Issue 7: the stale copies on the healed node stop within this long of the link coming back. */
const STALE_STOP_BOUND_S = 10

async function run() {
  const cluster = await NetnsCluster.start()
  t.teardown(() => cluster.cleanup())
  await Promise.all(NODES.map((n) => cluster.addNode(n)))
  const pods = async (): Promise<any[]> => (await cluster.get(WORKER_PODS)).items
  const list = await deployWorkers(cluster, REPLICAS)
  const victimPods = list.filter((p) => p.spec.nodeName === VICTIM).map((p) => p.metadata.name)

  await t.test(`${VICTIM} cut off: its pods run again on the other nodes within ${RECOVERY_BOUND_S} s`, async (t) => {
    t.ok(victimPods.length > 0, `${VICTIM} runs ${victimPods.length} replicas before the cut`)
    const cutAt = Date.now()
    await cluster.agent(VICTIM).host.setLink(false)
    const f = await watchFailover(cluster, { node: VICTIM, podsPath: WORKER_PODS, replicas: REPLICAS, since: cutAt, timeoutMs: (RECOVERY_BOUND_S + 30) * 1000, gonePods: victimPods })
    t.comment(`after the link of ${VICTIM} went down: ${f.summary}`)
    const running = f.milestones.running
    t.ok(running !== undefined && running <= RECOVERY_BOUND_S, `replicas Running on the other nodes ${running?.toFixed(1)} s after the cut (bound ${RECOVERY_BOUND_S} s)`)
    t.equal((await cluster.appContainers(VICTIM)).length, victimPods.length, `${VICTIM}'s containers kept running: cut off, it cannot know`)
  })

  await t.test(`${VICTIM}'s link back: its agent reconnects, stops the moved pods within ${STALE_STOP_BOUND_S} s, and the node is Ready again`, async (t) => {
    await cluster.agent(VICTIM).host.setLink(true)
    const backAt = Date.now()
    // Polled without a pause between looks (each look is a list on the node's dockerd), so the figure is the stop time, not the polling period.
    let running = (await cluster.appContainers(VICTIM)).length
    while (running > 0 && Date.now() - backAt < 60_000) running = (await cluster.appContainers(VICTIM)).length
    const stoppedAfterS = (Date.now() - backAt) / 1000
    t.equal(running, 0, `${VICTIM} stopped the moved pods`)
    t.ok(stoppedAfterS <= STALE_STOP_BOUND_S, `the stale copies stopped ${stoppedAfterS.toFixed(1)} s after the link came back (bound ${STALE_STOP_BOUND_S} s)`)
    await until(`${VICTIM} Ready again`, async () => nodeReady(await cluster.get(`/api/v1/nodes/${VICTIM}`)), 90_000)
    t.comment(`${VICTIM} Ready ${((Date.now() - backAt) / 1000).toFixed(1)} s after its link came back`)
    const after = await pods()
    t.equal(after.filter(podReady).length, REPLICAS, `still ${REPLICAS} replicas Ready`)
    t.notOk(after.some((p) => victimPods.includes(p.metadata.name)), 'the evicted pods did not come back')
    const node = await cluster.get(`/api/v1/nodes/${VICTIM}`)
    t.notOk(node.spec.taints?.some((x: any) => x.key === 'node.kubernetes.io/unreachable'), 'the unreachable taint is gone')
  })
}

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
