// The hub's disk fills, through the real binary: its data dir on a small tmpfs filled to the last
// byte. Writes get a 507 Status naming the free bytes, the hub keeps serving reads (it used to die
// of lmdb-js's unhandled commit error), and once space is back writes work again without a
// restart; every acknowledged write is there after a restart.

import t from 'tap'
import { join } from 'node:path'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { mountSmallFilesystem, smallFilesystemUnavailable } from '../helpers/small-filesystem.js'

const BLOB = 'x'.repeat(8 * 1024)

async function run(): Promise<void> {
  t.teardown(() => closeApiAgents())
  const fs = await mountSmallFilesystem('f2', 64 * 1024 * 1024)
  let hub: HubProcess | undefined
  t.teardown(async () => {
    await hub?.stop('SIGKILL')
    await fs.unmount()
  })
  hub = await startHubProcess({ dataDir: join(fs.dir, 'hub') })
  const create = (name: string) => apiRequest(hub!, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name }, data: { blob: BLOB } })
  const names = async () => ((await apiRequest(hub!, 'GET', '/api/v1/namespaces/default/configmaps')).json.items as any[]).map((i) => i.metadata.name).sort()

  await t.test('a full disk: writes get 507 naming the free bytes, the hub keeps serving', async (t) => {
    const acked: string[] = []
    t.equal((await create('before')).status, 201)
    acked.push('before')
    fs.fill(128 * 1024)
    let refused: Awaited<ReturnType<typeof create>> | undefined
    for (let i = 0; i < 500 && !refused; i++) {
      const res = await create(`c${i}`)
      if (res.status === 201) acked.push(`c${i}`)
      else refused = res
    }
    t.ok(refused, `refused after ${acked.length} acknowledged writes`)
    t.equal(refused!.status, 507)
    t.match(refused!.json, { kind: 'Status', reason: 'InsufficientStorage', code: 507 })
    t.match(refused!.json.message, /cannot grow: its disk has \d+ bytes free; free space on that disk/, refused!.json.message)
    const burst = await Promise.all(Array.from({ length: 8 }, (_, i) => create(`burst${i}`)))
    t.same(burst.map((r) => r.status), Array(8).fill(507), 'concurrent writes are each refused the same way')
    t.equal(hub!.child.exitCode, null, 'the hub is still running')
    t.same(await names(), acked.sort(), 'reads show exactly the acknowledged writes')

    fs.empty()
    t.equal((await create('after')).status, 201, 'with space back a write succeeds, no restart needed')
    acked.push('after')
    await hub!.stop()
    closeApiAgents()
    hub = await startHubProcess({ dataDir: join(fs.dir, 'hub') })
    t.same(await names(), acked.sort(), 'after a restart every acknowledged write is there')
  })
}

const unavailable = smallFilesystemUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
