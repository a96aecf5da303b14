// Secrets at rest with the real `bramble` binary: a Secret POSTed to a running hub is nowhere in
// its data dir's files; `bramble secrets rotate-key` refuses while the hub runs, re-encrypts once it
// is stopped, the restarted hub serves the value with the new key, and a hub given another key
// file refuses to start.

import t from 'tap'
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BRAMBLE_BIN, startHubProcess } from '../helpers/hub-process.js'

const VALUE = 'e2e-at-rest-distinctive-9b17f0'
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64')

t.teardown(() => closeApiAgents())

/** Files anywhere in the data dir whose raw bytes hold the value or its base64. */
function filesContaining(dir: string): string[] {
  const found: string[] = []
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name)
    if (!statSync(path).isFile()) continue
    const bytes = readFileSync(path)
    for (const v of [VALUE, b64(VALUE)]) if (bytes.includes(Buffer.from(v, 'utf8'))) found.push(`${name} holds ${v}`)
  }
  return found
}

function rotate(dataDir: string) {
  return spawnSync(process.execPath, [BRAMBLE_BIN, 'secrets', 'rotate-key', '--data-dir', dataDir], { encoding: 'utf8', timeout: 30_000 })
}

const keyIds = (dataDir: string) => Object.keys(JSON.parse(readFileSync(join(dataDir, 'secrets.key'), 'utf8')).keys)

t.test('a Secret given to the hub is encrypted in its data dir, and rotate-key re-encrypts it with the hub stopped', async (t) => {
  const hub = await startHubProcess()
  t.teardown(() => hub.cleanup())
  const created = await apiRequest(hub, 'POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'db' }, stringData: { password: VALUE } })
  t.equal(created.status, 201, created.text)
  t.equal(statSync(join(hub.dataDir, 'secrets.key')).mode & 0o777, 0o600, 'the key file is owner-only')
  const before = keyIds(hub.dataDir)
  t.equal(before.length, 1)

  const refused = rotate(hub.dataDir)
  t.equal(refused.status, 1, 'refused while the hub has the store open')
  t.match(refused.stderr, /is open in another process \(pid \d+\); stop the hub first/)
  t.same(keyIds(hub.dataDir), before, 'the key file is untouched by a refused rotation')

  await hub.stop()
  t.same(filesContaining(hub.dataDir), [], 'no file in the data dir holds the value')
  const rotated = rotate(hub.dataDir)
  t.equal(rotated.status, 0, rotated.stderr)
  t.match(rotated.stderr, new RegExp(`hub secrets key rotated to [0-9a-f]{8} \\(dropped ${before[0]}\\)`))
  const after = keyIds(hub.dataDir)
  t.equal(after.length, 1)
  t.not(after[0], before[0], 'a new key replaced the old')
  t.same(filesContaining(hub.dataDir), [], 'still no plaintext after the rotation')

  const again = await startHubProcess({ dataDir: hub.dataDir })
  t.teardown(() => again.stop())
  const read = await apiRequest(again, 'GET', '/api/v1/namespaces/default/secrets/db')
  t.equal(read.status, 200, read.text)
  t.equal(read.json.data.password, b64(VALUE), 'the restarted hub reads the Secret with the new key')
  await again.stop()

  // A key file from elsewhere: the hub refuses to start, naming the file.
  rmSync(join(hub.dataDir, 'secrets.key'))
  await t.rejects(startHubProcess({ dataDir: hub.dataDir }), /Secret default\/db was encrypted with key [0-9a-f]{8}, which the secrets key file .*secrets\.key does not hold/)
})
