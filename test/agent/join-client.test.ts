// Joining from the agent's side, against a small HTTPS double of the hub's join endpoint that
// answers as src/api/join.ts says (the real endpoint is tested end to end in agent-hub.test.ts).

import t from 'tap'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { createServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CA_PATH, JOIN_PATH, type JoinResponse } from '../../src/api/join.js'
import { loadOrJoin } from '../../src/agent/agent-identity.js'
import { AgentIdentityMissingError, JoinCaMismatchError, JoinRefusedError } from '../../src/agent/errors.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { caHashOfPem, identityPath, joinHub, loadIdentity } from '../../src/agent/join-client.js'
import { silentLogger } from '../../src/lib/logger.js'
import { testTls } from '../helpers/tls.js'

const tls = testTls()
const hash = caHashOfPem(tls.ca)
const secret = '0123456789abcdef'
const tokenFor = (id: string, caHash = hash) => `K10${caHash}::${id}.${secret}`
const posts: any[] = []

const server = createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
  let body = ''
  req.on('data', (c) => (body += c))
  req.on('end', () => {
    if (req.method === 'GET' && req.url === CA_PATH) return void res.end(tls.ca)
    if (req.method === 'POST' && req.url === JOIN_PATH) {
      const r = JSON.parse(body)
      posts.push(r)
      const status = (code: number, reason: string, message: string) => {
        res.writeHead(code, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason, message, code }))
      }
      if (r.token === tokenFor('expird')) return status(401, 'Unauthorized', 'join token expired; make a new one with `bramble token create` on the hub')
      if (r.token === tokenFor('revokd')) return status(401, 'Unauthorized', 'join token revoked; make a new one with `bramble token create` on the hub')
      if (r.token !== tokenFor('good00')) return status(401, 'Unauthorized', 'unknown join token; make a new one with `bramble token create` on the hub')
      const answer: JoinResponse = { nodeName: r.nodeName, clusterId: 'c-1', apiServer: 'https://127.0.0.1:6443', ca: tls.ca, mqtt: { url: 'mqtts://127.0.0.1:8883', username: `node:${r.nodeName}`, password: 'pw', clientId: r.nodeName } }
      return void res.end(JSON.stringify(answer))
    }
    res.writeHead(404).end()
  })
})
await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
const hub = `127.0.0.1:${(server.address() as { port: number }).port}`
t.teardown(() => new Promise((r) => server.close(r)))
const root = await mkdtemp(join(tmpdir(), 'bramble-join-'))
t.teardown(() => rm(root, { recursive: true, force: true }))
const hostInfo = new SystemHostInfo()
const reserve = { cpuMillis: 0, memoryBytes: 0 }

t.test('a join stores the identity owner-only, and later starts reuse it without a token', async (t) => {
  const dataDir = join(root, 'a')
  const identity = await loadOrJoin({ dataDir, hub, token: tokenFor('good00'), nodeName: 'pi-one', reserve, heartbeatIntervalMs: 5000 }, hostInfo, silentLogger())
  t.equal(identity.nodeName, 'pi-one')
  t.equal(posts.at(-1).arch, process.arch === 'x64' ? 'amd64' : process.arch, 'the join says what the node is')
  t.equal((await stat(identityPath(dataDir))).mode & 0o777, 0o600)
  t.equal((await stat(join(dataDir, 'agent'))).mode & 0o777, 0o700)
  t.same(loadIdentity(dataDir), identity)
  const joins = posts.length
  const again = await loadOrJoin({ dataDir, reserve, heartbeatIntervalMs: 5000 }, hostInfo, silentLogger())
  t.same(again, identity)
  t.equal(posts.length, joins, 'no second join')
})

t.test('a hub whose CA does not match the token is refused before the token is sent', async (t) => {
  const joins = posts.length
  const err = await joinHub({ hub, token: tokenFor('good00', 'f'.repeat(64)), nodeName: 'pi-two', logger: silentLogger() }).catch((e) => e)
  t.ok(err instanceof JoinCaMismatchError)
  t.equal(err.code, 'BRAMBLE_AGENT_JOIN_CA_MISMATCH')
  t.match(err.message, /the hub's CA does not match the join token: refusing to join/)
  t.equal(posts.length, joins, 'the token never left the node')
})

t.test('expired, revoked and unknown tokens are refused with a sentence that says what to do', async (t) => {
  for (const [id, reason] of [['expird', 'expired'], ['revokd', 'revoked'], ['nope00', 'unknown-token']] as const) {
    const err = await joinHub({ hub, token: tokenFor(id), nodeName: 'pi-three', logger: silentLogger() }).catch((e) => e)
    t.ok(err instanceof JoinRefusedError, reason)
    t.equal(err.reason, reason)
    t.match(err.message, /bramble token create/)
  }
})

t.test('an invalid node name or a malformed token is refused before contacting the hub', async (t) => {
  const joins = posts.length
  const bad = await joinHub({ hub, token: tokenFor('good00'), nodeName: 'Pi_One', logger: silentLogger() }).catch((e) => e)
  t.equal(bad.reason, 'invalid-node-name')
  t.match(bad.message, /DNS-1123 label/)
  const malformed = await joinHub({ hub, token: 'abc', nodeName: 'pi-one', logger: silentLogger() }).catch((e) => e)
  t.equal(malformed.reason, 'malformed-token')
  t.equal(posts.length, joins)
})

t.test('without an identity and without a token, the agent says how to join', async (t) => {
  const err = await loadOrJoin({ dataDir: join(root, 'empty'), reserve, heartbeatIntervalMs: 5000 }, hostInfo, silentLogger()).catch((e) => e)
  t.ok(err instanceof AgentIdentityMissingError)
  t.match(err.message, /--hub HOST --token TOKEN/)
})
