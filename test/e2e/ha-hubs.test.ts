// Highly available hubs (issue 11), all real: three etcd members, one Mosquitto, two `bramble hub`
// processes on the etcd store and two agents in network namespaces, each with its own dockerd.
// SIGKILL the leading hub in the middle of a Deployment's rolling update: the other hub takes over
// (the time is printed), the rollout completes, every write either hub acknowledged is there, and
// no pod runs twice. Then SIGKILL one etcd member of three: nothing visible changes.
//
// The hubs share tokens and node credentials through etcd: hub B is set up the documented way (hub
// A's ca.crt, ca.key and secrets.key copied into an empty data dir), one agent joins
// with a token made by `bramble token create` on hub A's data dir, the other through hub B with a
// token made through hub B's API, and Mosquitto, reading hub A's files, admits both. After the
// takeover Mosquitto is restarted on the survivor's files: both agents reconnect and stay Ready.
// Deleting a Node through the survivor locks its agent out of the broker.

import { spawn, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { Etcd3 } from 'etcd3'
import mqtt from 'mqtt'
import { JOIN_PATH, JOIN_TOKENS_PATH } from '../../src/api/join.js'
import { identityPath } from '../../src/agent/join-client.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { freePort, runCli, until } from '../helpers/e2e.js'
import { etcdMissing, startEtcd, type EtcdCluster } from '../helpers/etcd.js'
import { BRAMBLE_BIN, startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { MOSQUITTO_ACL_FILE, MOSQUITTO_PASSWORD_FILE, mosquittoListenerConfig } from '../../src/hub/mosquitto-config.js'
import { mosquittoAvailable } from '../helpers/mosquitto.js'
import { nodeReady, podReady, wireguardInterfaceOf } from '../helpers/netns-cluster.js'
import { NetnsLab, netnsUnavailable, type NetnsHost } from '../helpers/netns-host.js'

const PREFIX = '/ha-e2e/'
const REPLICAS = 4
const DEPLOYMENT = '/apis/apps/v1/namespaces/default/deployments/ha-roll'
const PODS = '/api/v1/namespaces/default/pods?labelSelector=app%3Dha-roll'
const CONFIGMAPS = '/api/v1/namespaces/default/configmaps'

/** A readiness delay makes each step of the rollout take a few seconds: there is a middle to kill the leader in. */
const deployment = (version: string) => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'ha-roll', namespace: 'default' },
  spec: {
    replicas: REPLICAS,
    selector: { matchLabels: { app: 'ha-roll' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
    template: {
      metadata: { labels: { app: 'ha-roll' } },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          {
            name: 'app',
            image: BUSYBOX_IMAGE,
            imagePullPolicy: 'IfNotPresent',
            env: [{ name: 'VERSION', value: version }],
            command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'],
            readinessProbe: { exec: { command: ['true'] }, initialDelaySeconds: 3, periodSeconds: 1 },
          },
        ],
      },
    },
  },
})

interface Agent {
  node: string
  host: NetnsHost
  child: ChildProcess
  output(): string
}

const hashOf = (p: any): string => p.metadata.labels['pod-template-hash']

async function run(): Promise<void> {
  const etcd: EtcdCluster = await startEtcd(3)
  const lab = await NetnsLab.create({ prefix: 'hid' })
  const hubs: HubProcess[] = []
  const agents: Agent[] = []
  let mosquitto: ChildProcess | undefined
  let mosquittoLog = ''
  const watcher = new Etcd3({ hosts: etcd.endpoints })
  t.teardown(async () => {
    for (const a of agents) if (a.child.exitCode === null && a.child.signalCode === null) a.child.kill('SIGKILL')
    for (const hub of hubs) await hub.stop('SIGKILL')
    mosquitto?.kill('SIGTERM')
    watcher.close()
    closeApiAgents()
    await lab.cleanup()
    await etcd.stop()
  })

  // Hub A first: it makes the cluster's CA, secrets key and cluster id, and puts the tokens and the
  // hub's MQTT password into the store. Mosquitto reads the password and ACL files hub A keeps; it
  // starts with empty ones.
  const dirA = join(lab.dir, 'hub-a')
  const authDir = join(dirA, 'mosquitto')
  mkdirSync(authDir, { recursive: true, mode: 0o700 })
  writeFileSync(join(authDir, 'mosquitto-passwd'), '', { mode: 0o600 })
  writeFileSync(join(authDir, 'mosquitto-acl'), '', { mode: 0o600 })
  const mqttPort = await freePort()
  const pidFile = join(lab.dir, 'mosquitto.pid')
  const conf = join(lab.dir, 'mosquitto.conf')
  /** Starts Mosquitto on the password and ACL files in `filesDir`; its log says who connected. */
  const startMosquitto = async (filesDir: string) => {
    writeFileSync(
      conf,
      [
        `user ${process.env.USER ?? 'root'}`,
        'persistence false',
        `pid_file ${pidFile}`,
        'log_dest stderr',
        'log_type error',
        'log_type notice',
        'connection_messages true',
        mosquittoListenerConfig({ port: mqttPort, host: lab.hubAddress, passwordFile: join(filesDir, MOSQUITTO_PASSWORD_FILE), aclFile: join(filesDir, MOSQUITTO_ACL_FILE) }),
      ].join('\n'),
    )
    mosquittoLog = ''
    rmSync(pidFile, { force: true })
    const child = spawn('mosquitto', ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] })
    child.stderr!.on('data', (d) => (mosquittoLog = (mosquittoLog + d).slice(-50_000)))
    mosquitto = child
    await until('mosquitto to write its pid file', () => existsSync(pidFile), 10_000)
  }
  await startMosquitto(authDir)

  const hubArgs = ['--listen', lab.hubAddress, '--advertise', lab.hubAddress, '--store', `${etcd.url}${PREFIX}`, '--mqtt-url', `mqtt://${lab.hubAddress}:${mqttPort}`, '--mosquitto-pid-file', pidFile, '--log-level', 'info']
  const hubA = await startHubProcess({ dataDir: dirA, args: hubArgs, timeoutMs: 60_000 })
  hubs.push(hubA)
  // On a hub of a shared store, `bramble token create --data-dir` works on the store (DIR/shared-store names it).
  const joinTokenA = await runCli(['token', 'create', '--data-dir', dirA])
  if (joinTokenA.code !== 0) throw new Error(`token create: ${joinTokenA.stderr}`)
  // Hub B shares hub A's identity, and nothing else: tokens and MQTT credentials come from the store.
  const dirB = join(lab.dir, 'hub-b')
  mkdirSync(dirB, { recursive: true, mode: 0o700 })
  for (const file of ['ca.crt', 'ca.key', 'secrets.key']) copyFileSync(join(dirA, file), join(dirB, file))
  const hubB = await startHubProcess({ dataDir: dirB, args: hubArgs, timeoutMs: 60_000 })
  hubs.push(hubB)
  const outputs = new Map<HubProcess, string>()
  /** Each hub's "node joined" log lines, kept whole: the tail in outputs moves on. */
  const joinedThrough = new Map<HubProcess, string>()
  for (const hub of hubs) {
    outputs.set(hub, '')
    joinedThrough.set(hub, '')
    const keep = (d: Buffer) => {
      outputs.set(hub, (outputs.get(hub)! + d).slice(-20_000))
      for (const line of String(d).split('\n')) if (line.includes('"msg":"node joined"')) joinedThrough.set(hub, `${joinedThrough.get(hub)}${line}\n`)
    }
    hub.child.stdout!.on('data', keep)
    hub.child.stderr!.on('data', keep)
  }
  const api = (hub: HubProcess): ApiTarget => ({ server: hub.server, ca: hub.ca, token: hub.token })
  // The second agent's token is made through hub B's API, and it joins through hub B.
  const madeOnB = await apiRequest(api(hubB), 'POST', JOIN_TOKENS_PATH, { ttlSeconds: 3600 })
  if (madeOnB.status !== 201) throw new Error(`POST ${JOIN_TOKENS_PATH} on hub B: ${madeOnB.status} ${madeOnB.text}`)
  const joinTokens: Record<string, string> = { 'ha-n1': joinTokenA.stdout.trim(), 'ha-n2': madeOnB.json.token }
  const hubOrder: Record<string, HubProcess[]> = { 'ha-n1': [hubA, hubB], 'ha-n2': [hubB, hubA] }
  const leaderUrl = async () => (await watcher.get(`${PREFIX}leader`).string()) ?? undefined
  const leaderTerm = async () => (await watcher.get(`${PREFIX}leader`).exec()).kvs[0]?.create_revision

  for (const node of ['ha-n1', 'ha-n2']) {
    const host = await lab.addHost()
    const hubList = hubOrder[node]!.map((hub) => new URL(hub.server).host).join(',')
    const args = [process.execPath, BRAMBLE_BIN, 'agent', '--data-dir', join(host.dir, 'agent'), '--hub', hubList, '--token', joinTokens[node]!, '--node-name', node, '--docker-host', host.dockerHost, '--log-level', 'info', '--wireguard-interface', wireguardInterfaceOf(host), '--advertise-address', host.address]
    const child = spawn('nsenter', host.nsenter(args), { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout!.on('data', (d) => (output = (output + d).slice(-20_000)))
    child.stderr!.on('data', (d) => (output = (output + d).slice(-20_000)))
    agents.push({ node, host, child, output: () => output })
  }
  const diagnostics = () => {
    const tail = (text: string) => text.trim().split('\n').slice(-12).join('\n')
    return [...hubs.map((h, i) => `hub ${'AB'[i]} log:\n${tail(outputs.get(h) ?? '')}`), ...agents.map((a) => `agent ${a.node} log:\n${tail(a.output())}`), `mosquitto log:\n${tail(mosquittoLog)}`].join('\n')
  }
  const get = async (hub: HubProcess, path: string) => {
    const res = await apiRequest(api(hub), 'GET', path)
    if (res.status !== 200) throw new Error(`GET ${path} on ${hub.server}: ${res.status} ${res.text}`)
    return res.json
  }
  try {
    await until('both Nodes Ready', async () => {
      for (const a of agents) if (a.child.exitCode !== null) throw new Error(`agent ${a.node} exited with ${a.child.exitCode}`)
      const nodes = (await get(hubB, '/api/v1/nodes')).items
      return nodes.length === 2 && nodes.every(nodeReady)
    }, 120_000)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
  }

  const first = await leaderUrl()
  const leader = hubs.find((h) => h.server === first)!
  const follower = hubs.find((h) => h !== leader)!
  const pods = async (hub: HubProcess): Promise<any[]> => (await get(hub, PODS)).items

  await t.test('the hubs share tokens and node credentials: an agent joined through each hub, and the broker admits both', async (t) => {
    const tokenId = (token: string) => /::([a-z0-9]{6})\./.exec(token)![1]
    for (const node of ['ha-n1', 'ha-n2']) {
      const n = await get(hubA, `/api/v1/nodes/${node}`)
      t.equal(n.metadata.annotations['bramble.io/join-token-id'], tokenId(joinTokens[node]!), `${node} joined with its own token`)
    }
    t.match(joinedThrough.get(hubB), /"node":"ha-n2"/, 'ha-n2 joined through hub B')
    t.match(joinedThrough.get(hubA), /"node":"ha-n1"/, 'ha-n1 joined through hub A')
    const passwdA = readFileSync(join(authDir, 'mosquitto-passwd'), 'utf8')
    t.match(passwdA, /^ha-n2:/m, "hub A's password file holds the node that joined through hub B")
    t.match(passwdA, /^ha-n1:/m)
    t.match(readFileSync(join(dirB, 'mosquitto', 'mosquitto-passwd'), 'utf8'), /^ha-n1:/m, "hub B's holds the node that joined through hub A")
  })

  await t.test('both hubs serve the API; one leads', async (t) => {
    t.ok(leader, `the election key names a hub: ${first}`)
    for (const hub of hubs) t.equal((await apiRequest(api(hub), 'GET', '/api/v1/namespaces/default')).status, 200, `${hub.server} answers`)
    const created = await apiRequest(api(follower), 'POST', DEPLOYMENT.replace('/ha-roll', ''), deployment('v1'))
    t.equal(created.status, 201, 'a Deployment is created through the follower')
    const v1 = await until('v1: every replica Ready, spread by the leader', async () => {
      const list = await pods(leader)
      return list.length === REPLICAS && list.every(podReady) && list
    }, 180_000)
    t.equal(v1.length, REPLICAS)
  })

  // Acknowledged writes, through both hubs, from before the kill until the rollout is done.
  const acknowledged: string[] = []
  let writing = true
  let count = 0
  t.teardown(() => void (writing = false))
  const writer = (async () => {
    while (writing) {
      const hub = hubs[count % 2]!
      const name = `ha-ack-${count++}`
      const res = await apiRequest(api(hub), 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { via: hub.server } }).catch(() => undefined)
      if (res?.status === 201) acknowledged.push(name)
      await new Promise((r) => setTimeout(r, 100))
    }
  })()

  // Running app containers per pod across both nodes, sampled through the takeover: the most seen at once.
  const mostAtOnce = new Map<string, number>()
  let sampling = true
  t.teardown(() => void (sampling = false))
  const sampler = (async () => {
    while (sampling) {
      const counts = new Map<string, number>()
      for (const a of agents) {
        const running = await a.host.docker.listContainers({ filters: { label: ['io.bramble.pod.namespace=default', 'io.bramble.container.role=app'] } }).catch(() => [])
        for (const c of running) counts.set(c.Labels['io.bramble.pod.name']!, (counts.get(c.Labels['io.bramble.pod.name']!) ?? 0) + 1)
      }
      for (const [pod, n] of counts) mostAtOnce.set(pod, Math.max(n, mostAtOnce.get(pod) ?? 0))
      await new Promise((r) => setTimeout(r, 500))
    }
  })()

  let oldHash = ''
  await t.test('SIGKILL the leading hub halfway through a rolling update: the other takes over and completes it', async (t) => {
    oldHash = hashOf((await pods(leader))[0])
    const patched = await apiRequest(api(leader), 'PATCH', DEPLOYMENT, { spec: deployment('v2').spec }, { 'Content-Type': 'application/merge-patch+json' })
    t.equal(patched.status, 200, 'the rollout to v2 starts')
    const middle = await until('the rollout half done: some v2 pods Ready, some v1 pods still there', async () => {
      const list = await pods(leader)
      const fresh = list.filter((p) => hashOf(p) !== oldHash)
      const stale = list.filter((p) => hashOf(p) === oldHash)
      return fresh.filter(podReady).length >= 1 && stale.length >= 2 && { fresh: fresh.length, stale: stale.length }
    }, 180_000)
    const termBefore = await leaderTerm()
    const ackedBeforeKill = acknowledged.length
    await leader.stop('SIGKILL')
    const killedAt = Date.now()
    t.pass(`killed the leading hub ${leader.server} with ${middle.fresh} v2 and ${middle.stale} v1 pods, ${ackedBeforeKill} writes acknowledged so far`)

    try {
      await until('the other hub leads', async () => (await leaderUrl()) === follower.server, 15_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
    }
    const takeoverMs = Date.now() - killedAt
    t.comment(`takeover: ${(takeoverMs / 1000).toFixed(1)} s after SIGKILL (lease 5 s)`)
    t.not(await leaderTerm(), termBefore, 'a new term')

    try {
      const done = await until('the Deployment rolled out through the new leader', async () => {
        const d = await get(follower, DEPLOYMENT)
        const s = d?.status ?? {}
        return d.metadata.generation === s.observedGeneration && s.updatedReplicas === REPLICAS && s.readyReplicas === REPLICAS && s.availableReplicas === REPLICAS && s.replicas === REPLICAS && d
      }, 240_000)
      t.equal(done.status.unavailableReplicas ?? 0, 0, 'every replica available')
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
    }
    const list = await until('only v2 pods left, all Ready', async () => {
      const l = await pods(follower)
      return l.length === REPLICAS && l.every((p) => hashOf(p) !== oldHash && podReady(p)) && l
    }, 120_000)
    t.equal(list.length, REPLICAS)
    // Inside the subtest: between subtests tap would end the root test while these are awaited.
    writing = false
    sampling = false
    await Promise.all([writer, sampler])
  })

  await t.test('no write either hub acknowledged is lost', async (t) => {
    const stored = new Set<string>((await get(follower, CONFIGMAPS)).items.map((c: any) => c.metadata.name))
    const lost = acknowledged.filter((name) => !stored.has(name))
    t.ok(acknowledged.length > 20, `${acknowledged.length} writes acknowledged, through both hubs`)
    t.same(lost, [], 'every acknowledged ConfigMap is in the store')
  })

  await t.test('no pod runs twice: one app container per pod across both nodes, and only the pods the API has', async (t) => {
    const names = (await pods(follower)).map((p) => p.metadata.name).sort()
    const perPod = await until('the engines run exactly the v2 pods, one app container each', async () => {
      const counts = new Map<string, number>()
      for (const a of agents) {
        const running = await a.host.docker.listContainers({ filters: { label: ['io.bramble.pod.namespace=default', 'io.bramble.container.role=app'] } })
        for (const c of running) counts.set(c.Labels['io.bramble.pod.name']!, (counts.get(c.Labels['io.bramble.pod.name']!) ?? 0) + 1)
      }
      return [...counts.keys()].sort().join() === names.join() && counts
    }, 120_000)
    for (const [pod, n] of perPod) t.equal(n, 1, `${pod}: one running container`)
    t.ok(mostAtOnce.size >= 2 * REPLICAS, `${mostAtOnce.size} pods sampled through the takeover`)
    t.same([...mostAtOnce].filter(([, n]) => n > 1), [], 'at no sample did a pod run more than one container')
  })

  await t.test('SIGKILL one etcd member of three: nothing visible changes', async (t) => {
    const term = await leaderTerm()
    const current = new Set((await pods(follower)).map((p) => p.metadata.name as string))
    // The running containers (app and sandbox) of the pods the API has; those of v1 pods may still be going.
    const podContainers = async () => {
      const ids: string[] = []
      for (const a of agents) for (const c of await a.host.docker.listContainers()) if (current.has(c.Labels['io.bramble.pod.name'] ?? '')) ids.push(c.Id)
      return ids.sort()
    }
    const containersBefore = await podContainers()
    const member = await etcd.leader()
    await member.kill()
    t.comment(`killed etcd member ${member.name} (it led the etcd cluster)`)
    // Writes and reads for a while, through the surviving hub.
    for (let i = 0; i < 20; i++) {
      const created = await apiRequest(api(follower), 'POST', CONFIGMAPS, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `ha-after-etcd-${i}` } })
      t.equal(created.status, 201, `write ${i} acknowledged`)
      await new Promise((r) => setTimeout(r, 250))
    }
    const stored = (await get(follower, CONFIGMAPS)).items.map((c: any) => c.metadata.name)
    t.equal(stored.filter((n: string) => n.startsWith('ha-after-etcd-')).length, 20, 'all of them read back')
    t.equal(await leaderTerm(), term, 'the same hub leads, in the same term')
    const d = await get(follower, DEPLOYMENT)
    t.equal(d.status.availableReplicas, REPLICAS, 'the Deployment stays available')
    t.equal(containersBefore.length, 2 * REPLICAS, 'an app and a sandbox container per pod')
    t.same(await podContainers(), containersBefore, 'the same containers run on both nodes')
    const nodes = (await get(follower, '/api/v1/nodes')).items
    t.ok(nodes.every(nodeReady), 'both Nodes stay Ready')
  })

  await t.test("Mosquitto restarted on the survivor's files: both agents reconnect and stay Ready", async (t) => {
    const survivorFiles = join(follower === hubA ? dirA : dirB, 'mosquitto')
    const passwd = readFileSync(join(survivorFiles, 'mosquitto-passwd'), 'utf8')
    for (const node of ['ha-n1', 'ha-n2']) t.match(passwd, new RegExp(`^${node}:`, 'm'), `the survivor's password file holds ${node}`)
    const old = mosquitto!
    const exited = new Promise((resolve) => old.once('exit', resolve))
    old.kill('SIGTERM')
    await exited
    await startMosquitto(survivorFiles)
    try {
      await until('both agents and the hub connected to the new broker', () => ['ha-n1', 'ha-n2'].every((node) => new RegExp(`New client connected .* as ${node} `).test(mosquittoLog)) && /as bramble\.hub:/.test(mosquittoLog), 60_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${diagnostics()}`, { cause: err })
    }
    t.notMatch(mosquittoLog, /not authori[sz]ed|bad username or password/i, 'nobody was refused')
    // Ready for a while after, through the surviving hub: heartbeats flow through the new broker.
    await new Promise((r) => setTimeout(r, 15_000))
    const nodes = (await get(follower, '/api/v1/nodes')).items
    t.equal(nodes.length, 2)
    t.ok(nodes.every(nodeReady), 'both Nodes Ready')
    const d = await get(follower, DEPLOYMENT)
    t.equal(d.status.availableReplicas, REPLICAS, 'the Deployment stays available')
  })

  await t.test('deleting a Node through the surviving hub locks its agent out of the broker', async (t) => {
    const agent = agents.find((a) => a.node === 'ha-n2')!
    const identity = JSON.parse(readFileSync(identityPath(join(agent.host.dir, 'agent')), 'utf8'))
    const creds = identity.mqtt as { url: string; username: string; password: string }
    const deleted = await apiRequest(api(follower), 'DELETE', '/api/v1/nodes/ha-n2')
    t.equal(deleted.status, 200, 'the Node is deleted')
    const survivorFiles = join(follower === hubA ? dirA : dirB, 'mosquitto')
    await until("the survivor's password file drops ha-n2", () => !/^ha-n2:/m.test(readFileSync(join(survivorFiles, 'mosquitto-passwd'), 'utf8')), 30_000)
    const attempt = () =>
      mqtt.connectAsync(creds.url, { username: creds.username, password: creds.password, clientId: 'ha-n2', reconnectPeriod: 0, protocolVersion: 4, connectTimeout: 10_000 }).then(
        (client) => (client.end(true), undefined),
        (err: Error) => err,
      )
    const refused = await until('the broker refuses the deleted node', () => attempt(), 30_000)
    t.match(refused.message, /not authori[sz]ed|bad username or password/i, `refused: ${refused.message}`)
    const rejoin = await apiRequest({ ...api(follower), token: '' }, 'POST', JOIN_PATH, { token: joinTokens['ha-n2'], nodeName: 'ha-n2', hostname: 'ha-n2' })
    t.equal(rejoin.status, 401, 'its join token cannot bring it back')
    const nodes = (await get(follower, '/api/v1/nodes')).items
    t.same(nodes.map((n: any) => n.metadata.name), ['ha-n1'], 'the other node stays')
  })
}

const unavailable = etcdMissing() ?? (await netnsUnavailable()) ?? ((await mosquittoAvailable()) ? undefined : 'mosquitto is not installed')
if (unavailable) t.plan(0, unavailable)
else await run()
