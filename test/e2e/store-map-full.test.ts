// A hub whose store reaches --store-map-size, through the real binary: writes past the cap get a
// 507 Status that says what to do, reads and deletes go on, the hub does not crash; killed with
// SIGKILL while full it starts again on the same data dir and size, and with a larger size it
// takes writes again; every acknowledged write is there throughout.

import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const CAP = '2Mi'
const BLOB = 'x'.repeat(16 * 1024)

t.teardown(() => closeApiAgents())

const create = (hub: HubProcess, name: string) => apiRequest(hub, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name }, data: { blob: BLOB } })
const names = async (hub: HubProcess): Promise<string[]> => {
  const list = await apiRequest(hub, 'GET', '/api/v1/namespaces/default/configmaps')
  if (list.status !== 200) throw new Error(`list: ${list.status} ${list.text}`)
  return list.json.items.map((i: any) => i.metadata.name).sort()
}

t.test('a store at its map size refuses writes with 507, keeps every acknowledged one, and grows when given room', async (t) => {
  let hub = await startHubProcess({ args: ['--store-map-size', CAP] })
  t.teardown(() => hub.cleanup())
  const acked: string[] = []
  let refused: Awaited<ReturnType<typeof create>> | undefined
  for (let i = 0; i < 2000 && !refused; i++) {
    const res = await create(hub, `c${i}`)
    if (res.status === 201) acked.push(`c${i}`)
    else refused = res
  }
  t.ok(refused, `refused after ${acked.length} acknowledged writes`)
  t.equal(refused!.status, 507, 'HTTP 507 Insufficient Storage')
  t.match(refused!.json, { kind: 'Status', status: 'Failure', reason: 'InsufficientStorage', code: 507 })
  t.match(refused!.json.message, /is full; raise --store-map-size or delete objects/, 'the message says what to do')
  t.equal(hub.child.exitCode, null, 'the hub keeps running')
  t.same(await names(hub), acked.sort(), 'reads go on and show every acknowledged write')
  const update = await apiRequest(hub, 'PUT', '/api/v1/namespaces/default/configmaps/c0', { metadata: { name: 'c0' }, data: { blob: `${BLOB}y` } })
  t.equal(update.status, 507, 'an update that grows the store is refused the same way')
  const removed = await apiRequest(hub, 'DELETE', `/api/v1/namespaces/default/configmaps/${acked.at(-1)}`)
  t.equal(removed.status, 200, 'deletes still work')
  const kept = acked.slice(0, -1)

  // Power cut while full: the store opens again at the same size.
  hub.child.kill('SIGKILL')
  await hub.stop()
  closeApiAgents()
  hub = await startHubProcess({ dataDir: hub.dataDir, args: ['--store-map-size', CAP] })
  t.same(await names(hub), kept.sort(), 'after a SIGKILL while full the hub starts on the same size with every acknowledged write')

  await hub.stop()
  closeApiAgents()
  hub = await startHubProcess({ dataDir: hub.dataDir, args: ['--store-map-size', '16Mi'] })
  const more = await create(hub, 'after-growth')
  t.equal(more.status, 201, `with a larger --store-map-size writes are taken again (${more.status} ${more.json?.message ?? ''})`)
  t.same(await names(hub), [...kept, 'after-growth'].sort(), 'and nothing acknowledged was lost')
})
