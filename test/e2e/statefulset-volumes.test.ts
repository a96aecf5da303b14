// A StatefulSet with a volumeClaimTemplate on a real `bramble up` (hub, controllers, scheduler and
// a local agent on the real Docker engine): db-0 and db-1 start in order, each gets its own claim
// bound to a local-path volume on the node (a directory under the agent's data dir); db-0 writes a
// file to its volume; deleted, db-0 comes back with the same name on the same node and reads the
// same file. A claim deleted while its pod runs stays Terminating with its data (pvc-protection);
// once the pod is gone the claim goes, its volume is deleted (reclaim policy Delete) and the agent
// removes its directory. Each pod resolves the other as <pod>.db.default.svc.cluster.local under
// the headless Service db. `bramble get statefulsets` and `get pvc` print Kubernetes' columns.

import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { readInContainer, runInContainer } from '../helpers/container-read.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, freePort, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const NODE = 'sts-e2e'
const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const docker = dockerClient()

const STATEFUL_SET = `
apiVersion: v1
kind: Service
metadata: {name: db}
spec:
  clusterIP: None
  selector: {app: db}
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: db
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, '[ -f /data/id ] || echo "first written by $(hostname) $RANDOM$RANDOM" > /data/id; trap "exit 0" TERM; while :; do sleep 1; done']
        volumeMounts:
        - {name: data, mountPath: /data}
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

async function run() {
  await ensureBusyboxImage(docker)
  await t.test('a StatefulSet of 2 with a volumeClaimTemplate on a real hub and agent', async (t) => {
    await scenario(t)
  })
}

async function scenario(t: Test) {
  const dataDir = mkdtempSync(join(tmpdir(), 'sts-e2e-'))
  const up = await startHubProcess({ command: 'up', dataDir, args: ['--node-name', NODE, '--api-port', String(await freePort()), '--mqtt-port', String(await freePort())] })
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
  const hasCondition = (o: any, type: string) => o?.status?.conditions?.some((c: any) => c.type === type && c.status === 'True')
  const runningReady = async (name: string) => {
    const p = await getJson('pod', name)
    return p?.status?.phase === 'Running' && hasCondition(p, 'Ready') && p
  }
  const dbContainer = async (pod: string) => {
    const [c] = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': pod, 'io.bramble.container.name': 'db' }, false)
    if (!c) throw new Error(`no running container of ${pod}`)
    return c.Id
  }
  /** What the pod's running container reads at `path`. */
  const readInPod = async (pod: string, path: string) => readInContainer(docker, await dbContainer(pod), path)
  const volumeDir = (pv: string) => join(up.dataDir, 'agent', 'volumes', pv)

  await until('the node Ready', async () => hasCondition(await getJson('node', NODE), 'Ready'))

  const file = join(up.dataDir, 'db.yaml')
  writeFileSync(file, STATEFUL_SET)
  const applied = await bramble('apply', '-f', file)
  t.equal(applied.code, 0, applied.stderr)

  const first = await until('db-0 Running and Ready', () => runningReady('db-0'), 120_000)
  t.equal(first.spec.nodeName, NODE)
  await until('db-1 Running and Ready', () => runningReady('db-1'), 120_000)

  const claims = await until('both claims Bound', async () => {
    const list = await getJson('pvc')
    const bound = (list?.items ?? []).filter((c: any) => c.status?.phase === 'Bound')
    return bound.length === 2 && bound
  })
  t.same(claims.map((c: any) => c.metadata.name).sort(), ['data-db-0', 'data-db-1'])
  const claim0 = claims.find((c: any) => c.metadata.name === 'data-db-0')
  t.equal(claim0.spec.storageClassName, 'local-path')
  const pv0 = await getJson('pv', claim0.spec.volumeName)
  t.same(pv0.spec.nodeAffinity.required.nodeSelectorTerms, [{ matchFields: [{ key: 'metadata.name', operator: 'In', values: [NODE] }] }], 'the volume is pinned to the node')

  const written = await until('db-0 wrote its file', async () => (await readInPod('db-0', '/data/id')).trim() || undefined)
  t.match(written, /^first written by db-0 \d+$/)
  t.equal(readFileSync(join(volumeDir(pv0.metadata.name), 'id'), 'utf8').trim(), written, "the file is in the volume's directory under the agent's data dir")
  const other = await until('db-1 wrote its own', async () => (await readInPod('db-1', '/data/id')).trim() || undefined)
  t.not(other, written, 'db-1 has a volume of its own')

  const table = await bramble('get', 'statefulsets')
  t.match(table.stdout, /^NAME\s+READY\s+AGE/m)
  t.match(table.stdout, /^db\s+2\/2\s/m, '`get statefulsets` says 2/2 ready')
  const pvcTable = await bramble('get', 'pvc')
  t.match(pvcTable.stdout, /^data-db-0\s+Bound\s+pvc-[0-9a-f-]+\s+1Gi\s+RWO\s+local-path\s/m)

  await t.test("each pod resolves the other by name under the headless Service: <pod>.db.default.svc.cluster.local", async (t) => {
    const ipOf = async (pod: string) => (await getJson('pod', pod))?.status?.podIP
    for (const [from, to] of [['db-1', 'db-0'], ['db-0', 'db-1']]) {
      const ip = await ipOf(to!)
      const answer = await until(`${from} resolves ${to}`, async () => {
        const out = await runInContainer(docker, await dbContainer(from!), ['nslookup', `${to}.db.default.svc.cluster.local`])
        return out.includes(ip) && out
      }, 30_000)
      t.match(answer, new RegExp(`Address:? (\\d+: )?${ip.replace(/\./g, '\\.')}`), `${from} finds ${to} at ${ip}`)
    }
    const none = await runInContainer(docker, await dbContainer('db-0'), ['nslookup', 'db-7.db.default.svc.cluster.local'])
    t.match(none, /NXDOMAIN|can't find/, `no such pod: ${none}`)
  })

  await t.test('a deleted pod comes back with the same name on the same node and reads the same data', async (t) => {
    const deleted = await bramble('delete', 'pod', 'db-0')
    t.equal(deleted.code, 0, deleted.stderr)
    const again = await until('a new db-0 Running and Ready', async () => {
      const p = await runningReady('db-0')
      return p && p.metadata.uid !== first.metadata.uid && p
    }, 120_000)
    t.equal(again.spec.nodeName, NODE)
    t.same(again.spec.volumes.find((v: any) => v.name === 'data'), { name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } })
    const read = await until('the new db-0 reads its file', async () => (await readInPod('db-0', '/data/id')).trim() || undefined)
    t.equal(read, written, 'the same data, written by the pod before it')
  })

  await t.test('`kubectl rollout status sts` sees the StatefulSet rolled out', { skip: existsSync(KUBECTL) ? false : `${KUBECTL} is not installed` }, async (t) => {
    const r = await runCli(['rollout', 'status', 'statefulset/db', '--timeout', '60s'], { bin: KUBECTL, kubeconfig: up.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /partitioned roll out complete: 2 new pods have been updated/)
    const ours = await bramble('rollout', 'status', 'statefulset/db', '--timeout', '60s')
    t.equal(ours.code, 0, ours.stderr)
    t.match(ours.stdout, /partitioned roll out complete: 2 new pods have been updated/, '`bramble rollout status` says what kubectl says')
    const listed = await runCli(['get', 'sts,pvc,sc'], { bin: KUBECTL, kubeconfig: up.kubeconfig })
    t.equal(listed.code, 0, listed.stderr)
    t.match(listed.stdout, /statefulset\.apps\/db\s+2\/2/)
    t.match(listed.stdout, /local-path \(default\)\s+rancher\.io\/local-path\s+Delete\s+WaitForFirstConsumer\s+false/)
  })

  const pv1 = (await getJson('pvc', 'data-db-1')).spec.volumeName
  await t.test('a claim deleted while its pod runs stays, Terminating, with its volume and data', async (t) => {
    t.ok(existsSync(volumeDir(pv1)), 'the directory is there')
    const deleted = await bramble('delete', 'pvc', 'data-db-1', '--wait=false')
    t.equal(deleted.code, 0, deleted.stderr)
    await new Promise((r) => setTimeout(r, 2000))
    t.match((await bramble('get', 'pvc', 'data-db-1')).stdout, /^data-db-1\s+Terminating\s/m, '`get pvc` says Terminating')
    t.equal((await bramble('get', 'pv', pv1)).code, 0, 'its volume stays')
    t.equal((await readInPod('db-1', '/data/id')).trim(), other, 'db-1 reads its data on')
  })

  await t.test('deleting the StatefulSet keeps the claims; the claim deleted before goes with its pod, and its volume and directory with it', async (t) => {
    t.equal((await bramble('delete', 'statefulset', 'db')).code, 0)
    await until('the pods are gone', async () => ((await getJson('pods', '-l', 'app=db'))?.items ?? []).length === 0)
    t.ok(await getJson('pvc', 'data-db-0'), 'data-db-0 is kept (Retain)')
    await until('data-db-1 gone', async () => (await bramble('get', 'pvc', 'data-db-1')).code !== 0)
    await until('its volume deleted', async () => (await bramble('get', 'pv', pv1)).code !== 0)
    await until('the agent removed its directory', () => !existsSync(volumeDir(pv1)))
    t.ok(existsSync(volumeDir(pv0.metadata.name)), "db-0's directory stays")
  })
}

const skip = await dockerUnavailable(docker)
if (skip) t.plan(0, skip)
else await run()
