// `bramble get events` and `bramble describe` against a real API server (real LMDB): events come
// oldest first by the last time they were seen, a field selector on involvedObject narrows them,
// and describe ends with the object's own Events, aged and counted as kubectl prints them.

import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { openClientContext, type ClientContext } from '../../src/cli/client-context.js'
import { runDescribe } from '../../src/cli/describe-command.js'
import { runGet } from '../../src/cli/get-command.js'
import { writeKubeconfig } from '../../src/hub/kubeconfig.js'
import { apiRequest } from '../helpers/api-client.js'
import { startApiServerFixture } from '../helpers/api-server-fixture.js'

const dir = mkdtempSync(join(tmpdir(), 'mt-events-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
const kubeconfig = join(dir, 'kubeconfig.yaml')
let api: Awaited<ReturnType<typeof startApiServerFixture>>

const ago = (seconds: number) => new Date(Math.floor(Date.now() / 1000 - seconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z')

async function event(name: string, pod: string, reason: string, firstAgo: number, lastAgo: number, count = 1) {
  const r = await apiRequest(api.admin, 'POST', '/api/v1/namespaces/default/events', {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: 'default' },
    involvedObject: { kind: 'Pod', namespace: 'default', name: pod, apiVersion: 'v1' },
    reason,
    message: `${reason} of ${pod}`,
    type: reason === 'BackOff' ? 'Warning' : 'Normal',
    source: { component: 'bramble-agent' },
    firstTimestamp: ago(firstAgo),
    lastTimestamp: ago(lastAgo),
    count,
  })
  if (r.status !== 201) throw new Error(`event ${name}: ${r.status} ${r.text}`)
}

function capture(t: { teardown(fn: () => unknown): void }): { ctx: ClientContext; out: () => string } {
  let out = ''
  const ctx = openClientContext({ kubeconfig }, {}, { out: (s) => (out += s), err: (s) => (out += s) })
  t.teardown(() => ctx.client.close())
  return { ctx, out: () => out }
}

t.before(async () => {
  api = await startApiServerFixture(t)
  writeKubeconfig(kubeconfig, { advertise: '127.0.0.1', port: api.server.port, caCertPem: api.admin.ca, token: api.admin.token! })
  const web = await apiRequest(api.admin, 'POST', '/api/v1/namespaces/default/pods', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web' }, spec: { containers: [{ name: 'app', image: 'busybox' }] } })
  if (web.status !== 201) throw new Error(`pod web: ${web.status} ${web.text}`)
  // Names in the opposite order of their times: the store lists by name, the client sorts by time.
  await event('a-latest', 'web', 'BackOff', 600, 5, 4)
  await event('b-middle', 'web', 'Started', 300, 300)
  await event('c-oldest', 'web', 'Scheduled', 900, 900)
  await event('d-other', 'db', 'Pulled', 100, 100)
})

t.test('get events lists them oldest first by last time seen, a repeated one with its count', async (t) => {
  const { ctx, out } = capture(t)
  await runGet(ctx, ['events'], {})
  const lines = out().trimEnd().split('\n')
  t.match(lines[0], /^LAST SEEN\s+TYPE\s+REASON\s+OBJECT\s+MESSAGE$/)
  t.same(
    lines.slice(1).map((l) => l.split(/\s{3,}/)[2]),
    ['Scheduled', 'Started', 'Pulled', 'BackOff'],
  )
  t.match(lines[4], /^\d+s \(x4 over 10m\)\s+Warning\s+BackOff\s+pod\/web\s+BackOff of web$/)
})

t.test('--field-selector involvedObject.name narrows them to one object, still in time order', async (t) => {
  const { ctx, out } = capture(t)
  await runGet(ctx, ['events'], { fieldSelector: 'involvedObject.name=web' })
  const reasons = out().trimEnd().split('\n').slice(1).map((l) => l.split(/\s{3,}/)[2])
  t.same(reasons, ['Scheduled', 'Started', 'BackOff'])
})

t.test('-o json lists the events in the same order', async (t) => {
  const { ctx, out } = capture(t)
  await runGet(ctx, ['events'], { output: 'json' })
  t.same(JSON.parse(out()).items.map((e: any) => e.metadata.name), ['c-oldest', 'b-middle', 'd-other', 'a-latest'])
})

t.test("describe ends with the object's own events, oldest first", async (t) => {
  const { ctx, out } = capture(t)
  await runDescribe(ctx, ['pod', 'web'], {})
  const text = out()
  t.match(text, /^Name:\s+web$/m)
  const section = text.slice(text.indexOf('Events:'))
  t.match(section, /^Events:\n {2}Type\s+Reason\s+Age\s+From\s+Message\n/)
  const rows = section.split('\n').filter((l) => /^ {2}(Normal|Warning)/.test(l))
  t.same(rows.map((l) => l.trim().split(/\s+/)[1]), ['Scheduled', 'Started', 'BackOff'])
  t.match(rows[0], /15m\s+bramble-agent\s+Scheduled of web$/)
  t.match(rows[2], /\d+s \(x4 over 10m\)\s+bramble-agent\s+BackOff of web$/)
  t.notMatch(section, /db/, "another pod's event is not shown")
})
