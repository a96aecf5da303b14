// bench/api at its smallest, against a real `bramble hub` process: every figure is printed, and the
// objects it counts were really created, updated, listed and watched (read back here over HTTPS).
// Speed is the benchmark's to print, not this test's to assert.

import t from 'tap'
import { apiBenchOptionsFromEnv, formatApiBench, runApiBench } from '../../bench/api.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess } from '../helpers/hub-process.js'

t.test('two clients for a second each: creates, updates, lists and watch events through HTTPS and client-node', async (t) => {
  const hub = await startHubProcess()
  t.teardown(async () => {
    closeApiAgents()
    await hub.cleanup()
  })
  const options = { seconds: 1, clients: 2, listSize: 10, watchers: 2, watchEvents: 50 }
  const r = await runApiBench(hub, options)
  const report = formatApiBench(r)
  t.comment(report)

  for (const label of ['baseline GET /version/s', 'baseline store creates/s', 'plain HTTPS  creates/s:', 'plain HTTPS  updates/s:', 'plain HTTPS  lists/s:', 'plain HTTPS  watch events/s:']) {
    t.match(report, new RegExp(`${label.replace(/[/()]/g, '\\$&')}[^\\n]*:\\s+\\d+`), `the report has "${label}" with a figure`)
  }
  for (const op of ['creates', 'updates', 'lists', 'watch events']) t.match(report, new RegExp(`client-node  ${op}/s:\\s+\\d+  ratio to plain HTTPS: \\d+\\.\\d\\d`), `client-node ${op} with its ratio`)
  t.match(report, /ratio to store creates: \d+\.\d\d/)
  t.match(report, /ratio to GET \/version: \d+\.\d\d/)

  const target = { server: hub.server, ca: hub.ca, token: hub.token }
  for (const [name, figures] of [['plain HTTPS', r.plain], ['client-node', r.clientNode]] as const) {
    t.ok(figures.creates.count > 0 && figures.updates.count > 0 && figures.lists.count > 0, `${name}: operations counted`)
    const created = await apiRequest(target, 'GET', `/api/v1/namespaces/${figures.namespace}/configmaps`)
    t.equal(created.json.items.length, figures.creates.count, `${name}: every acknowledged create is stored`)
    const updated = created.json.items.filter((cm: any) => cm.data.key !== 'v0')
    t.ok(updated.length >= Math.min(figures.updates.count, figures.creates.count), `${name}: updated ConfigMaps carry their new value`)
    const perRound = options.watchers * options.watchEvents
    t.ok(figures.watchEvents.count >= perRound && figures.watchEvents.count % perRound === 0, `${name}: in each round every watcher received every event`)
    const watched = await apiRequest(target, 'GET', `/api/v1/namespaces/${figures.watchNamespace}/configmaps`)
    t.equal(watched.json.items.length, options.watchEvents, `${name}: the watched ConfigMaps exist`)
  }
  const listed = await apiRequest(target, 'GET', `/api/v1/namespaces/${r.listNamespace}/configmaps`)
  t.equal(listed.json.items.length, options.listSize, 'the listed namespace holds what each list counted')
})

t.test('env knobs: defaults, and a bad value is refused naming its variable', async (t) => {
  const saved = { ...process.env }
  t.teardown(() => {
    for (const k of Object.keys(process.env)) if (k.startsWith('BENCH_') && !(k in saved)) delete process.env[k]
    Object.assign(process.env, saved)
  })
  for (const k of ['BENCH_SECONDS', 'BENCH_CLIENTS', 'BENCH_LIST_SIZE', 'BENCH_WATCHERS', 'BENCH_WATCH_EVENTS']) delete process.env[k]
  t.same(apiBenchOptionsFromEnv(), { seconds: 5, clients: 4, listSize: 100, watchers: 4, watchEvents: 5000 })
  process.env.BENCH_CLIENTS = '0'
  t.throws(() => apiBenchOptionsFromEnv(), /BENCH_CLIENTS must be a whole number from 1 to 64, got "0"/)
  process.env.BENCH_CLIENTS = '2'
  process.env.BENCH_WATCH_EVENTS = '20000'
  t.throws(() => apiBenchOptionsFromEnv(), /BENCH_WATCH_EVENTS must be a whole number from 1 to 9000/)
})
