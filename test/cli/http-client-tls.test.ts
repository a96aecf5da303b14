// The client's certificate failures, against a real hub: another cluster's CA is refused at once
// with a sentence saying so; a certificate not yet valid points at this machine's clock.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:https'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConnectionError } from '../../src/cli/errors.js'
import { HubClient } from '../../src/cli/http-client.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { makeCert } from '../helpers/cert-factory.js'
import { testTls } from '../helpers/tls.js'

const DAY_MS = 86_400_000

const root = mkdtempSync(join(tmpdir(), 'bramble-client-tls-'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))
const dataDir = join(root, 'hub')
const hub = await startHub(resolveHubConfig({ dataDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
t.teardown(() => hub.close())

async function failure(server: string, ca: string): Promise<unknown> {
  const client = new HubClient({ path: 'test', server, ca, namespace: 'default', insecureSkipTlsVerify: false }, () => {})
  try {
    return await client.request('GET', '/version').then(() => undefined, (err: unknown) => err)
  } finally {
    client.close()
  }
}

t.test("a kubeconfig with another cluster's CA is refused with a sentence saying so", async (t) => {
  const err = await failure(hub.url, testTls().ca)
  t.ok(err instanceof ConnectionError)
  t.match((err as Error).message, /its certificate is not trusted by the kubeconfig's CA \(\w+\): it is not this cluster's hub, or the hub's CA was replaced$/)
})

t.test("a certificate from the hub's CA that is not yet valid names this machine's clock", async (t) => {
  const ca = { certPem: readFileSync(join(dataDir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(dataDir, 'ca.key'), 'utf8') }
  const future = makeCert(Date.now() + 2 * DAY_MS, Date.now() + 30 * DAY_MS, ca)
  const server = createServer({ key: future.keyPem, cert: future.certPem }, (_req, res) => res.end('{}'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => server.close(() => resolve())))
  const err = await failure(`https://127.0.0.1:${(server.address() as AddressInfo).port}`, ca.certPem)
  t.ok(err instanceof ConnectionError)
  t.match((err as Error).message, /its certificate is not yet valid by this machine's clock \(.+\); check the time here \(`bramble check`\), or restart the hub/)
})

t.test('the real hub with its own CA answers (the do-nothing case)', async (t) => {
  const client = new HubClient({ path: 'test', server: hub.url, ca: readFileSync(join(dataDir, 'ca.crt'), 'utf8'), namespace: 'default', insecureSkipTlsVerify: false }, () => {})
  t.teardown(() => client.close())
  t.equal((await client.request('GET', '/version')).status, 200)
})
