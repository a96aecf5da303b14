// `bramble up` is a one-node cluster: the real binary runs the hub and a local agent on the real
// Docker engine. Through the `bramble` client (and kubectl where it is installed) a 2-container Pod
// with a ConfigMap volume, env from a Secret and a readiness probe runs, turns Ready, shows its
// logs, and leaves no container behind once deleted; a container that keeps exiting is restarted
// with back-off and its restarts show in `get pods`.

import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { join } from 'node:path'
import t from 'tap'
import { containsIp, parseCidr } from '../../src/mesh/ipam.js'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const KUBECTL = '/usr/lib/google-cloud-sdk/bin/kubectl.1.32'
const NODE = 'up-e2e'

const docker = dockerClient()

const WEB = `
apiVersion: v1
kind: ConfigMap
metadata: {name: web-content}
data:
  index.html: "<h1>served from a ConfigMap</h1>"
  motd.txt: "motd from the configmap volume"
---
apiVersion: v1
kind: Secret
metadata: {name: web-secret}
type: Opaque
stringData:
  api-token: s3cret-from-the-secret
---
apiVersion: v1
kind: Pod
metadata:
  name: web
  labels: {app: web}
spec:
  terminationGracePeriodSeconds: 1
  volumes:
  - name: content
    configMap: {name: web-content}
  containers:
  - name: server
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: [{containerPort: 8080}]
    volumeMounts: [{name: content, mountPath: /www, readOnly: true}]
    readinessProbe:
      httpGet: {path: /index.html, port: 8080}
      periodSeconds: 1
  - name: printer
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do echo "token=$API_TOKEN"; cat /etc/web/motd.txt; echo; sleep 1; done']
    env:
    - name: API_TOKEN
      valueFrom: {secretKeyRef: {name: web-secret, key: api-token}}
    volumeMounts: [{name: content, mountPath: /etc/web}]
`

const CRASHER = `
apiVersion: v1
kind: Pod
metadata: {name: crasher}
spec:
  terminationGracePeriodSeconds: 1
  restartPolicy: Always
  containers:
  - name: bye
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'echo bye; exit 1']
`

async function run() {
  await ensureBusyboxImage(docker)
  const up = await startHubProcess({ command: 'up', args: ['--node-name', NODE] })
  const clusterId = readFileSync(join(up.dataDir, 'cluster-id'), 'utf8').trim()
  let hubOutput = ''
  up.child.stdout!.on('data', (d) => (hubOutput += d))
  up.child.stderr!.on('data', (d) => (hubOutput += d))
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

  await t.test('the local agent of `bramble up` registers its Node, and it turns Ready', async (t) => {
    const node = await until('Node Ready', async () => {
      const n = await getJson('node', NODE)
      return n?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') && n
    })
    t.equal(node.metadata.name, NODE)
  })

  await t.test('a 2-container Pod with a ConfigMap volume, env from a Secret and a readiness probe runs and turns Ready', async (t) => {
    const applied = await apply('web', WEB)
    t.equal(applied.code, 0, applied.stderr)
    t.match(applied.stdout, /pod\/web created/)
    const pod = await until('pod web Running and Ready', async () => {
      const p = await getJson('pod', 'web')
      const ready = p?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
      return p?.status?.phase === 'Running' && ready && p
    })
    t.equal(pod.spec.nodeName, NODE)
    const podCIDR = (await getJson('node', NODE))?.spec?.podCIDR
    t.ok(podCIDR && containsIp(parseCidr(podCIDR), pod.status.podIP), `its IP ${pod.status.podIP} is in the node's pod subnet ${podCIDR}: it runs on the node's pod network, not Docker's default bridge`)
    const statuses = Object.fromEntries(pod.status.containerStatuses.map((c: any) => [c.name, c]))
    t.same(Object.keys(statuses).sort(), ['printer', 'server'])
    t.ok(statuses.server.ready, 'the server is ready: its readiness probe answered')
    t.ok(statuses.printer.ready, 'the printer (no probe) is ready once it runs')
    t.ok(statuses.server.state.running && statuses.printer.state.running)
    t.equal(pod.status.conditions.find((c: any) => c.type === 'ContainersReady')?.status, 'True')

    const table = await bramble('get', 'pods')
    t.match(table.stdout, /^web\s+2\/2\s+Running\s+0\s/m, '`get pods` shows it 2/2 Running')

    const containers = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'web' }, false)
    const names = containers.map((c) => c.Labels['io.bramble.container.name']).sort()
    t.same(names, ['POD', 'printer', 'server'], 'one running container per pod container, plus the sandbox')
  })

  await t.test('a readiness probe that gets no answer keeps its container running but not Ready', async (t) => {
    const applied = await apply('unready', `
apiVersion: v1
kind: Pod
metadata: {name: unready}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: silent
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
    readinessProbe:
      httpGet: {path: /, port: 8080}
      periodSeconds: 1
`)
    t.equal(applied.code, 0, applied.stderr)
    const events = await until('an Unhealthy event for the probe', async () => {
      const list = await getJson('events', '--field-selector', 'involvedObject.name=unready')
      return list?.items.some((e: any) => e.reason === 'Unhealthy') && list
    })
    t.match(events.items.find((e: any) => e.reason === 'Unhealthy').message, /Readiness probe failed/)
    const pod = await getJson('pod', 'unready')
    t.equal(pod.status.phase, 'Running')
    t.equal(pod.status.containerStatuses[0].ready, false)
    t.equal(pod.status.conditions.find((c: any) => c.type === 'Ready')?.status, 'False')
    t.equal((await bramble('delete', 'pod', 'unready')).code, 0)
  })

  await t.test('`bramble logs POD -c C` shows what each container printed: the Secret from env, the ConfigMap file', async (t) => {
    const logs = await until('printer logs', async () => {
      const r = await bramble('logs', 'web', '-c', 'printer')
      return r.code === 0 && /motd from the configmap volume/.test(r.stdout) && r.stdout
    })
    t.match(logs, /token=s3cret-from-the-secret/)
    t.match(logs, /motd from the configmap volume/)
    const server = await bramble('logs', 'web', '-c', 'server')
    t.equal(server.code, 0, server.stderr)
  })

  await t.test('`kubectl logs` shows the same output through the hub', { skip: existsSync(KUBECTL) ? false : `${KUBECTL} is not installed` }, async (t) => {
    const r = await runCli(['logs', 'web', '-c', 'printer', '--tail', '4'], { bin: KUBECTL, kubeconfig: up.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.match(r.stdout, /token=s3cret-from-the-secret/)
    t.match(r.stdout, /motd from the configmap volume/)
  })

  await t.test('deleting the pod removes its containers from Docker', async (t) => {
    const del = await bramble('delete', 'pod', 'web')
    t.equal(del.code, 0, del.stderr)
    await until('no container of pod web', async () => (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'web' })).length === 0)
    await until('pod web gone from the API', async () => (await bramble('get', 'pod', 'web')).code === 1)
    t.pass('no container of the pod remains, running or stopped')
  })

  await t.test('a container that exits is restarted with back-off: RESTARTS grows and CrashLoopBackOff shows in `get pods`', async (t) => {
    const applied = await apply('crasher', CRASHER)
    t.equal(applied.code, 0, applied.stderr)
    const seen = new Set<string>()
    let restarts = 0
    // Between crashes the container runs for a moment, and without a readiness probe a running
    // container is ready (1/1), as in Kubernetes; while it waits out its back-off it never is.
    const readyInBackOff = new Set<string>()
    await until('RESTARTS > 0 and CrashLoopBackOff in `get pods`', async () => {
      const r = await bramble('get', 'pods')
      const row = r.stdout.split('\n').find((l) => l.startsWith('crasher '))
      if (!row) return false
      const [, ready, status, count] = row.trim().split(/\s+/)
      seen.add(status!)
      if (status === 'CrashLoopBackOff') readyInBackOff.add(ready!)
      restarts = Math.max(restarts, Number(count))
      return restarts > 0 && seen.has('CrashLoopBackOff')
    }, 120_000)
    t.same([...readyInBackOff], ['0/1'], 'READY is 0/1 while the container waits out its back-off')
    t.ok(restarts > 0, `RESTARTS shows ${restarts}`)
    const pod = await getJson('pod', 'crasher')
    const status = pod.status.containerStatuses[0]
    t.ok(status.restartCount > 0)
    t.equal(status.lastState.terminated?.exitCode, 1, 'the last run ended with exit code 1')
    const logs = await bramble('logs', 'crasher')
    t.match(logs.stdout, /bye/)
    const events = await getJson('events', '--field-selector', 'involvedObject.name=crasher')
    t.ok(events.items.some((e: any) => e.reason === 'BackOff'), 'a BackOff event tells the operator')

    // Back-off: the attempts are spaced out, not a tight loop (counted, never timed).
    const attempts = (await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'crasher', 'io.bramble.container.name': 'bye' })).map((c) => Number(c.Labels['io.bramble.container.attempt']))
    t.ok(Math.max(...attempts) < 10, `restarts are spaced by back-off (latest attempt ${Math.max(...attempts)})`)
  })

  await t.test("garbage, an oversized message and one on another node's topic, sent with the node's own credentials, are refused and logged; the hub keeps serving", async (t) => {
    const identity = JSON.parse(readFileSync(join(up.dataDir, 'agent', 'identity.json'), 'utf8'))
    const { url, username, password, clientId } = identity.mqtt
    // The node's own client id (the broker allows no other): this connection takes the agent's
    // place, as a buggy or compromised agent would. The agent's Last Will fires then, so the Node
    // may turn NotReady for a moment; it must be Ready again once the agent reconnects.
    const client = await mqtt.connectAsync(url, { username, password, clientId, ca: identity.ca, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 10_000 })
    const upTopic = (name: string) => `bramble/v1/nodes/${NODE}/up/${name}`
    await client.publishAsync(upTopic('pod-status'), Buffer.from('\u0000\u00ff{not json at all'), { qos: 1 })
    // Over the heartbeat's 64 KiB but under the broker's packet limit: the intake drops it.
    await client.publishAsync(upTopic('heartbeat'), Buffer.alloc(512 * 1024, 'x'), { qos: 1 })
    await client.publishAsync(upTopic('node-status'), JSON.stringify({ v: 1, surprise: true }), { qos: 1 })
    client.publish('bramble/v1/nodes/someone-else/up/pod-status', JSON.stringify({ v: 1 }), { qos: 0 })
    await new Promise((r) => setTimeout(r, 500))
    // Over the broker's packet limit (1 MiB): the connection is closed once the header says so.
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()))
    client.publish(upTopic('heartbeat'), Buffer.alloc(2 * 1024 * 1024, 'x'), { qos: 0 })
    await Promise.race([closed, new Promise((r) => setTimeout(r, 10_000))])
    t.notOk(client.connected, 'the broker closed the connection that sent a 2 MiB packet')
    await client.endAsync(true)

    await until("the refusals in the hub's log", () => /dropped an invalid message from a node/.test(hubOutput) && /refused an MQTT publish outside the client's topics/.test(hubOutput))
    const refusals = hubOutput.split('\n').filter((l) => /dropped an invalid message|refused an MQTT publish/.test(l))
    t.ok(refusals.some((l) => l.includes('"kind":"pod-status"')), 'the garbage pod status is logged')
    t.ok(refusals.some((l) => l.includes('"kind":"heartbeat"')), 'the oversized heartbeat is logged')
    t.ok(refusals.some((l) => l.includes('someone-else')), "the publish on another node's topic is logged")

    t.equal((await bramble('get', 'nodes')).code, 0, 'the API answers')
    t.ok(up.child.exitCode === null && up.child.signalCode === null, 'the hub process still runs')
    await until('the node Ready again (its agent back on the bus)', async () => (await getJson('node', NODE))?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True'))
    // The agent keeps serving too: logs still come from the node through the hub.
    const logs = await until('logs through the hub', async () => {
      const r = await bramble('logs', 'crasher')
      return r.code === 0 && r.stdout
    })
    t.match(logs, /bye/)
  })
}

const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()
