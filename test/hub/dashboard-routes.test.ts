// The dashboard's routes on a real API server (real LMDB store, real tokens): the page, script
// and style are public and hold no cluster data; the node history needs a token, as every API
// read does, and answers with each node's samples as seconds before now.

import { get } from 'node:https'
import { Script } from 'node:vm'
import { gunzipSync } from 'node:zlib'
import t, { type Test } from 'tap'
import { dashboardRoutes, nodeHistoryResponse, NODE_HISTORY_PATH } from '../../src/hub/dashboard-routes.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { NodeHistory } from '../../src/hub/node-history.js'
import { systemClock } from '../../src/lib/clock.js'
import { FakeClock } from '../agent/fake-clock.js'
import { apiRequest, type ApiTarget } from '../helpers/api-client.js'
import { startApiServerFixture } from '../helpers/api-server-fixture.js'

const NODE = 'db-pi-7'

async function serve(t: Test) {
  const history = new NodeHistory()
  const heartbeats = new Heartbeats(history)
  heartbeats.record(NODE, { seq: 1, uptimeMs: 1000, cpu: 0.375, memory: 536_870_912, temperature: 51.25 }, systemClock.monotonic())
  return startApiServerFixture(t, ['default'], { extraRoutes: dashboardRoutes({ history, heartbeats, clock: systemClock }) })
}

t.test('the page, its script and its style are served without a token and hold no cluster data', async (t) => {
  const api = await serve(t)
  const page = await apiRequest(api.anonymous, 'GET', '/dashboard')
  t.equal(page.status, 200)
  t.match(page.headers['content-type'], /^text\/html/)
  t.match(page.text, /<form id="login-form"/, 'a login form')
  t.notMatch(page.text, NODE, 'no node name in the page')
  t.match(page.headers['content-security-policy'], /script-src 'self'/, 'no inline or foreign script may run')
  t.match(page.headers['content-security-policy'], /connect-src 'self'/, 'the page talks to this hub only')
  t.equal((await apiRequest(api.anonymous, 'GET', '/dashboard/')).status, 200, 'with a trailing slash too')

  const script = await apiRequest(api.anonymous, 'GET', '/dashboard/app.js')
  t.equal(script.status, 200)
  t.match(script.headers['content-type'], /^text\/javascript/)
  t.doesNotThrow(() => new Script(script.text), 'the script parses')
  t.notMatch(script.text, /innerHTML|insertAdjacentHTML|document\.write/, 'the script never writes markup')

  const style = await apiRequest(api.anonymous, 'GET', '/dashboard/app.css')
  t.equal(style.status, 200)
  t.match(style.headers['content-type'], /^text\/css/)
  const icon = await apiRequest(api.anonymous, 'GET', '/dashboard/icon.svg')
  t.equal(icon.status, 200)
  t.match(icon.headers['content-type'], /^image\/svg\+xml/)
  t.ok(page.text.length + script.text.length + style.text.length + icon.text.length < 64 * 1024, 'the whole dashboard is a few tens of KB')
})

t.test('the node history needs a valid token: none or a wrong one gets 401 and no data', async (t) => {
  const api = await serve(t)
  for (const [who, target] of [['no token', api.anonymous], ['a wrong token', { ...api.anonymous, token: 'not-a-token' }]] as const) {
    const res = await apiRequest(target, 'GET', NODE_HISTORY_PATH)
    t.equal(res.status, 401, who)
    t.equal(res.json?.kind, 'Status', `${who}: a Kubernetes Status`)
    t.notMatch(res.text, NODE, `${who}: no node name in the answer`)
  }
})

t.test('a read-only or admin token reads every node\'s samples', async (t) => {
  const api = await serve(t)
  for (const target of [api.viewer, api.admin]) {
    const res = await apiRequest(target, 'GET', NODE_HISTORY_PATH)
    t.equal(res.status, 200, `${target.token} reads it`)
    t.equal(res.json.windowSeconds, 3600)
    const node = res.json.nodes[NODE]
    t.equal(node.samples.length, 1)
    const [secondsAgo, cpu, memory, temperature] = node.samples[0]
    t.ok(secondsAgo >= 0 && secondsAgo < 60, `the sample is recent (${secondsAgo} s ago)`)
    t.same([cpu, memory, temperature], [0.375, 536_870_912, 51.3])
    t.ok(node.lastHeartbeatSecondsAgo >= 0 && node.lastHeartbeatSecondsAgo < 60)
  }
})

t.test('a browser that takes gzip gets the history gzipped', async (t) => {
  const history = new NodeHistory()
  const heartbeats = new Heartbeats(history)
  const now = Math.floor(systemClock.monotonic())
  // Half an hour of 5 s heartbeats: big enough to be worth compressing.
  for (let i = 0; i < 360; i++) heartbeats.record(NODE, { seq: i, uptimeMs: i * 5000, cpu: (i % 10) / 10, memory: 1e8 + i }, now - (360 - i) * 5000)
  const api = await startApiServerFixture(t, ['default'], { extraRoutes: dashboardRoutes({ history, heartbeats, clock: systemClock }) })
  const { encoding, body } = await rawGet(api.viewer, NODE_HISTORY_PATH, { 'Accept-Encoding': 'gzip' })
  t.equal(encoding, 'gzip')
  const decoded = JSON.parse(gunzipSync(body).toString('utf8'))
  t.equal(decoded.nodes[NODE].samples.length, 360)
  t.equal(decoded.nodes[NODE].samples[359][2], 1e8 + 359, 'newest last')
})

t.test('nodeHistoryResponse: times are seconds before the hub\'s now; a node seen but never heard beating has no samples', async (t) => {
  const clock = new FakeClock(1_000_000)
  const history = new NodeHistory({ windowMs: 60_000, capacity: 12 })
  const heartbeats = new Heartbeats(history)
  heartbeats.record('pi-a', { seq: 1, uptimeMs: 1, cpu: 0.5, memory: 100 }, 1_000_000)
  heartbeats.seen('pi-b', 1_000_000)
  clock.advance(12_345)
  t.same(nodeHistoryResponse({ history, heartbeats, clock }), {
    windowSeconds: 60,
    nodes: {
      'pi-a': { lastHeartbeatSecondsAgo: 12.3, samples: [[12, 0.5, 100, null]] },
      'pi-b': { lastHeartbeatSecondsAgo: null, samples: [] },
    },
  })
  clock.advance(60_000)
  t.same(nodeHistoryResponse({ history, heartbeats, clock }).nodes['pi-a'].samples, [], 'older than the window: gone')
})

function rawGet(target: ApiTarget, path: string, headers: Record<string, string>): Promise<{ encoding: string | undefined; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get(new URL(path, target.server), { ca: target.ca, headers: { Authorization: `Bearer ${target.token}`, ...headers } }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c) => chunks.push(c))
      res.on('end', () => resolve({ encoding: res.headers['content-encoding'], body: Buffer.concat(chunks) }))
      res.on('error', reject)
    }).on('error', reject)
  })
}
