// The real kubectl, every pinned version from 1.29 to 1.33 found on this machine, against a real hub.

import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parse as parseYaml } from 'yaml'
import { dockerClient, removeClusterContainers } from '../helpers/docker.js'
import { REPO_ROOT, startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { pinnedKubectls, runKubectl, type KubectlRun } from '../helpers/kubectl.js'

const FIXTURES = join(REPO_ROOT, 'test', 'fixtures', 'manifests')
const GUESTBOOK = join(REPO_ROOT, '..', 'shared', 'manifests', 'guestbook.yaml')


const found = pinnedKubectls()

let hub: HubProcess
const home = mkdtempSync(join(tmpdir(), 'bramble-kubectl-home-'))

function kubectl(bin: string, args: string[]): Promise<KubectlRun> {
  return runKubectl(bin, hub.kubeconfig, home, args)
}

if (found.length === 0) {
  t.comment('no pinned kubectl (kubectl.1.29 ... kubectl.1.33) on PATH or in /usr/lib/google-cloud-sdk/bin: skipping the kubectl end-to-end tests')
  t.pass('skipped: no kubectl found')
} else {
  t.before(async () => {
    // `bramble up`: the one-command cluster of the README (its agent runs the pods of the Deployments
    // applied here, though their images are not on this machine)
    hub = await startHubProcess({ command: 'up', args: ['--node-name', 'kubectl-e2e'] })
  })
  t.teardown(async () => {
    if (!hub) return
    await hub.stop()
    // Pods outlive their agent (offline autonomy): the cluster's containers go once it has stopped.
    await removeClusterContainers(dockerClient(), readFileSync(join(hub.dataDir, 'cluster-id'), 'utf8').trim()).catch((err) => t.comment(`the cluster's containers stay: ${err.message}`))
    await hub.cleanup()
  })

  for (const { version, bin } of found) {
    t.test(`kubectl ${version}`, async (t) => {
      const ns = `v${version.replace('.', '')}`
      const run = (...args: string[]) => kubectl(bin, args)

      t.test('create namespace sends protobuf and is accepted', async (t) => {
        const r = await run('create', 'namespace', ns)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, `namespace/${ns} created`)
      })

      t.test('apply creates a ConfigMap, Deployment and Service from one multi-document file', async (t) => {
        const r = await run('apply', '-n', ns, '-f', join(FIXTURES, 'app.yaml'))
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, 'configmap/app-config created')
        t.match(r.stdout, 'deployment.apps/web created')
        t.match(r.stdout, 'service/web created')
      })

      t.test('get -o yaml returns them with resourceVersions', async (t) => {
        const r = await run('get', 'deployments,services,configmaps', '-n', ns, '-o', 'yaml')
        t.equal(r.code, 0, r.stderr)
        const list = parseYaml(r.stdout)
        const names = list.items.map((i: any) => `${i.kind}/${i.metadata.name}`)
        t.ok(names.includes('Deployment/web') && names.includes('Service/web') && names.includes('ConfigMap/app-config'), names.join(' '))
        for (const item of list.items) t.match(item.metadata.resourceVersion, /^\d+$/)
      })

      t.test('re-apply with a changed image patches it and keeps the env', async (t) => {
        const r = await run('apply', '-n', ns, '-f', join(FIXTURES, 'app-v2.yaml'))
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, 'deployment.apps/web configured')
        t.match(r.stdout, 'configmap/app-config unchanged')
        const d = JSON.parse((await run('get', 'deployment', 'web', '-n', ns, '-o', 'json')).stdout)
        const c = d.spec.template.spec.containers[0]
        t.equal(c.image, 'nginx:1.27')
        t.same(c.env.map((e: any) => e.name), ['GREETING', 'MODE'])
        t.equal(d.metadata.generation, 2)
      })

      t.test('a third apply changes nothing', async (t) => {
        const r = await run('apply', '-n', ns, '-f', join(FIXTURES, 'app-v2.yaml'))
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, 'deployment.apps/web unchanged')
        t.match(r.stdout, 'service/web unchanged')
      })

      t.test('an invalid manifest is refused naming the bad fields, and nothing is stored', async (t) => {
        const r = await run('apply', '-n', ns, '-f', join(FIXTURES, 'invalid.yaml'))
        t.not(r.code, 0)
        t.match(r.stderr, /is invalid/)
        t.match(r.stderr, 'spec.replicas')
        t.match(r.stderr, 'spec.template.spec.containers[0].name')
        t.match(r.stderr, 'spec.template.spec.containers[0].resources.requests.memory')
        const g = await run('get', 'deployment', 'broken', '-n', ns)
        t.not(g.code, 0)
        t.match(g.stderr, /not found/)
      })

      t.test('an unknown field is refused by server-side validation', async (t) => {
        const r = await run('apply', '-n', ns, '-f', join(FIXTURES, 'unknown-field.yaml'))
        t.not(r.code, 0)
        t.match(r.stderr, 'unknown field "dataa"')
        t.not((await run('get', 'configmap', 'typo', '-n', ns)).code, 0, 'nothing stored')
      })

      t.test('get shows tables: wide columns, -A, -l, -o name and jsonpath', async (t) => {
        const wide = await run('get', 'deployments', '-n', ns, '-o', 'wide')
        t.equal(wide.code, 0, wide.stderr)
        t.match(wide.stdout, /NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR/)
        t.match(wide.stdout, /web\s+\d\/2\s+\d+\s+\d+\s+\S+\s+web\s+nginx:1.27\s+app=web/)
        const all = await run('get', 'services', '-A')
        t.match(all.stdout, /NAMESPACE\s+NAME\s+TYPE\s+CLUSTER-IP/)
        t.match(all.stdout, new RegExp(`${ns}\\s+web\\s+ClusterIP`))
        const named = await run('get', 'deployments', '-n', ns, '-l', 'app=web', '-o', 'name')
        t.equal(named.stdout.trim(), 'deployment.apps/web')
        const none = await run('get', 'deployments', '-n', ns, '-l', 'app=nothing')
        t.match(none.stderr, /No resources found/)
        const jp = await run('get', 'deployment', 'web', '-n', ns, '-o', 'jsonpath={.spec.template.spec.containers[0].image}')
        t.equal(jp.stdout, 'nginx:1.27')
      })

      t.test('create configmap and secret send protobuf and are stored', async (t) => {
        const cm = await run('create', 'configmap', 'extra', '-n', ns, '--from-literal=a=b')
        t.equal(cm.code, 0, cm.stderr)
        t.match(cm.stdout, 'configmap/extra created')
        const s = await run('create', 'secret', 'generic', 'creds', '-n', ns, '--from-literal=password=hunter2')
        t.equal(s.code, 0, s.stderr)
        const got = JSON.parse((await run('get', 'secret', 'creds', '-n', ns, '-o', 'json')).stdout)
        t.equal(Buffer.from(got.data.password, 'base64').toString(), 'hunter2')
        t.equal(got.type, 'Opaque')
      })

      t.test('scale sets replicas through the scale subresource', async (t) => {
        const r = await run('scale', 'deployment', 'web', '-n', ns, '--replicas=3')
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, 'deployment.apps/web scaled')
        const jp = await run('get', 'deployment', 'web', '-n', ns, '-o', 'jsonpath={.spec.replicas}')
        t.equal(jp.stdout, '3')
      })

      t.test('describe shows the object and its events', async (t) => {
        const r = await run('describe', 'deployment', 'web', '-n', ns)
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, /Name:\s+web/)
        t.match(r.stdout, /Namespace:\s+/)
        t.match(r.stdout, /Events:/)
        const svc = await run('describe', 'service', 'web', '-n', ns)
        t.equal(svc.code, 0, svc.stderr)
        t.match(svc.stdout, /Selector:\s+app=web/)
      })

      t.test('delete removes the objects and the namespace with what is in it', async (t) => {
        const r = await run('delete', '-n', ns, '-f', join(FIXTURES, 'app.yaml'))
        t.equal(r.code, 0, r.stderr)
        t.match(r.stdout, 'deployment.apps "web" deleted')
        const d = await run('delete', 'namespace', ns)
        t.equal(d.code, 0, d.stderr)
        const g = await run('get', 'configmap', 'extra', '-n', ns)
        t.not(g.code, 0)
      })
    })
  }

  t.test('the guestbook example applies as it is', async (t) => {
    if (!existsSync(GUESTBOOK)) {
      t.comment(`${GUESTBOOK} is missing: skipping the guestbook apply`)
      return
    }
    const r = await kubectl(found[found.length - 1].bin, ['apply', '-f', GUESTBOOK])
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout.trim().split('\n').filter((l) => l.endsWith(' created')).length, 6)
  })
}
