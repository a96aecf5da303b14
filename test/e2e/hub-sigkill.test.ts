// The hub killed with SIGKILL in the middle of a stream of concurrent API writes loses none it
// acknowledged, opens its store without repair, and watches resume from their revision.

import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess } from '../helpers/hub-process.js'

const WRITERS = 8
const MAX_WRITES = 4000

t.teardown(() => closeApiAgents())

t.test('every acknowledged create survives a SIGKILL of the hub', async (t) => {
  const hub = await startHubProcess()
  t.teardown(() => hub.cleanup())
  const acked: string[] = []
  let failed = 0
  let killed = false
  const writer = async (w: number) => {
    for (let i = 0; !killed && i < MAX_WRITES / WRITERS; i++) {
      const name = `w${w}-${i}`
      try {
        const res = await apiRequest(hub, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name }, data: { i: String(i) } })
        if (res.status === 201) acked.push(name)
        else failed++
      } catch {
        return // the connection died with the hub
      }
    }
  }
  const writing = Promise.all(Array.from({ length: WRITERS }, (_, w) => writer(w)))
  // Kill it mid-stream: once a good number of writes were acknowledged.
  while (acked.length < 300) await new Promise((r) => setTimeout(r, 5))
  killed = true
  hub.child.kill('SIGKILL')
  await writing
  await hub.stop()
  t.equal(failed, 0, 'no write was refused before the kill')
  t.ok(acked.length >= 300, `${acked.length} writes acknowledged before the kill`)

  closeApiAgents()
  const again = await startHubProcess({ dataDir: hub.dataDir })
  t.teardown(() => again.cleanup())
  const list = await apiRequest(again, 'GET', '/api/v1/namespaces/default/configmaps')
  t.equal(list.status, 200)
  const stored = new Set(list.json.items.map((i: any) => i.metadata.name))
  const lost = acked.filter((n) => !stored.has(n))
  t.same(lost, [], 'no acknowledged write is missing')

  // A watch from the revision before the kill replays what came after it.
  const first = list.json.items.map((i: any) => Number(i.metadata.resourceVersion)).sort((a: number, b: number) => a - b)[0]
  const watch = await apiRequest(again, 'GET', `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${first}&timeoutSeconds=1`)
  const events = watch.text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
  t.equal(events.length, stored.size - 1, 'the watch resumes from its revision with every later write')
  t.ok(events.every((e) => e.type === 'ADDED'))
})
