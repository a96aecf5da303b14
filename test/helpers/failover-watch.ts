// Node-failure scenarios share this: a Deployment of busybox workers, and a watch of its replicas
// leaving a failed node that notes when the hub marked the node NotReady, tainted it unreachable,
// evicted its pods, and when every replica ran (and was Ready) on the other nodes.

import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { BUSYBOX_IMAGE } from './busybox-image.js'
import { until } from './e2e.js'
import { podReady, type NetnsCluster } from './netns-cluster.js'

export interface Failover {
  /** Seconds from `since` to each milestone seen: notReady, tainted, evicted, running. */
  milestones: Partial<Record<'notReady' | 'tainted' | 'evicted' | 'running', number>>
  /** Seconds from `since` until every replica was Ready on the other nodes. */
  readyAfter: number
  /** One line for t.comment. */
  summary: string
}

export async function watchFailover(cluster: NetnsCluster, o: { node: string; podsPath: string; replicas: number; since: number; timeoutMs: number; gonePods: string[] }): Promise<Failover> {
  const seconds = () => (Date.now() - o.since) / 1000
  const milestones: Failover['milestones'] = {}
  let last = ''
  try {
    await until(`every replica Running and Ready off ${o.node}`, async () => {
      const node = await cluster.get(`/api/v1/nodes/${o.node}`)
      const ready = node?.status?.conditions?.find((c: any) => c.type === 'Ready')
      if (ready?.status !== 'True') milestones.notReady ??= seconds()
      if (node?.spec?.taints?.some((x: any) => x.key === 'node.kubernetes.io/unreachable' && x.effect === 'NoExecute')) milestones.tainted ??= seconds()
      const list: any[] = (await cluster.get(o.podsPath)).items
      if (!list.some((p) => o.gonePods.includes(p.metadata.name))) milestones.evicted ??= seconds()
      const elsewhere = list.filter((p) => p.spec.nodeName && p.spec.nodeName !== o.node && !p.metadata.deletionTimestamp)
      if (elsewhere.length === o.replicas && elsewhere.every((p) => p.status?.phase === 'Running')) milestones.running ??= seconds()
      last = `node ${o.node} Ready=${ready?.status}; pods ${list.map((p) => `${p.metadata.name}@${p.spec.nodeName ?? '-'} ${p.status?.phase}${podReady(p) ? ' ready' : ''}`).join(', ')}`
      return elsewhere.length === o.replicas && elsewhere.every(podReady)
    }, o.timeoutMs)
  } catch (err) {
    throw new Error(`${(err as Error).message} after ${seconds().toFixed(1)} s; last seen: ${last}\n${await cluster.diagnostics()}`, { cause: err })
  }
  const readyAfter = seconds()
  const at = (m: keyof Failover['milestones']) => (milestones[m] === undefined ? 'not seen' : `${milestones[m]!.toFixed(1)} s`)
  const summary = `${o.node} NotReady at ${at('notReady')}, unreachable taint at ${at('tainted')}, its pods evicted at ${at('evicted')}, ` +
    `all ${o.replicas} replicas Running elsewhere at ${at('running')}, Ready at ${readyAfter.toFixed(1)} s`
  return { milestones, readyAfter, summary }
}

export const WORKER_PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Dworker'

/** A Deployment `worker` of busybox replicas that stop at once on SIGTERM; resolves with its pods once all are Ready. */
export async function deployWorkers(cluster: NetnsCluster, replicas: number): Promise<any[]> {
  const file = join(cluster.hub.dataDir, 'worker.yaml')
  writeFileSync(file, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: worker}
spec:
  replicas: ${replicas}
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
`)
  await cluster.bramble('apply', '-f', file)
  return until('every worker replica Running and Ready', async () => {
    const list: any[] = (await cluster.get(WORKER_PODS)).items
    return list.length === replicas && list.every(podReady) && list
  }, 60_000)
}
