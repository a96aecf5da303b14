// Issue 6's attacker suite, end to end: a real `bramble hub` process with its embedded broker, two
// nodes joined through the real join endpoint, and one of them ("mallory") turning on the other
// ("victim") with its own valid credentials. Each attempt must be refused and logged by the hub,
// and nothing in the store may change: every object of every kind, with its resourceVersion, is
// the same before and after. The tests assert what was delivered or written, never how the
// broker says no (it may drop a message, refuse a subscription or disconnect).
//
// Then the revocation: `bramble delete node mallory` closes its live MQTT session at once,
// its password stops working, and joining the same name again needs a new join token.

import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import t, { type Test } from 'tap'
import { JOIN_PATH, JOIN_TOKENS_PATH, type JoinResponse } from '../../src/api/join.js'
import { KINDS } from '../../src/api/kinds.js'
import { CLUSTER_ROOT, clusterTopic, downTopic, encodeMessage, NODES_ROOT, nodeDownFilter, upTopic } from '../../src/api/protocol.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { runCli, until } from '../helpers/e2e.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

/** Long enough for the broker and the hub to deliver or write what they were going to; a deadline, not a measurement. */
const SETTLE_MS = 1_000
const settle = () => new Promise((r) => setTimeout(r, SETTLE_MS))

const SECRET_VALUE = 'victim-secret-value-7f3a'
/** Every forged payload carries this, so a forgery is recognisable wherever it lands. */
const FORGED = 'mallory-forged'

interface Received {
  topic: string
  payload: string
}

interface Session {
  client: MqttClient
  received: Received[]
  end(): Promise<void>
}

async function connect(hub: { brokerUrl: string; ca: string }, username: string, password: string, clientId = username): Promise<Session> {
  const client = await mqtt.connectAsync(hub.brokerUrl, { username, password, clientId, ca: [hub.ca], rejectUnauthorized: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, clean: true })
  const received: Received[] = []
  client.on('message', (topic, payload) => received.push({ topic, payload: payload.toString('utf8') }))
  client.on('error', () => {}) // a refusal may close the connection; what matters is what arrived
  return { client, received, end: () => client.endAsync(true).catch(() => {}) }
}

/** Whether connecting succeeds at all (a refused CONNECT, a closed socket and a timeout all count as no). */
function canConnect(hub: { brokerUrl: string; ca: string }, username: string, password: string, clientId = username): Promise<boolean> {
  const client = mqtt.connect(hub.brokerUrl, { username, password, clientId, ca: [hub.ca], rejectUnauthorized: true, protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 5_000, clean: true })
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 6_000)
    const done = (ok: boolean) => {
      clearTimeout(timer)
      client.end(true)
      resolve(ok)
    }
    client.once('connect', () => done(true))
    client.once('error', () => done(false))
    client.once('close', () => done(false))
  })
}

/** Every object of every kind, as `kind ns/name resourceVersion`, sorted. */
async function snapshot(admin: ApiTarget): Promise<string[]> {
  const rows: string[] = []
  for (const k of KINDS) {
    const base = k.group === '' ? `/api/${k.version}` : `/apis/${k.group}/${k.version}`
    const r = await apiRequest(admin, 'GET', `${base}/${k.plural}`)
    if (r.status !== 200) throw new Error(`listing ${k.plural} answered ${r.status}: ${r.text}`)
    for (const o of r.json.items) rows.push(`${k.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name} ${o.metadata.resourceVersion}`)
  }
  return rows.sort()
}

/** A snapshot that held still over a settle period: the hub has finished reacting to the setup. */
async function quietSnapshot(admin: ApiTarget): Promise<string[]> {
  let last = await snapshot(admin)
  return until('the store to stop changing', async () => {
    await settle()
    const next = await snapshot(admin)
    const same = JSON.stringify(next) === JSON.stringify(last)
    last = next
    return same && next
  }, 30_000)
}

function logLines(output: string): Array<Record<string, any>> {
  return output.split('\n').flatMap((line) => {
    try {
      return [JSON.parse(line)]
    } catch {
      return []
    }
  })
}

async function joinAs(api: ApiTarget, token: string, nodeName: string) {
  return apiRequest({ server: api.server, ca: api.ca }, 'POST', JOIN_PATH, { token, nodeName, hostname: nodeName, arch: 'arm64', os: 'linux' })
}

function tokenId(token: string): string {
  return token.split('::')[1]!.split('.')[0]!
}

async function run(t: Test, hub: HubProcess, output: () => string) {
  const admin: ApiTarget = { server: hub.server, ca: hub.ca, token: hub.token }
  const readOnly: ApiTarget = { server: hub.server, ca: hub.ca, token: readFileSync(join(hub.dataDir, 'read-only-token'), 'utf8').trim() }
  const joinToken = readFileSync(join(hub.dataDir, 'join-token'), 'utf8').trim()

  const victimJoin = await joinAs(admin, joinToken, 'victim')
  const malloryJoin = await joinAs(admin, joinToken, 'mallory')
  t.equal(victimJoin.status, 200, `victim joins: ${victimJoin.text}`)
  t.equal(malloryJoin.status, 200, `mallory joins: ${malloryJoin.text}`)
  const victim: JoinResponse = victimJoin.json
  const mallory: JoinResponse = malloryJoin.json
  const broker = { brokerUrl: victim.mqtt.url, ca: victim.ca }

  // The victim's Secret, and its pod (bound to it) that uses it.
  const secret = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'victim-secret' }, stringData: { password: SECRET_VALUE } })
  t.equal(secret.status, 201, `secret created: ${secret.text}`)
  const pod = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'victim-pod' },
    spec: {
      nodeName: 'victim',
      containers: [{ name: 'app', image: 'busybox', env: [{ name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 'victim-secret', key: 'password' } } }] }],
    },
  })
  t.equal(pod.status, 201, `victim's pod created: ${pod.text}`)
  const podUid: string = pod.json.metadata.uid

  // Tokens to replay: one that expires, one that is revoked.
  const expiring = await apiRequest(admin, 'POST', JOIN_TOKENS_PATH, { ttlSeconds: 1 })
  t.equal(expiring.status, 201, 'a 1-second join token is made')
  const revokable = await apiRequest(admin, 'POST', JOIN_TOKENS_PATH, {})
  t.equal(revokable.status, 201, 'a join token to revoke is made')
  const revoked = await runCli(['token', 'revoke', tokenId(revokable.json.token), '--data-dir', hub.dataDir])
  t.equal(revoked.code, 0, `bramble token revoke: ${revoked.stderr}`)

  // The victim, a well-behaved node: listens to its own desired state and the cluster topics.
  const connectVictim = async () => {
    const s = await connect(broker, victim.mqtt.username, victim.mqtt.password)
    await s.client.subscribeAsync([nodeDownFilter('victim'), `${CLUSTER_ROOT}/#`], { qos: 1 })
    return s
  }
  let victimSession = await connectVictim()
  t.teardown(() => victimSession.end())
  const desiredForVictim = () => victimSession.received.filter((m) => m.topic === downTopic('victim', 'desired') && m.payload.includes('victim-pod')).length
  await victimSession.client.publishAsync(upTopic('victim', 'sync'), encodeMessage({ revision: 0 }), { qos: 1 })
  await until("the victim's desired state (its pod) to reach the victim", () => desiredForVictim() > 0, 20_000)

  const before = await quietSnapshot(admin)
  t.ok(before.some((row) => row.startsWith('Secret default/victim-secret ')), 'the snapshot holds the Secret')
  const logStart = output().length

  await t.test("mallory cannot read the victim's desired state or any other node's topics", async (t) => {
    // Mallory's own desired state: its node, none of the victim's pods or Secrets (NodeRestriction).
    const own = await connect(broker, mallory.mqtt.username, mallory.mqtt.password, 'mallory')
    await own.client.subscribeAsync(nodeDownFilter('mallory'), { qos: 1 })
    await own.client.publishAsync(upTopic('mallory', 'sync'), encodeMessage({ revision: 0 }), { qos: 1 })
    await until("mallory's own desired state", () => own.received.some((m) => m.topic === downTopic('mallory', 'desired')), 20_000)
    await own.end()
    t.notOk(own.received.some((m) => m.payload.includes(SECRET_VALUE) || m.payload.includes('victim-secret') || m.payload.includes('victim-pod')), "mallory's own desired state holds nothing of the victim's")
    // Then, on one connection (a second with the same client id would replace it), every filter it should not have.
    const spy = await connect(broker, mallory.mqtt.username, mallory.mqtt.password)
    const filters = ['#', 'bramble/#', 'bramble/v1/#', `${NODES_ROOT}/+/down/#`, `${NODES_ROOT}/+/up/#`, `${NODES_ROOT}/victim/#`, nodeDownFilter('victim'), '+/+/+/+/+', `${NODES_ROOT}/+/+/+`]
    for (const filter of filters) await spy.client.subscribeAsync(filter, { qos: 1 }).catch(() => {})
    // The victim asks again: the hub sends its whole desired state (its pod and what the pod uses) while mallory listens.
    const sent = desiredForVictim()
    await victimSession.client.publishAsync(upTopic('victim', 'sync'), encodeMessage({ revision: 0 }), { qos: 1 })
    await until('the hub to send the victim its desired state again', () => desiredForVictim() > sent, 20_000)
    await settle()
    await spy.end()
    const leaked = spy.received.filter((m) => !m.topic.startsWith(`${NODES_ROOT}/mallory/down/`) && !m.topic.startsWith(`${CLUSTER_ROOT}/`))
    t.same(leaked.map((m) => m.topic), [], 'mallory received nothing outside its own down topics and the cluster topics')
    t.notOk(spy.received.some((m) => m.payload.includes(SECRET_VALUE) || m.payload.includes('victim-pod') || m.payload.includes(podUid)), "nothing mallory received names the victim's pod or holds its Secret")
  })

  await t.test("mallory's forged messages change nothing and reach no one", async (t) => {
    const now = Date.now()
    const forgedPodStatus = { namespace: 'default', name: 'victim-pod', uid: podUid, status: { phase: 'Failed', reason: FORGED, message: FORGED } }
    const forgeries: Array<[string, unknown, boolean?]> = [
      [upTopic('victim', 'node-status'), { status: { conditions: [{ type: 'Ready', status: 'False', reason: FORGED, message: FORGED }] } }],
      [upTopic('victim', 'pod-status'), forgedPodStatus],
      [upTopic('victim', 'presence'), { online: false, at: now, note: FORGED }, true],
      [upTopic('victim', 'events'), { events: [{ reason: FORGED, message: FORGED, type: 'Warning', involvedObject: { kind: 'Node', name: 'victim' } }] }],
      // On its own topics, about a pod that is not bound to it: the broker passes these; the hub must refuse them.
      [upTopic('mallory', 'pod-status'), forgedPodStatus],
      [upTopic('mallory', 'events'), { events: [{ reason: FORGED, message: FORGED, type: 'Warning', involvedObject: { kind: 'Pod', namespace: 'default', name: 'victim-pod', uid: podUid } }] }],
      // Down and cluster topics are the hub's alone.
      [downTopic('victim', 'desired'), { revision: 999_999, since: 0, full: true, upserts: [], deletes: [], note: FORGED }],
      [clusterTopic('mesh'), { note: FORGED }],
      [clusterTopic('services'), { note: FORGED }],
    ]
    // One connection per forgery: a broker may close the connection at the first refused one.
    for (const [topic, message, retain] of forgeries) {
      const forger = await connect(broker, mallory.mqtt.username, mallory.mqtt.password)
      // Acknowledged, or the connection closed under it: either way the broker has had it.
      const gone = new Promise<void>((resolve) => forger.client.once('close', () => resolve()))
      await Promise.race([forger.client.publishAsync(topic, encodeMessage(message), { qos: 1, retain: retain ?? false }).catch(() => {}), gone, new Promise((r) => setTimeout(r, 3_000))])
      await forger.end()
    }
    await settle()
    t.notOk(victimSession.received.some((m) => m.payload.includes(FORGED)), 'the victim received none of the forgeries')
    // A retained forgery would greet the next subscriber: the victim's next session sees none.
    await victimSession.end()
    victimSession = await connectVictim()
    await settle()
    t.notOk(victimSession.received.some((m) => m.payload.includes(FORGED)), 'no forgery was retained for later subscribers')
  })

  await t.test("mallory cannot connect as the victim or take over the victim's session", async (t) => {
    t.notOk(await canConnect(broker, 'victim', mallory.mqtt.password), "the victim's name with mallory's password is refused")
    t.notOk(await canConnect(broker, mallory.mqtt.username, mallory.mqtt.password, 'victim'), "mallory's credentials with the victim's client id are refused")
    const sent = desiredForVictim()
    await victimSession.client.publishAsync(upTopic('victim', 'sync'), encodeMessage({ revision: 0 }), { qos: 1 })
    await until("the victim's own session to still receive its desired state", () => desiredForVictim() > sent, 20_000)
  })

  await t.test('replayed join tokens are refused', async (t) => {
    await until('the 1-second token to expire', () => Date.parse(expiring.json.expiresAt) < Date.now() - 200, 10_000)
    const expired = await joinAs(admin, expiring.json.token, 'replay-expired')
    t.equal(expired.status, 401, 'an expired join token is refused')
    t.match(expired.json?.message, /expired/, 'the answer says the token expired')
    const replayRevoked = await joinAs(admin, revokable.json.token, 'replay-revoked')
    t.equal(replayRevoked.status, 401, 'a revoked join token is refused')
    t.match(replayRevoked.json?.message, /revoked/, 'the answer says the token was revoked')
  })

  await t.test('the API refuses callers without a valid token and read-only callers that write', async (t) => {
    const anonymous: ApiTarget = { server: hub.server, ca: hub.ca }
    const nodePassword: ApiTarget = { server: hub.server, ca: hub.ca, token: mallory.mqtt.password }
    const bogus = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: FORGED }, data: { a: FORGED } }
    t.equal((await apiRequest(anonymous, 'GET', '/api/v1/namespaces/default/secrets/victim-secret')).status, 401, 'no token: reading a Secret is 401')
    t.equal((await apiRequest(anonymous, 'POST', '/api/v1/namespaces/default/configmaps', bogus)).status, 401, 'no token: a write is 401')
    t.equal((await apiRequest(nodePassword, 'GET', '/api/v1/namespaces/default/secrets/victim-secret')).status, 401, "a node's MQTT password as a bearer token is 401")
    const statusWrite = await apiRequest(nodePassword, 'PATCH', '/api/v1/nodes/victim/status', { status: { conditions: [{ type: 'Ready', status: 'False', reason: FORGED }] } }, { 'Content-Type': 'application/merge-patch+json' })
    t.equal(statusWrite.status, 401, "a node's MQTT password cannot write a Node's status through the API")
    t.equal((await apiRequest(readOnly, 'GET', '/api/v1/namespaces/default/configmaps')).status, 200, 'the read-only token reads')
    t.equal((await apiRequest(readOnly, 'POST', '/api/v1/namespaces/default/configmaps', bogus)).status, 403, 'the read-only token cannot create')
    t.equal((await apiRequest(readOnly, 'DELETE', '/api/v1/namespaces/default/secrets/victim-secret')).status, 403, 'the read-only token cannot delete')
    t.equal((await apiRequest(readOnly, 'POST', JOIN_TOKENS_PATH, {})).status, 403, 'the read-only token cannot make join tokens')
  })

  await t.test('nothing in the store changed and every attempt is in the hub log', async (t) => {
    await settle()
    t.same(await snapshot(admin), before, 'every object of every kind has the resourceVersion it had before the attacks')
    const lines = logLines(output().slice(logStart))
    const logged = (what: string, match: (l: Record<string, any>) => boolean) => t.ok(lines.some(match), `logged: ${what}`)
    logged('the refused subscriptions', (l) => /refused an MQTT subscription/.test(l.msg) && l.who === 'node mallory' && l.topic === '#')
    logged("the subscription to the victim's topics", (l) => /refused an MQTT subscription/.test(l.msg) && l.topic === `${NODES_ROOT}/victim/#`)
    logged("the publish to the victim's node status", (l) => /refused an MQTT publish/.test(l.msg) && l.who === 'node mallory' && l.topic === upTopic('victim', 'node-status'))
    logged('the publish to a cluster topic', (l) => /refused an MQTT publish/.test(l.msg) && l.topic === clusterTopic('mesh'))
    logged("the pod status for the victim's pod", (l) => /pod not bound to this node/.test(l.msg) && l.node === 'mallory')
    logged("the event about the victim's pod", (l) => /event about a pod not bound/.test(l.msg) && l.node === 'mallory')
    logged("connecting with the victim's name", (l) => /refused an MQTT connection/.test(l.msg) && l.username === 'victim')
    logged("connecting with the victim's client id", (l) => /refused an MQTT connection/.test(l.msg) && l.username === 'mallory' && l.clientId === 'victim')
    logged('the expired join token', (l) => l.msg === 'refused a join' && l.reason === 'expired')
    logged('the revoked join token', (l) => l.msg === 'refused a join' && l.reason === 'revoked')
    logged('the API calls without a valid token', (l) => /refused an API request: no valid bearer token/.test(l.msg) && l.reason === 'no bearer token')
    logged("the node's password as a bearer token", (l) => /refused an API request: no valid bearer token/.test(l.msg) && l.reason === 'unknown token')
    logged('the read-only writes', (l) => /refused an API request: verb not allowed/.test(l.msg) && l.user === 'read-only')
  })

  await t.test("deleting a Node revokes its credentials at once, and re-joining needs a new join token", async (t) => {
    const live = await connect(broker, mallory.mqtt.username, mallory.mqtt.password)
    const closed = new Promise<void>((resolve) => live.client.once('close', () => resolve()))
    const deleted = await runCli(['delete', 'node', 'mallory'], { kubeconfig: hub.kubeconfig })
    t.equal(deleted.code, 0, `bramble delete node: ${deleted.stderr}`)
    await until("mallory's live session to be closed", () => closed.then(() => true), 10_000)
    t.notOk(await canConnect(broker, mallory.mqtt.username, mallory.mqtt.password), "mallory's password no longer connects")
    const again = await joinAs(admin, joinToken, 'mallory')
    t.equal(again.status, 401, `the join token mallory joined with does not bring it back: ${again.text}`)
    t.match(again.json?.message, /new join token/, 'the answer says a new join token is needed')
    const fresh = await apiRequest(admin, 'POST', JOIN_TOKENS_PATH, {})
    const rejoined = await joinAs(admin, fresh.json.token, 'mallory')
    t.equal(rejoined.status, 200, `a new join token brings it back: ${rejoined.text}`)
    t.ok(await canConnect(broker, 'mallory', rejoined.json.mqtt.password), 'with new credentials')
    t.notOk(await canConnect(broker, 'mallory', mallory.mqtt.password), 'the old ones stay dead')
    t.ok(logLines(output()).some((l) => /disconnecting a node whose credentials were revoked/.test(l.msg) && l.node === 'mallory'), 'the disconnection is logged')
  })
}

t.test('a node with valid credentials plays the attacker against a real hub', async (t) => {
  const hub = await startHubProcess({ args: ['--log-level', 'info', '--node-grace-period', '10m'] })
  let output = ''
  hub.child.stdout!.on('data', (d) => (output += d))
  hub.child.stderr!.on('data', (d) => (output += d))
  t.teardown(async () => {
    closeApiAgents()
    await hub.cleanup()
  })
  await run(t, hub, () => output)
})
