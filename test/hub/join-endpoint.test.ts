// Joining over HTTPS: the CA for pinning, the join call with each of its refusals, and join-token
// creation. Real LMDB store, real API server, real token and credential files.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CA_PATH, JOIN_PATH, JOIN_TOKENS_PATH } from '../../src/api/join.js'
import { KINDS } from '../../src/api/kinds.js'
import { startApiServer, type RunningApiServer } from '../../src/hub/api-server.js'
import { joinRoutes } from '../../src/hub/join-endpoint.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { NodeCredentials } from '../../src/hub/node-credentials.js'
import { caHash } from '../../src/hub/pki.js'
import { Registry } from '../../src/hub/registry.js'
import type { Store } from '../../src/hub/store.js'
import { TokenStore } from '../../src/hub/tokens.js'
import type { Clock } from '../../src/lib/clock.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { testTls } from '../helpers/tls.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const tls = testTls()
/** Wall time the test moves forward to expire tokens. */
let skewMs = 0
const clock: Clock = { ...systemClock, now: () => Date.now() + skewMs }

let dir: string
let store: Store
let registry: Registry
let tokens: TokenStore
let credentials: NodeCredentials
let server: RunningApiServer
let anonymous: ApiTarget
let admin: ApiTarget
let viewer: ApiTarget

t.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'bramble-join-'))
  store = await openLmdbStore({ path: join(dir, 'store') })
  registry = new Registry(store, clock, silentLogger())
  tokens = TokenStore.open(dir, clock)
  credentials = await NodeCredentials.open(dir)
  const routes = joinRoutes({ registry, tokens, credentials, ca: tls.ca, clusterId: 'c-test', apiServer: () => `https://127.0.0.1:${server.port}`, brokerUrl: 'mqtts://127.0.0.1:8883', clock, logger: silentLogger(), hubVersion: '1.4.2' })
  server = await startApiServer({ store, logger: silentLogger(), clock, tls, authenticate: tokens.authenticate, host: '127.0.0.1', port: 0, extraRoutes: routes })
  anonymous = { server: `https://127.0.0.1:${server.port}`, ca: tls.ca }
  admin = { ...anonymous, token: tokens.issueUserToken('admin', 'admin') }
  viewer = { ...anonymous, token: tokens.issueUserToken('viewer', 'read-only') }
})

t.teardown(async () => {
  closeApiAgents()
  await server.close()
  await store.close()
  rmSync(dir, { recursive: true, force: true })
})

const newToken = (ttlMs?: number) => tokens.createJoinToken({ caHash: caHash(tls.ca), ttlMs }).token
const nodeExists = (name: string) => registry.get(NODE, '', name).then(() => true, () => false)

t.test('serves the CA to anyone, as PEM', async (t) => {
  const res = await apiRequest(anonymous, 'GET', CA_PATH)
  t.equal(res.status, 200)
  t.match(res.headers['content-type'], /^text\/plain/)
  t.equal(res.text, tls.ca)
})

t.test('a node joins with a valid token: Node registered with its labels, Ready=Unknown, credentials issued', async (t) => {
  const res = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName: 'pi-1', arch: 'arm64', os: 'linux', hostname: 'pi-1.local' })
  t.equal(res.status, 200, res.text)
  t.match(res.json, { nodeName: 'pi-1', clusterId: 'c-test', apiServer: `https://127.0.0.1:${server.port}`, ca: tls.ca, mqtt: { url: 'mqtts://127.0.0.1:8883', username: 'pi-1', clientId: 'pi-1' } })
  t.ok(credentials.verify('pi-1', res.json.mqtt.password), 'the password handed out is the one the broker accepts')
  t.equal(res.headers['cache-control'], 'no-store')
  const node = await registry.get(NODE, '', 'pi-1')
  t.same(node.metadata.labels, { 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': 'pi-1.local' })
  t.match((node.status as any).conditions, [{ type: 'Ready', status: 'Unknown' }])
})

t.test('agents of the hub\'s minor version and the one before join', async (t) => {
  for (const [nodeName, version] of [['v-same', '1.4.0'], ['v-previous', '1.3.7']]) {
    const res = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName, version })
    t.equal(res.status, 200, `${version}: ${res.text}`)
  }
})

t.test('the same machine joining again gets new credentials; the old ones stop working', async (t) => {
  const first = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName: 'pi-2', hostname: 'pi-2' })
  const again = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName: 'pi-2', hostname: 'pi-2', arch: 'arm' })
  t.equal(again.status, 200, again.text)
  t.notOk(credentials.verify('pi-2', first.json.mqtt.password))
  t.ok(credentials.verify('pi-2', again.json.mqtt.password))
  t.equal((await registry.get(NODE, '', 'pi-2')).metadata.labels?.['kubernetes.io/arch'], 'arm')
})

t.test('a name held by another machine is refused with 409, and its owner keeps its credentials', async (t) => {
  const owner = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName: 'pi-3', hostname: 'shed' })
  const before = await registry.get(NODE, '', 'pi-3')
  const res = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName: 'pi-3', hostname: 'garage' })
  t.equal(res.status, 409)
  t.match(res.json, { kind: 'Status', reason: 'AlreadyExists', message: /node name "pi-3" is already taken by the machine "shed"/ })
  t.ok(credentials.verify('pi-3', owner.json.mqtt.password))
  t.equal((await registry.get(NODE, '', 'pi-3')).metadata.resourceVersion, before.metadata.resourceVersion)
})

t.test('refusals change nothing and say why', async (t) => {
  const revoked = newToken()
  tokens.revokeJoinToken(/::([a-z0-9]{6})\./.exec(revoked)![1])
  const expiring = newToken(60_000)
  skewMs = 120_000
  t.teardown(() => void (skewMs = 0))
  const revision = await store.revision()
  const cases: Array<[string, unknown, number, RegExp]> = [
    ['an expired token', { token: expiring, nodeName: 'x-expired' }, 401, /^join token expired/],
    ['a revoked token', { token: revoked, nodeName: 'x-revoked' }, 401, /^join token revoked/],
    ['an unknown token', { token: `K10${caHash(tls.ca)}::abcdef.0123456789abcdef`, nodeName: 'x-unknown' }, 401, /^unknown join token/],
    ['a malformed token', { token: 'let-me-in', nodeName: 'x-malformed' }, 401, /^malformed join token/],
    ['a node name that is not a DNS-1123 label', { token: newToken(), nodeName: 'Bad_Name' }, 422, /Bad_Name/],
    ['a body without a node name', { token: newToken() }, 400, /nodeName: Required value/],
    ['a body without a token', { nodeName: 'x-notoken' }, 400, /token: Required value/],
    ['a body that is not JSON', '{"token":', 400, /not valid JSON/],
    ['an agent newer than the hub', { token: newToken(), nodeName: 'x-newer', version: '1.5.0' }, 400, /^agent 1\.5\.0 is newer than this hub \(1\.4\.2\), which serves agents 1\.3 and 1\.4: upgrade the hub first$/],
    ['an agent two minor versions older', { token: newToken(), nodeName: 'x-older', version: '1.2.0' }, 400, /^agent 1\.2\.0 is too old for this hub/],
    ['a version that is not one', { token: newToken(), nodeName: 'x-badversion', version: 'latest' }, 400, /version: must be a version, MAJOR\.MINOR\.PATCH/],
  ]
  for (const [what, body, status, message] of cases) {
    const res = await apiRequest(anonymous, 'POST', JOIN_PATH, body)
    t.equal(res.status, status, what)
    t.match(res.json, { kind: 'Status', message }, what)
  }
  const invalid = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: newToken(), nodeName: 'Bad_Name' })
  t.match(invalid.json.details.causes, [{ field: 'nodeName' }], 'the bad field is named')
  t.equal(await store.revision(), revision, 'no write happened')
  for (const name of ['x-expired', 'x-revoked', 'x-unknown', 'x-malformed', 'x-notoken', 'x-newer', 'x-older', 'x-badversion']) {
    t.notOk(await nodeExists(name), `${name}: no Node`)
    t.notOk(credentials.has(name), `${name}: no credentials`)
  }
})

t.test('admins create join tokens with a lifetime; others may not', async (t) => {
  const res = await apiRequest(admin, 'POST', JOIN_TOKENS_PATH, { ttlSeconds: 3600 })
  t.equal(res.status, 201, res.text)
  t.match(res.json.token, /^K10[0-9a-f]{64}::[a-z0-9]{6}\.[a-z0-9]{16}$/)
  const expiresIn = Date.parse(res.json.expiresAt) - Date.now()
  t.ok(expiresIn > 3500_000 && expiresIn <= 3600_000, 'expires in an hour')
  const joined = await apiRequest(anonymous, 'POST', JOIN_PATH, { token: res.json.token, nodeName: 'pi-4' })
  t.equal(joined.status, 200, 'the new token joins a node')

  t.equal((await apiRequest(viewer, 'POST', JOIN_TOKENS_PATH, {})).status, 403)
  t.equal((await apiRequest(anonymous, 'POST', JOIN_TOKENS_PATH, {})).status, 401)
  const bad = await apiRequest(admin, 'POST', JOIN_TOKENS_PATH, { ttlSeconds: -5 })
  t.equal(bad.status, 400)
  t.match(bad.json.message, /ttlSeconds/)
})
