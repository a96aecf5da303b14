// The hub killed with SIGKILL while several clients create, update and delete objects at once:
// after a restart every acknowledged write is there (an unacknowledged one in flight may or may not
// be), the store opens as it is (no repair step exists or is needed), and a watch that was open
// before the kill resumes from the last resourceVersion it saw: the events it gets after the
// restart, applied to what it had, give exactly what a fresh list shows. Two watches: one open
// until the kill, one whose connection broke halfway through the writes (so it has much to catch up). (A revision older than
// the change log would get 410 Gone and the client re-lists, as with Kubernetes; the writes here
// stay well inside the log, so the watch resumes with events.)

import { mkdtempSync } from 'node:fs'
import { Agent, request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const NS = 'f1-writes'
const CLIENTS = 6
const KILL_AFTER_ACKS = 400
const BASE = `/api/v1/namespaces/${NS}/configmaps`

/** What a name holds: its data value, or undefined when absent. */
type State = string | undefined

interface Tracked {
  /** State after the last acknowledged write. */
  acked: State
  /** State the write in flight at the kill would leave, when one was in flight. */
  inFlight?: { state: State }
}

/** A streaming watch of the namespace's ConfigMaps: keeps the state it has seen and the last resourceVersion. */
function openWatch(hub: HubProcess, fromRevision: string, agent: Agent) {
  const seen = new Map<string, string>()
  let lastRevision = fromRevision
  let buffer = ''
  const req = request(new URL(`${BASE}?watch=true&resourceVersion=${fromRevision}`, hub.server), { agent, headers: { Authorization: `Bearer ${hub.token}` } }, (res) => {
    res.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8')
      let nl: number
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl).trim()
        buffer = buffer.slice(nl + 1)
        if (!line) continue
        const e = JSON.parse(line)
        applyEvent(seen, e)
        lastRevision = e.object.metadata.resourceVersion
      }
    })
    res.on('error', () => {})
  })
  req.on('error', () => {}) // the hub dies under it
  req.end()
  return { seen, lastRevision: () => lastRevision, close: () => req.destroy() }
}

function applyEvent(state: Map<string, string>, e: any): void {
  if (e.type === 'DELETED') state.delete(e.object.metadata.name)
  else state.set(e.object.metadata.name, e.object.data?.v)
}

t.teardown(() => closeApiAgents())

t.test('concurrent creates, updates and deletes: acknowledged ones survive a SIGKILL, and a watch resumes from its revision', async (t) => {
  const hub = await startHubProcess({ dataDir: mkdtempSync(join(tmpdir(), 'f1-hub-')) })
  t.teardown(() => hub.cleanup())
  t.equal((await apiRequest(hub, 'POST', '/api/v1/namespaces', { metadata: { name: NS } })).status, 201)
  const startList = await apiRequest(hub, 'GET', BASE)
  const watchAgent = new Agent({ ca: hub.ca })
  t.teardown(() => watchAgent.destroy())
  const watches = { 'open until the kill': openWatch(hub, startList.json.metadata.resourceVersion, watchAgent), 'broken halfway': openWatch(hub, startList.json.metadata.resourceVersion, watchAgent) }

  const tracked = new Map<string, Tracked>()
  let acks = 0
  let refused = 0
  let killed = false
  let maxAckedRevision = 0
  // Each client has its own connection and its own names: create, update twice, delete one in three.
  const client = async (c: number) => {
    const target = { server: hub.server, ca: hub.ca, token: hub.token }
    const agent = new Agent({ ca: hub.ca, keepAlive: true })
    const send = (method: string, path: string, body?: unknown) =>
      new Promise<{ status: number; json: any }>((resolve, reject) => {
        const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body))
        const req = request(new URL(path, target.server), { method, agent, headers: { Authorization: `Bearer ${target.token}`, ...(payload ? { 'Content-Type': 'application/json' } : {}) } }, (res) => {
          let text = ''
          res.on('data', (d) => (text += d))
          res.on('end', () => resolve({ status: res.statusCode ?? 0, json: text ? JSON.parse(text) : undefined }))
          res.on('error', reject)
        })
        req.on('error', reject)
        req.end(payload)
      })
    const write = async (name: string, method: string, path: string, body: unknown, after: State, okStatus: number[]): Promise<any> => {
      const entry = tracked.get(name) ?? { acked: undefined }
      tracked.set(name, entry)
      entry.inFlight = { state: after }
      const res = await send(method, path, body)
      if (!okStatus.includes(res.status)) {
        refused++
        throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`)
      }
      entry.acked = after
      delete entry.inFlight
      acks++
      maxAckedRevision = Math.max(maxAckedRevision, Number(res.json?.metadata?.resourceVersion ?? 0))
      return res.json
    }
    try {
      for (let i = 0; !killed; i++) {
        const name = `c${c}-${i}`
        let obj = await write(name, 'POST', BASE, { metadata: { name }, data: { v: '1' } }, '1', [201])
        for (const v of ['2', '3']) {
          if (killed) return
          obj = await write(name, 'PUT', `${BASE}/${name}`, { metadata: { name, resourceVersion: obj.metadata.resourceVersion }, data: { v } }, v, [200])
        }
        if (i % 3 === 0 && !killed) await write(name, 'DELETE', `${BASE}/${name}`, undefined, undefined, [200, 202])
      }
    } catch {
      // the connection died with the hub (or a refusal, counted above)
    } finally {
      agent.destroy()
    }
  }
  const writing = Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)))
  const deadline = Date.now() + 120_000
  while (acks < KILL_AFTER_ACKS / 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  watches['broken halfway'].close()
  while (acks < KILL_AFTER_ACKS && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5))
  killed = true
  hub.child.kill('SIGKILL')
  await writing
  await hub.stop()
  t.equal(refused, 0, 'no write was refused before the kill')
  t.ok(acks >= KILL_AFTER_ACKS, `${acks} writes acknowledged before the kill`)
  for (const [which, w] of Object.entries(watches)) {
    t.ok(Number(w.lastRevision()) > Number(startList.json.metadata.resourceVersion), `the watch ${which} had seen events up to revision ${w.lastRevision()}`)
  }

  await t.test('the dead hub\'s store opens as it is and holds every acknowledged write', async (t) => {
    const store = await openLmdbStore({ path: join(hub.dataDir, 'store') })
    try {
      t.ok((await store.revision()) >= maxAckedRevision, `the store's revision ${await store.revision()} is at least the newest acknowledged one ${maxAckedRevision}`)
      const items = (await store.list({ resource: 'configmaps', namespace: NS })).items
      t.equal(items.length, new Map(items.map((o) => [o.metadata.name, o])).size, 'one object per name')
    } finally {
      await store.close()
    }
  })

  closeApiAgents()
  const again = await startHubProcess({ dataDir: hub.dataDir })
  t.teardown(() => again.cleanup())
  const list = await apiRequest(again, 'GET', BASE)
  t.equal(list.status, 200)
  const stored = new Map<string, string>(list.json.items.map((o: any) => [o.metadata.name, o.data?.v]))

  await t.test('every acknowledged write is there; only the write in flight at the kill may differ', async (t) => {
    const wrong: string[] = []
    let inFlightApplied = 0
    for (const [name, entry] of tracked) {
      const now = stored.get(name)
      if (now === entry.acked) continue
      if (entry.inFlight && now === entry.inFlight.state) {
        inFlightApplied++
        continue
      }
      wrong.push(`${name}: acknowledged ${entry.acked ?? 'absent'}, in flight ${entry.inFlight ? (entry.inFlight.state ?? 'absent') : 'none'}, stored ${now ?? 'absent'}`)
    }
    t.same(wrong, [], `all ${tracked.size} names hold their last acknowledged state`)
    t.comment(`${inFlightApplied} of the writes in flight at the kill were applied (allowed either way)`)
    const unknown = [...stored.keys()].filter((n) => !tracked.has(n))
    t.same(unknown, [], 'nothing stored that no client wrote')
  })

  for (const [which, w] of Object.entries(watches)) {
    await t.test(`the watch ${which} resumes from the last revision it saw with every later change`, async (t) => {
      const resumeFrom = w.lastRevision()
      const res = await apiRequest(again, 'GET', `${BASE}?watch=true&resourceVersion=${resumeFrom}&timeoutSeconds=2`)
      t.equal(res.status, 200, 'no 410 Gone: the revision is still in the change log')
      const state = new Map(w.seen)
      const events = res.text.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
      t.ok(events.every((e) => Number(e.object.metadata.resourceVersion) > Number(resumeFrom)), `only events after revision ${resumeFrom}`)
      for (const e of events) applyEvent(state, e)
      t.same(Object.fromEntries([...state].sort()), Object.fromEntries([...stored].sort()), `what the watch had, plus ${events.length} resumed events, is what a list shows now`)
      if (which === 'broken halfway') t.ok(events.length > 0, 'it had changes to catch up on')
    })
  }

  await t.test('the restarted hub writes on after the newest acknowledged revision', async (t) => {
    const created = await apiRequest(again, 'POST', BASE, { metadata: { name: 'after-restart' }, data: { v: 'x' } })
    t.equal(created.status, 201)
    t.ok(Number(created.json.metadata.resourceVersion) > maxAckedRevision)
  })
})
