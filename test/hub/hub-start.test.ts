// Starting the hub in-process: first start makes PKI, tokens, namespaces and the kubeconfig; the
// API answers over HTTPS verified with the hub's own CA; a restart reuses everything.

import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createConnection } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig, type HubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'

const root = mkdtempSync(join(tmpdir(), 'bramble-hub-start-'))
t.teardown(() => {
  closeApiAgents()
  rmSync(root, { recursive: true, force: true })
})

function config(dataDir: string, extra: Record<string, string> = {}): HubConfig {
  return resolveHubConfig({ dataDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi', ...extra }, {})
}

function connectError(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port })
    socket.once('connect', () => {
      socket.destroy()
      resolve(undefined)
    })
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code))
  })
}

function readKubeconfig(path: string): { server: string; ca: string; token: string } {
  const doc = parseYaml(readFileSync(path, 'utf8'))
  return {
    server: doc.clusters[0].cluster.server,
    ca: Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString('utf8'),
    token: doc.users[0].user.token,
  }
}

t.test('a first start serves the API and writes a kubeconfig naming the real port', async (t) => {
  const dataDir = join(root, 'first')
  const hub = await startHub(config(dataDir), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => hub.close())

  t.ok(hub.apiPort > 0, 'port 0 picked a real port')
  t.equal(hub.kubeconfigPath, join(dataDir, 'kubeconfig.yaml'))
  t.equal(statSync(dataDir).mode & 0o777, 0o700, 'data dir is owner-only')
  t.equal(statSync(hub.kubeconfigPath).mode & 0o777, 0o600, 'kubeconfig is owner-only')
  for (const f of ['ca.crt', 'ca.key', 'server.crt', 'server.key', 'tokens.json', 'join-token']) t.ok(statSync(join(dataDir, f)).isFile(), `${f} exists`)

  const kc = readKubeconfig(hub.kubeconfigPath)
  t.equal(kc.server, `https://127.0.0.1:${hub.apiPort}`)
  t.equal(kc.ca, readFileSync(join(dataDir, 'ca.crt'), 'utf8'))

  const anonymous: ApiTarget = { server: kc.server, ca: kc.ca }
  const admin: ApiTarget = { ...anonymous, token: kc.token }
  const version = await apiRequest(anonymous, 'GET', '/version')
  t.equal(version.status, 200, '/version answers over TLS verified with the CA')
  t.ok(version.json.gitVersion)

  t.equal((await apiRequest(anonymous, 'GET', '/api/v1/namespaces')).status, 401, 'no token: 401')
  t.equal((await apiRequest({ ...anonymous, token: 'wrong' }, 'GET', '/api/v1/namespaces')).status, 401, 'wrong token: 401')

  const namespaces = await apiRequest(admin, 'GET', '/api/v1/namespaces')
  t.equal(namespaces.status, 200)
  t.same(namespaces.json.items.map((n: any) => n.metadata.name).sort(), ['default', 'kube-public', 'kube-system'])
  const system = namespaces.json.items.find((n: any) => n.metadata.name === 'kube-system')
  t.same(system.metadata.labels, { 'kubernetes.io/metadata.name': 'kube-system' })
  t.equal(system.status.phase, 'Active')

  const readOnly: ApiTarget = { ...anonymous, token: readFileSync(join(dataDir, 'read-only-token'), 'utf8').trim() }
  t.equal((await apiRequest(readOnly, 'GET', '/api/v1/namespaces')).status, 200, 'the read-only token reads')
  const create = await apiRequest(readOnly, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'x' } })
  t.equal(create.status, 403, 'the read-only token may not write')
})

t.test('a restart reuses the CA, the tokens, the kubeconfig token and the stored objects', async (t) => {
  const dataDir = join(root, 'restart')
  const first = await startHub(config(dataDir), { logger: silentLogger(), clock: systemClock })
  const before = readKubeconfig(first.kubeconfigPath)
  const tokensBefore = readFileSync(join(dataDir, 'tokens.json'), 'utf8')
  const created = await apiRequest({ ...before }, 'POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'farm' } })
  t.equal(created.status, 201)
  await first.close()
  t.equal(await connectError(first.apiPort), 'ECONNREFUSED', 'the port is released')

  const second = await startHub(config(dataDir), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => second.close())
  const after = readKubeconfig(second.kubeconfigPath)
  t.equal(after.ca, before.ca, 'same CA')
  t.equal(after.token, before.token, 'same admin token')
  t.equal(readFileSync(join(dataDir, 'tokens.json'), 'utf8'), tokensBefore, 'no new tokens')
  t.equal(second.caHash, first.caHash)
  const list = await apiRequest(after, 'GET', '/api/v1/namespaces')
  t.same(list.json.items.map((n: any) => n.metadata.name).sort(), ['default', 'farm', 'kube-public', 'kube-system'])
})

t.test('a lost kubeconfig gets a new admin token while old copies keep working', async (t) => {
  const dataDir = join(root, 'lost')
  const first = await startHub(config(dataDir), { logger: silentLogger(), clock: systemClock })
  const old = readKubeconfig(first.kubeconfigPath)
  await first.close()
  rmSync(join(dataDir, 'kubeconfig.yaml'))

  const second = await startHub(config(dataDir), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => second.close())
  const fresh = readKubeconfig(second.kubeconfigPath)
  t.not(fresh.token, old.token)
  t.equal((await apiRequest(fresh, 'GET', '/api/v1/namespaces')).status, 200)
  t.equal((await apiRequest({ ...fresh, token: old.token }, 'GET', '/api/v1/namespaces')).status, 200)
})

t.test('a busy port fails the start and leaves the store closed for the next try', async (t) => {
  const dataDir = join(root, 'busy')
  const first = await startHub(config(join(root, 'busy-other')), { logger: silentLogger(), clock: systemClock })
  t.teardown(() => first.close())
  await t.rejects(startHub(config(dataDir, { apiPort: String(first.apiPort) }), { logger: silentLogger(), clock: systemClock }), { code: 'EADDRINUSE' })
  const retry = await startHub(config(dataDir), { logger: silentLogger(), clock: systemClock })
  await retry.close()
  t.pass('a second start in the same data dir succeeds')
})
