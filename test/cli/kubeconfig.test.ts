// Which kubeconfig a client command reads, and what it takes from it.

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import t from 'tap'
import { stringify } from 'yaml'
import { KubeconfigError } from '../../src/cli/errors.js'
import { exitCodeOf } from '../../src/cli/errors.js'
import { clientConfigOf, loadClientConfig, resolveKubeconfigPath } from '../../src/cli/kubeconfig.js'

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

function kubeconfig(overrides: { namespace?: string; cluster?: Record<string, unknown>; user?: Record<string, unknown> } = {}) {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    'current-context': 'bramble',
    clusters: [
      { name: 'other', cluster: { server: 'https://10.0.0.9:6443' } },
      { name: 'bramble', cluster: overrides.cluster ?? { server: 'https://127.0.0.1:6443/', 'certificate-authority-data': Buffer.from(CA).toString('base64') } },
    ],
    contexts: [
      { name: 'other', context: { cluster: 'other', user: 'nobody' } },
      { name: 'bramble', context: { cluster: 'bramble', user: 'admin', ...(overrides.namespace ? { namespace: overrides.namespace } : {}) } },
    ],
    users: [
      { name: 'nobody', user: { token: 'wrong' } },
      { name: 'admin', user: overrides.user ?? { token: 'tok-123' } },
    ],
  }
}

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-cli-kc-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('--kubeconfig wins over KUBECONFIG and the data dir', async (t) => {
  const dir = tempDir(t)
  const flag = join(dir, 'flag.yaml')
  const env = join(dir, 'env.yaml')
  writeFileSync(flag, 'x')
  writeFileSync(env, 'x')
  mkdirSync(join(dir, 'data'))
  writeFileSync(join(dir, 'data', 'kubeconfig.yaml'), 'x')
  t.equal(resolveKubeconfigPath(flag, { KUBECONFIG: env, BRAMBLE_DATA_DIR: join(dir, 'data') }), flag)
})

t.test('KUBECONFIG gives the first of its files that exists', async (t) => {
  const dir = tempDir(t)
  const second = join(dir, 'second.yaml')
  writeFileSync(second, 'x')
  t.equal(resolveKubeconfigPath(undefined, { KUBECONFIG: [join(dir, 'missing.yaml'), second].join(delimiter), BRAMBLE_DATA_DIR: dir }), second)
})

t.test("without flag or KUBECONFIG, the default data dir's kubeconfig.yaml", async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'kubeconfig.yaml'), 'x')
  t.equal(resolveKubeconfigPath(undefined, { BRAMBLE_DATA_DIR: dir }), join(dir, 'kubeconfig.yaml'))
  t.equal(resolveKubeconfigPath(undefined, { KUBECONFIG: join(dir, 'nope.yaml'), BRAMBLE_DATA_DIR: dir }), join(dir, 'kubeconfig.yaml'), 'KUBECONFIG naming no existing file falls through')
})

t.test('no kubeconfig anywhere is a one-sentence error saying what to do', async (t) => {
  const dir = tempDir(t)
  const err = t.throws(() => resolveKubeconfigPath(undefined, { BRAMBLE_DATA_DIR: dir })) as Error
  t.type(err, KubeconfigError)
  t.equal(err.message, 'no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or run `bramble up` first')
  t.equal(exitCodeOf(err), 2)
  t.throws(() => resolveKubeconfigPath(join(dir, 'absent.yaml'), {}), /absent\.yaml given by --kubeconfig does not exist/)
})

t.test('reads the current context: server, inline CA, token, namespace default', async (t) => {
  const config = clientConfigOf(kubeconfig(), '/x/kubeconfig.yaml')
  t.equal(config.server, 'https://127.0.0.1:6443', 'trailing slash dropped')
  t.equal(config.ca, CA)
  t.equal(config.token, 'tok-123')
  t.equal(config.namespace, 'default')
})

t.test("takes the context's namespace, and CA and token from files relative to the kubeconfig", async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'ca.crt'), CA)
  writeFileSync(join(dir, 'token'), 'from-file\n')
  const path = join(dir, 'kubeconfig.yaml')
  writeFileSync(path, stringify(kubeconfig({ namespace: 'shop', cluster: { server: 'https://hub:6443', 'certificate-authority': 'ca.crt' }, user: { tokenFile: join(dir, 'token') } })))
  const config = loadClientConfig(path)
  t.equal(config.namespace, 'shop')
  t.equal(config.ca, CA)
  t.equal(config.token, 'from-file')
  t.equal(config.server, 'https://hub:6443')
})

t.test('a kubeconfig whose context names no cluster is refused', async (t) => {
  const doc = kubeconfig()
  doc['current-context'] = 'ghost'
  t.throws(() => clientConfigOf(doc, '/k.yaml'), /no context named "ghost"/)
})
