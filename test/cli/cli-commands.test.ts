// `bramble get|describe|apply|delete|scale` against a real hub: the built binary as a user runs it,
// judged by its stdout, stderr and exit code.

import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { BRAMBLE_BIN, REPO_ROOT, startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const GUESTBOOK = join(REPO_ROOT, '..', 'shared', 'manifests', 'guestbook.yaml')

interface Run {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs `bramble ARGS` with a clean environment (no KUBECONFIG), feeding `input` on stdin. */
function bramble(args: string[], options: { input?: string; env?: Record<string, string> } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const env: Record<string, string | undefined> = { ...process.env, KUBECONFIG: undefined, ...options.env }
    delete env.KUBECONFIG
    if (options.env?.KUBECONFIG) env.KUBECONFIG = options.env.KUBECONFIG
    const child = spawn(process.execPath, [BRAMBLE_BIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d) => (stdout += d))
    child.stderr.on('data', (d) => (stderr += d))
    child.on('error', reject)
    child.on('close', (code) => resolve({ code, stdout, stderr }))
    child.stdin.end(options.input ?? '')
  })
}

let hub: HubProcess
let scratch: string
const kc = () => ['--kubeconfig', hub.kubeconfig]

t.before(async () => {
  hub = await startHubProcess()
  scratch = mkdtempSync(join(tmpdir(), 'bramble-cli-'))
})
t.teardown(async () => {
  await hub?.cleanup()
  if (scratch) rmSync(scratch, { recursive: true, force: true })
})

t.test('apply creates every object of a multi-document manifest', async (t) => {
  const run = await bramble([...kc(), 'apply', '-f', GUESTBOOK])
  t.equal(run.code, 0, run.stderr)
  t.same(run.stdout.trim().split('\n').sort(), [
    'deployment.apps/frontend created',
    'deployment.apps/redis-master created',
    'deployment.apps/redis-replica created',
    'service/frontend created',
    'service/redis-master created',
    'service/redis-replica created',
  ])
})

t.test('get prints an aligned table with upper-case headers', async (t) => {
  const run = await bramble([...kc(), 'get', 'deployments'])
  t.equal(run.code, 0, run.stderr)
  const lines = run.stdout.trim().split('\n')
  t.match(lines[0], /^NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE$/)
  t.same(lines.slice(1).map((l) => l.split(/\s+/)[0]), ['frontend', 'redis-master', 'redis-replica'])
  const ageAt = lines[0].indexOf('AGE')
  for (const l of lines.slice(1)) t.not(l[ageAt], ' ', 'cells start under their header')

  const wide = await bramble([...kc(), 'get', 'deploy', '-o', 'wide'])
  t.match(wide.stdout.split('\n')[0], /CONTAINERS\s+IMAGES\s+SELECTOR/)
  t.match(wide.stdout, /gcr\.io\/google-samples\/gb-frontend:v4/)
})

t.test('get -A leads with the namespace; -o name prints type/name', async (t) => {
  const all = await bramble([...kc(), 'get', 'svc', '-A'])
  t.match(all.stdout.split('\n')[0], /^NAMESPACE\s+NAME\s+TYPE/)
  t.match(all.stdout, /^default\s+frontend\s+NodePort/m)
  const names = await bramble([...kc(), 'get', 'deploy,svc', '-o', 'name'])
  t.same(names.stdout.trim().split('\n'), ['deployment.apps/frontend', 'deployment.apps/redis-master', 'deployment.apps/redis-replica', 'service/frontend', 'service/redis-master', 'service/redis-replica'])
  // The guestbook labels its Services, not its Deployments.
  const labelled = await bramble([...kc(), 'get', 'deploy,svc', '-o', 'name', '-l', 'app=redis'])
  t.same(labelled.stdout.trim().split('\n'), ['service/redis-master', 'service/redis-replica'])
})

t.test('get -o yaml and -o json print the stored object with its resourceVersion', async (t) => {
  const yaml = await bramble([...kc(), 'get', 'deploy', 'frontend', '-o', 'yaml'])
  t.equal(yaml.code, 0, yaml.stderr)
  const obj = parseYaml(yaml.stdout)
  t.equal(obj.kind, 'Deployment')
  t.match(obj.metadata.resourceVersion, /^\d+$/)
  const list = JSON.parse((await bramble([...kc(), 'get', 'svc', '-o', 'json'])).stdout)
  t.equal(list.kind, 'List')
  t.equal(list.items.length, 3)
  t.ok(list.items.every((s: any) => s.kind === 'Service' && s.metadata.resourceVersion))
})

t.test('an empty list says so on stderr and succeeds', async (t) => {
  const run = await bramble([...kc(), 'get', 'configmaps', '-n', 'empty-ns'])
  t.equal(run.code, 0)
  t.equal(run.stdout, '')
  t.equal(run.stderr, 'No resources found in empty-ns namespace.\n')
})

t.test('re-applying the same manifests changes nothing', async (t) => {
  const before = parseYaml((await bramble([...kc(), 'get', 'deploy', 'frontend', '-o', 'yaml'])).stdout)
  const run = await bramble([...kc(), 'apply', '-f', GUESTBOOK])
  t.equal(run.code, 0, run.stderr)
  t.ok(run.stdout.trim().split('\n').every((l) => l.endsWith(' unchanged')), run.stdout)
  const after = parseYaml((await bramble([...kc(), 'get', 'deploy', 'frontend', '-o', 'yaml'])).stdout)
  t.equal(after.metadata.resourceVersion, before.metadata.resourceVersion, 'nothing was written')
})

t.test('a changed image configures that deployment alone and keeps its env', async (t) => {
  const changed = join(scratch, 'guestbook-v5.yaml')
  writeFileSync(changed, readFileSync(GUESTBOOK, 'utf8').replace('gb-frontend:v4', 'gb-frontend:v5'))
  const run = await bramble([...kc(), 'apply', '-f', changed])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^deployment\.apps\/frontend configured$/m)
  t.equal(run.stdout.match(/configured/g)?.length, 1)
  const live = JSON.parse((await bramble([...kc(), 'get', 'deploy/frontend', '-o', 'json'])).stdout)
  const container = live.spec.template.spec.containers[0]
  t.equal(container.image, 'gcr.io/google-samples/gb-frontend:v5')
  t.same(container.env, [{ name: 'GET_HOSTS_FROM', value: 'dns' }])
  const again = await bramble([...kc(), 'apply', '-f', changed])
  t.match(again.stdout, /^deployment\.apps\/frontend unchanged$/m)
})

t.test('apply reads stdin with -f -, and a field dropped from the manifest is removed', async (t) => {
  const cm = (data: Record<string, string>) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data })
  t.match((await bramble([...kc(), 'apply', '-f', '-', '-n', 'default'], { input: cm({ a: '1', b: '2' }) })).stdout, 'configmap/settings created')
  t.match((await bramble([...kc(), 'apply', '-f', '-'], { input: cm({ a: '1' }) })).stdout, 'configmap/settings configured')
  const live = JSON.parse((await bramble([...kc(), 'get', 'cm', 'settings', '-o', 'json'])).stdout)
  t.same(live.data, { a: '1' })
})

t.test('a refused document is reported and the others still apply; the exit code is 1', async (t) => {
  const file = join(scratch, 'mixed.yaml')
  writeFileSync(
    file,
    [
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\nbogusField: 1\ndata:\n  x: "1"',
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: good\ndata:\n  x: "1"',
    ].join('\n---\n'),
  )
  const run = await bramble([...kc(), 'apply', '-f', file])
  t.equal(run.code, 1)
  t.match(run.stdout, /^configmap\/good created$/m)
  t.match(run.stderr, /bogusField/)
  t.match(run.stderr, /1 of 2 objects could not be applied/)
})

t.test('warnings from the hub are printed on stderr as kubectl prints them', async (t) => {
  const pod = JSON.stringify({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'warned' },
    spec: { priorityClassName: 'high', containers: [{ name: 'c', image: 'busybox' }] },
  })
  const run = await bramble([...kc(), 'apply', '-f', '-'], { input: pod })
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'pod/warned created\n')
  t.match(run.stderr, /^Warning: .*priorityClassName/m)
})

t.test('a hub that is not there is exit 1 naming its address', async (t) => {
  const config = readFileSync(hub.kubeconfig, 'utf8').replace(/server: https:\/\/127\.0\.0\.1:\d+/, 'server: https://127.0.0.1:1')
  const path = join(scratch, 'unreachable.yaml')
  writeFileSync(path, config)
  const run = await bramble(['--kubeconfig', path, 'get', 'pods'])
  t.equal(run.code, 1)
  t.match(run.stderr, 'cannot reach the hub at https://127.0.0.1:1: connection refused')
})

t.test('describe shows the object in sections and its events', async (t) => {
  const run = await bramble([...kc(), 'describe', 'deploy', 'redis-replica'])
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^Name:\s+redis-replica$/m)
  t.match(run.stdout, /^Namespace:\s+default$/m)
  t.match(run.stdout, /^Replicas:\s+2 desired/m)
  t.match(run.stdout, /^\s+Image:\s+gcr\.io\/google_samples\/gb-redisslave:v1$/m)
  t.match(run.stdout, /^\s+Environment:\s+GET_HOSTS_FROM: dns$/m)
  t.match(run.stdout, /^Events:/m)
})

t.test('describe of a secret shows sizes, never values', async (t) => {
  const secret = JSON.stringify({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, data: { password: Buffer.from('hunter22').toString('base64') } })
  t.equal((await bramble([...kc(), 'apply', '-f', '-'], { input: secret })).code, 0)
  const run = await bramble([...kc(), 'describe', 'secret/creds'])
  t.match(run.stdout, /^\s+password:\s+8 bytes$/m)
  t.notMatch(run.stdout, /hunter22|aHVudGVyMjI/)
})

t.test('scale sets the replica count through the scale subresource', async (t) => {
  const run = await bramble([...kc(), 'scale', 'deploy/redis-replica', '--replicas=4'])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'deployment.apps/redis-replica scaled\n')
  const live = JSON.parse((await bramble([...kc(), 'get', 'deploy', 'redis-replica', '-o', 'json'])).stdout)
  t.equal(live.spec.replicas, 4)
  t.equal((await bramble([...kc(), 'scale', 'deployment', 'redis-replica', '--replicas', '2'])).code, 0)
})

t.test('scale without a valid --replicas is a usage error', async (t) => {
  for (const args of [['scale', 'deploy/frontend'], ['scale', 'deploy/frontend', '--replicas=-1'], ['scale', 'deploy/frontend', '--replicas=two']]) {
    const run = await bramble([...kc(), ...args])
    t.equal(run.code, 2, args.join(' '))
    t.match(run.stderr, /replicas/)
  }
})

t.test('delete prints what it deleted; deleting it again is a server error', async (t) => {
  const run = await bramble([...kc(), 'delete', 'deploy', 'frontend'])
  t.equal(run.code, 0, run.stderr)
  t.equal(run.stdout, 'deployment.apps "frontend" deleted\n')
  const again = await bramble([...kc(), 'delete', 'deploy/frontend'])
  t.equal(again.code, 1)
  t.match(again.stderr, /"frontend" not found/)
  const byLabel = await bramble([...kc(), 'delete', 'svc', '-l', 'app=redis'])
  t.same(byLabel.stdout.trim().split('\n'), ['service "redis-master" deleted', 'service "redis-replica" deleted'])
})

t.test('a missing object is exit 1 with one sentence on stderr', async (t) => {
  const run = await bramble([...kc(), 'get', 'deploy', 'nope'])
  t.equal(run.code, 1)
  t.equal(run.stdout, '')
  t.equal(run.stderr.trim().split('\n').length, 1)
  t.match(run.stderr, /deployments\.apps "nope" not found/)
})

t.test('usage errors exit 2: an unknown type, a bad flag, a bad output format', async (t) => {
  const unknown = await bramble([...kc(), 'get', 'foo'])
  t.equal(unknown.code, 2)
  t.match(unknown.stderr, /unknown resource type "foo"/)
  t.equal((await bramble([...kc(), 'get', 'pods', '--bogus'])).code, 2)
  t.equal((await bramble([...kc(), 'get', 'pods', '-o', 'jsonpath={.items}'])).code, 2)
})

t.test('without any kubeconfig, a client command says how to get one', async (t) => {
  const empty = mkdtempSync(join(tmpdir(), 'bramble-nodata-'))
  t.teardown(() => rmSync(empty, { recursive: true, force: true }))
  const run = await bramble(['get', 'pods'], { env: { BRAMBLE_DATA_DIR: empty } })
  t.equal(run.code, 2)
  t.match(run.stderr, 'no kubeconfig found: pass --kubeconfig, set KUBECONFIG, or run `bramble up` first')
})

t.test('KUBECONFIG is used when --kubeconfig is not given', async (t) => {
  const run = await bramble(['get', 'ns'], { env: { KUBECONFIG: hub.kubeconfig } })
  t.equal(run.code, 0, run.stderr)
  t.match(run.stdout, /^default\s+Active/m)
})

t.test('get -w prints the list, then a row for each change', async (t) => {
  const first = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'listed', labels: { watch: 'me' } }, data: { k: 'v' } })
  t.equal((await bramble([...kc(), 'apply', '-f', '-'], { input: first })).code, 0)
  const child = spawn(process.execPath, [BRAMBLE_BIN, ...kc(), 'get', 'configmaps', '-w', '-l', 'watch=me'], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const seen = (re: RegExp) =>
    new Promise<void>((resolve, reject) => {
      const deadline = setTimeout(() => reject(new Error(`no ${re} in ${JSON.stringify(out)}`)), 20_000)
      const check = () => {
        if (re.test(out)) {
          clearTimeout(deadline)
          child.stdout.off('data', check)
          resolve()
        }
      }
      child.stdout.on('data', check)
      check()
    })
  const cm = (name: string) => JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { watch: 'me' } }, data: { k: 'v' } })
  await seen(/^NAME\s+DATA\s+AGE\n(.*\n)*listed\s+1\s/m)
  // The list is printed, and the watch starts from its revision: what is created now must show.
  t.equal((await bramble([...kc(), 'apply', '-f', '-'], { input: cm('watched') })).code, 0)
  await seen(/^watched\s+1\s/m)
  t.equal(out.match(/^NAME/gm)?.length, 1, 'one header')
})
