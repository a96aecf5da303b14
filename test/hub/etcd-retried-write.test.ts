// A write whose answer is lost: the etcd client sends a call again when its connection breaks,
// also when etcd had already committed it. Through a TCP proxy in front of a real etcd member, the
// connection is cut after etcd has committed the write and before its answer reaches the store;
// the store's create and its update from an expected resourceVersion must then report the write
// they made, not "exists" or a conflict with themselves.

import t from 'tap'
import { randomBytes } from 'node:crypto'
import { connect, createServer, type Server, type Socket } from 'node:net'
import { Etcd3 } from 'etcd3'
import type { KubeObject } from '../../src/api/types.js'
import { openEtcdStore } from '../../src/hub/etcd-store.js'
import { etcdMissing, startEtcd } from '../helpers/etcd.js'

const missing = etcdMissing()

/**
 * Forwards to `target` until cut() is armed: then, once the client's request carrying `marker`
 * has gone through, no answer is forwarded; when `committed()` says etcd has the write, every
 * connection is destroyed. Later connections are forwarded as before.
 */
async function cuttingProxy(target: { host: string; port: number }): Promise<{ url: string; cut(marker: string, committed: () => Promise<boolean>): Promise<void>; close(): Promise<void> }> {
  const sockets = new Set<Socket>()
  let armed: { marker: Buffer; seen: boolean } | undefined
  const server: Server = createServer((client) => {
    const upstream = connect(target.port, target.host)
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('close', () => sockets.delete(s))
      s.on('error', () => undefined)
    }
    client.on('data', (chunk: Buffer) => {
      if (armed && chunk.includes(armed.marker)) armed.seen = true
      upstream.write(chunk)
    })
    upstream.on('data', (chunk: Buffer) => {
      if (!armed?.seen) client.write(chunk)
    })
    client.on('close', () => upstream.destroy())
    upstream.on('close', () => client.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  return {
    url: `http://127.0.0.1:${port}`,
    async cut(marker, committed) {
      armed = { marker: Buffer.from(marker), seen: false }
      const deadline = Date.now() + 30_000
      while (!(armed.seen && (await committed()))) {
        if (Date.now() > deadline) throw new Error(`the write carrying ${marker} never committed`)
        await new Promise((r) => setTimeout(r, 20))
      }
      armed = undefined
      for (const s of sockets) s.destroy()
    },
    async close() {
      for (const s of sockets) s.destroy()
      await new Promise((resolve) => server.close(resolve))
    },
  }
}

const valueOf = (o: KubeObject | undefined): string | undefined => (o?.data as { value?: string } | undefined)?.value
const configMap = (name: string, value: string): KubeObject => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' }, data: { value } } as KubeObject)

t.test('a create and an update whose answers were lost report the writes they made', { skip: missing ?? false }, async (t) => {
  const etcd = await startEtcd()
  t.teardown(() => etcd.stop())
  const member = new URL(etcd.endpoints[0]!)
  const proxy = await cuttingProxy({ host: member.hostname, port: Number(member.port) })
  t.teardown(() => proxy.close())
  const prefix = `/etc-retry-${randomBytes(3).toString('hex')}/`
  const store = await openEtcdStore({ endpoints: [proxy.url], prefix, callTimeoutMs: 10_000 })
  t.teardown(() => store.close())
  const direct = new Etcd3({ hosts: etcd.endpoints })
  t.teardown(() => direct.close())
  const stored = async (): Promise<string | null> => direct.get(`${prefix}o/configmaps\0default\0lost-answer`).string()

  const key = { resource: 'configmaps', namespace: 'default', name: 'lost-answer' }
  const creating = store.create(key, configMap('lost-answer', 'first-value'))
  await proxy.cut('first-value', async () => (await stored()) !== null)
  const created = await creating
  t.equal(valueOf(created), 'first-value', 'the create reports the object it wrote')
  const afterCreate = await store.get(key)
  t.equal(created.metadata.resourceVersion, afterCreate?.metadata.resourceVersion, 'at the revision it took')
  t.equal(created.metadata.uid, afterCreate?.metadata.uid, 'with its uid')

  const updating = store.update(key, { ...afterCreate!, data: { value: 'second-value' } }, { expectedResourceVersion: afterCreate!.metadata.resourceVersion })
  await proxy.cut('second-value', async () => (await stored())?.includes('second-value') ?? false)
  const updated = await updating
  t.equal(valueOf(updated), 'second-value', 'the update from the expected resourceVersion reports its write, not a conflict')
  t.equal(updated.metadata.resourceVersion, (await store.get(key))?.metadata.resourceVersion, 'at the revision it took')

  await t.rejects(store.create(key, configMap('lost-answer', 'another')), { code: 'BRAMBLE_STORE_EXISTS' }, 'a create of an object that is there is still refused')
  await t.rejects(store.update(key, { ...updated, data: { value: 'third' } }, { expectedResourceVersion: afterCreate!.metadata.resourceVersion }), { code: 'BRAMBLE_STORE_CONFLICT' }, 'and an update from an old resourceVersion is still a conflict')
})
