// Getting into a pod on another host, through the real binaries: the hub in the root namespace,
// the agent (with its own dockerd) in a network namespace. The hub dials no pod: `bramble exec`
// and `bramble port-forward`, and the pinned kubectl's, reach the pod over the node's MQTT link,
// which the node opened to the hub (so a node behind NAT serves them too).

import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { join } from 'node:path'
import t from 'tap'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { runCli, until } from '../helpers/e2e.js'
import { BRAMBLE_BIN } from '../helpers/hub-process.js'
import { findKubectl } from '../helpers/kubectl.js'
import { NetnsCluster, podReady } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'

const NODE = 'ex-edge'

function fetchText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/', timeout: 30_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve(text))
    }).on('error', reject)
  })
}

async function run() {
  const cluster = await NetnsCluster.start({ prefix: 'ex' })
  t.teardown(() => cluster.cleanup())
  await cluster.addNode(NODE)
  const file = join(cluster.hub.dataDir, 'ex-pods.yaml')
  writeFileSync(
    file,
    `
apiVersion: v1
kind: Pod
metadata: {name: ex-edge-web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'mkdir -p /www && echo served-from-the-edge > /www/index.html && exec httpd -f -p 8080 -h /www']
`,
  )
  await cluster.bramble('apply', '-f', file)
  await until('the pod Running', async () => podReady(await cluster.get('/api/v1/namespaces/default/pods/ex-edge-web')), 90_000)
  const kubeconfig = cluster.hub.kubeconfig

  await t.test('bramble exec runs in it, with stdin and the exit code', async (t) => {
    const hello = await runCli(['exec', 'ex-edge-web', '--', 'cat', '/www/index.html'], { kubeconfig })
    t.equal(hello.code, 0, hello.stderr)
    t.equal(hello.stdout, 'served-from-the-edge\n')
    const piped = await runCli(['exec', '-i', 'ex-edge-web', '--', 'sh', '-c', 'wc -l; exit 9'], { kubeconfig, stdin: 'a\nb\nc\n' })
    t.equal(piped.code, 9, piped.stderr)
    t.equal(piped.stdout.trim(), '3')
  })

  await t.test('bramble port-forward fetches from it', async (t) => {
    const child = spawn(process.execPath, [BRAMBLE_BIN, '--kubeconfig', kubeconfig, 'port-forward', 'ex-edge-web', ':8080'])
    t.teardown(() => void child.kill())
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const port = await until('bramble port-forward listening', () => Number(/127\.0\.0\.1:(\d+) -> 8080/.exec(out)?.[1]), 60_000)
    t.equal(await fetchText(port), 'served-from-the-edge\n')
  })

  const kubectl = findKubectl('1.32') ?? findKubectl('1.33')
  await t.test('kubectl exec and port-forward reach it too', { skip: kubectl ? false : 'no pinned kubectl 1.32 or 1.33 on this machine' }, async (t) => {
    const home = join(cluster.hub.dataDir, 'kubectl-home')
    const base = ['--kubeconfig', kubeconfig, '--cache-dir', join(home, 'cache')]
    const exec = await runCli([...base, 'exec', 'ex-edge-web', '--', 'sh', '-c', 'cat /www/index.html; exit 6'], { bin: kubectl! })
    t.equal(exec.code, 6, exec.stderr)
    t.equal(exec.stdout, 'served-from-the-edge\n')
    const child = spawn(kubectl!, [...base, 'port-forward', 'pod/ex-edge-web', ':8080'], { env: { PATH: process.env.PATH, HOME: home } })
    t.teardown(() => void child.kill())
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const port = await until('kubectl port-forward listening', () => Number(/127\.0\.0\.1:(\d+) -> 8080/.exec(out)?.[1]), 60_000)
    t.equal(await fetchText(port), 'served-from-the-edge\n')
  })
}

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()
