// Secrets encrypted at rest in the agent's replica: the raw LMDB files hold no trace of a Secret's
// value while the replica hands it back whole, the key file is the agent's own (0600), another key
// is refused clearly, Secrets kept in the clear by an earlier version are sealed on open, and a
// key rotation re-encrypts them.

import t, { type Test } from 'tap'
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { open } from 'lmdb'
import type { DesiredMessage, DesiredObject } from '../../src/api/protocol.js'
import type { KubeObject } from '../../src/api/types.js'
import { openReplica, rotateReplicaKey } from '../../src/agent/replica.js'

const VALUE = 'replica-hunter2-distinctive-8e21'
const NEXT_VALUE = 'replica-battery-staple-distinctive-40c7'
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')
const password = (o: KubeObject | undefined) => (o?.data as Record<string, string> | undefined)?.password

const secret = (name: string, value: string, uid = `uid-${name}`): DesiredObject => ({
  apiVersion: 'v1',
  kind: 'Secret',
  metadata: { name, namespace: 'default', uid, annotations: { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify({ stringData: { password: value } }) } },
  type: 'Opaque',
  data: { password: b64(value) },
})
const pod: DesiredObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default', uid: 'uid-web' }, spec: { containers: [{ name: 'c', image: 'busybox' }] } }
const msg = (m: Partial<DesiredMessage> & { revision: number }): DesiredMessage => ({ since: 0, full: false, upserts: [], deletes: [], ...m })

async function agentDir(t: Test): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'bramble-replica-secrets-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  return join(dir, 'agent')
}

/** Every file under `dir` whose raw bytes hold one of `values` or its base64. */
function filesContaining(dir: string, values: string[]): string[] {
  const found: string[] = []
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name)
    if (!statSync(path).isFile()) continue
    const bytes = readFileSync(path)
    for (const v of values.flatMap((v) => [v, b64(v)])) if (bytes.includes(Buffer.from(v, 'utf8'))) found.push(`${name} holds ${JSON.stringify(v)}`)
  }
  return found
}

t.test("a Secret in the replica is nowhere in its files, yet the replica returns it whole", async (t) => {
  const dir = await agentDir(t)
  const replica = await openReplica(join(dir, 'replica'))
  await replica.applyDesired(msg({ revision: 1, full: true, upserts: [pod, secret('db', VALUE), secret('old', VALUE)] }))
  await replica.applyDesired(msg({ revision: 2, since: 1, upserts: [secret('db', NEXT_VALUE)], deletes: [{ kind: 'Secret', namespace: 'default', name: 'old', uid: 'uid-old' }] }))

  t.equal(password(replica.secret('default', 'db')), b64(NEXT_VALUE))
  t.equal(replica.secret('default', 'old'), undefined, 'a delete naming its uid removes a sealed Secret')
  const [desired] = replica.desiredPods()
  t.same(Object.keys(desired!.secrets), ['db'])
  t.same(desired!.secrets.db, secret('db', NEXT_VALUE), 'the pod gets the Secret as the hub sent it, annotations and all')
  await replica.close()

  t.same(filesContaining(join(dir, 'replica'), [VALUE, NEXT_VALUE]), [], 'no replica file holds a value, raw or in base64')
  t.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600, "the agent's key file is owner-only")

  const again = await openReplica(join(dir, 'replica'))
  t.teardown(() => again.close())
  t.equal(password(again.secret('default', 'db')), b64(NEXT_VALUE), 'readable after a reopen with the same key')
})

t.test('a replica opened with another key file is refused at open with a clear error', async (t) => {
  const dir = await agentDir(t)
  const replica = await openReplica(join(dir, 'replica'))
  await replica.applyDesired(msg({ revision: 1, full: true, upserts: [pod, secret('db', VALUE)] }))
  await replica.close()
  await t.rejects(openReplica(join(dir, 'replica'), join(dir, 'other.key')), {
    code: 'BRAMBLE_SECRET_KEY_UNKNOWN',
    message: /Secret default\/db in the replica was encrypted with key [0-9a-f]{8}, which the secrets key file .*other\.key does not hold/,
  })
  const right = await openReplica(join(dir, 'replica'))
  t.teardown(() => right.close())
  t.equal(password(right.secret('default', 'db')), b64(VALUE), 'the refused open left the replica as it was')
})

t.test('Secrets an earlier replica kept in the clear are sealed when it opens', async (t) => {
  const dir = await agentDir(t)
  const path = join(dir, 'replica')
  const key = 'obj\0Secret\0default\0db'
  const plain = open<any, string>({ path, compression: false })
  await plain.put(key, secret('db', VALUE))
  await plain.close()
  t.not(filesContaining(path, [VALUE]).length, 0, 'the old replica does hold the value (the grep finds what is there)')

  const replica = await openReplica(path)
  t.equal(password(replica.secret('default', 'db')), b64(VALUE))
  await replica.close()
  t.same(filesContaining(join(dir, '..'), [VALUE]), [], 'no file holds it any more, not even in a freed page')
  const raw = open<any, string>({ path, compression: false })
  t.teardown(() => raw.close())
  t.match(raw.get(key).sealed, /^bramble-aead-v1:/, 'stored sealed now')
  t.equal(raw.get(key).data, undefined)
})

t.test("rotating the agent's key re-seals every Secret in the replica and drops the old key", async (t) => {
  const dir = await agentDir(t)
  const path = join(dir, 'replica')
  const replica = await openReplica(path)
  await replica.applyDesired(msg({ revision: 4, full: true, upserts: [pod, secret('db', VALUE), secret('api', NEXT_VALUE)] }))
  await replica.close()
  const oldId = JSON.parse(readFileSync(join(dir, 'secrets.key'), 'utf8')).primary

  const result = await rotateReplicaKey(path)
  t.same(result.droppedKeyIds, [oldId])
  t.equal(result.rewritten, 2)
  const file = JSON.parse(readFileSync(join(dir, 'secrets.key'), 'utf8'))
  t.same(Object.keys(file.keys), [result.newKeyId], 'only the new key is left')
  t.equal(statSync(join(dir, 'secrets.key')).mode & 0o777, 0o600)
  t.same(filesContaining(path, [VALUE, NEXT_VALUE]), [], 'no plaintext')
  const stale: string[] = []
  for (const name of readdirSync(path)) if (readFileSync(join(path, name)).includes(Buffer.from(`bramble-aead-v1:${oldId}:`))) stale.push(name)
  t.same(stale, [], 'nothing sealed with the dropped key is left, not even in a freed page')

  const again = await openReplica(path)
  t.teardown(() => again.close())
  t.equal(again.revision(), 4, 'the revision is kept')
  t.equal(password(again.secret('default', 'db')), b64(VALUE))
  t.equal(password(again.secret('default', 'api')), b64(NEXT_VALUE))
})
