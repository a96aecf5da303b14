// The kubeconfig the hub writes: YAML that kubectl and @kubernetes/client-node read as admin.

import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { KubeConfig } from '@kubernetes/client-node'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { kubeconfigYaml, readKubeconfigToken, serverUrl, writeKubeconfig } from '../../src/hub/kubeconfig.js'

const CA_PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
const options = { advertise: '192.168.1.10', port: 6443, caCertPem: CA_PEM, token: 'tok-123' }

t.test('names the bramble cluster, the admin user and its token, and makes bramble current', async (t) => {
  const doc = parseYaml(kubeconfigYaml(options))
  t.equal(doc.kind, 'Config')
  t.equal(doc['current-context'], 'bramble')
  t.same(doc.contexts, [{ name: 'bramble', context: { cluster: 'bramble', user: 'admin' } }])
  t.equal(doc.clusters[0].name, 'bramble')
  t.equal(doc.clusters[0].cluster.server, 'https://192.168.1.10:6443')
  t.equal(Buffer.from(doc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), CA_PEM)
  t.same(doc.users, [{ name: 'admin', user: { token: 'tok-123' } }])
})

t.test('IPv6 advertise addresses are bracketed in the server URL', async (t) => {
  t.equal(serverUrl('::1', 0 + 6443), 'https://[::1]:6443')
  t.equal(serverUrl('hub.lan', 7000), 'https://hub.lan:7000')
})

t.test('@kubernetes/client-node reads it as kubectl would', async (t) => {
  const kc = new KubeConfig()
  kc.loadFromString(kubeconfigYaml(options))
  t.equal(kc.getCurrentCluster()?.server, 'https://192.168.1.10:6443')
  t.equal(kc.getCurrentUser()?.token, 'tok-123')
  t.equal(kc.getCurrentCluster()?.caData, Buffer.from(CA_PEM).toString('base64'))
})

t.test('is written owner-only, and its token can be read back', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-kubeconfig-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'kubeconfig.yaml')
  writeKubeconfig(path, options)
  t.equal(statSync(path).mode & 0o777, 0o600)
  t.equal(readFileSync(path, 'utf8'), kubeconfigYaml(options))
  t.equal(readKubeconfigToken(path), 'tok-123')
  t.equal(readKubeconfigToken(join(dir, 'missing.yaml')), undefined)
  writeFileSync(join(dir, 'broken.yaml'), ': : :\n- [')
  t.equal(readKubeconfigToken(join(dir, 'broken.yaml')), undefined)
})
