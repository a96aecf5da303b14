// Services on `bramble up`: the real binary runs the hub and a local agent on the real Docker
// engine (its service rules go into this machine's iptables, its DNS server onto a link-local address).
// A client pod finds a 2-replica Deployment by its Service name and its requests reach both
// replicas through the ClusterIP; a NodePort reaches them at the node's address; a replica whose
// readiness probe fails leaves rotation, and scaling to one replica takes the other out.

import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { clusterContainers, runCli, until } from '../helpers/e2e.js'
import { startHubProcess } from '../helpers/hub-process.js'

const docker = dockerClient()
const unavailable = (await dockerUnavailable(docker)) ?? (process.getuid?.() === 0 ? undefined : 'needs root: the agent programs iptables')

const APP = `
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      terminationGracePeriodSeconds: 1
      containers:
      - name: httpd
        image: ${BUSYBOX_IMAGE}
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{name: http, containerPort: 8080}]
        readinessProbe:
          httpGet: {path: /index.html, port: 8080}
          periodSeconds: 1
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: sh
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`

/** Runs a command in a running container and returns what it printed. */
async function exec(containerId: string, cmd: string[]): Promise<string> {
  const e = await docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true })
  const stream = await e.start({ hijack: true, stdin: false })
  const chunks: Buffer[] = []
  stream.on('data', (d: Buffer) => chunks.push(d))
  await new Promise((r) => stream.on('end', r))
  // Docker multiplexes stdout and stderr: 8-byte frame headers before each chunk.
  const raw = Buffer.concat(chunks)
  let out = ''
  for (let i = 0; i + 8 <= raw.length; ) {
    const len = raw.readUInt32BE(i + 4)
    out += raw.subarray(i + 8, i + 8 + len).toString()
    i += 8 + len
  }
  return out
}

/** One HTTP GET from inside the client pod with busybox nc (its static wget crashes); the body. */
async function get(client: string, host: string, port: number): Promise<string> {
  const out = await exec(client, ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`])
  const body = out.split('\r\n\r\n')[1]
  return body?.trim() ?? ''
}

async function run() {
  await ensureBusyboxImage(docker)
  // An address and a service range of this run's own: other clusters may run on this machine.
  const dns = `169.254.53.${2 + (process.pid % 250)}`
  const serviceCidr = `10.${200 + (process.pid % 50)}.0.0/16`
  const up = await startHubProcess({ command: 'up', args: ['--node-name', 'svc-up', '--cluster-dns', dns, '--service-cidr', serviceCidr] })
  const clusterId = readFileSync(join(up.dataDir, 'cluster-id'), 'utf8').trim()
  t.teardown(async () => {
    await up.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    await up.cleanup()
    // The agent leaves the DNS address on the loopback (pods outlive it); the test does not.
    try {
      execFileSync('ip', ['addr', 'del', `${dns}/32`, 'dev', 'lo'], { stdio: 'ignore' })
    } catch {}
  })
  const bramble = (...args: string[]) => runCli(args, { kubeconfig: up.kubeconfig })
  const getJson = async (...args: string[]) => {
    const r = await bramble('get', ...args, '-o', 'json')
    return r.code === 0 ? JSON.parse(r.stdout) : undefined
  }
  let clusterIP = ''
  let nodePort = 0
  let backends = new Set<string>()
  let client = ''
  await t.test('the Service gets a ClusterIP and a node port; its Endpoints list both replicas', async (t) => {
    const file = join(up.dataDir, 'app.yaml')
    writeFileSync(file, APP)
    const applied = await bramble('apply', '-f', file)
    t.equal(applied.code, 0, applied.stderr)
    const svc = await until('the Service', () => getJson('service', 'web'))
    clusterIP = svc.spec.clusterIP
    nodePort = svc.spec.ports[0].nodePort
    t.equal(clusterIP, serviceCidr.replace('0/16', '1'), 'the first address of --service-cidr')
    t.ok(nodePort >= 30000 && nodePort <= 32767, `node port ${nodePort}`)
    const ep = await until('two ready endpoints', async () => {
      const e = await getJson('endpoints', 'web')
      return e?.subsets?.[0]?.addresses?.length === 2 && e
    })
    backends = new Set<string>(ep.subsets[0].addresses.map((a: any) => a.targetRef.name))
    t.equal(backends.size, 2)
    client = await until('the client pod running', async () => {
      const p = await getJson('pod', 'client')
      if (p?.status?.phase !== 'Running') return undefined
      const [c] = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'client', 'io.bramble.container.name': 'sh' }, false)
      return c?.Id
    })
  })

  await t.test('the client resolves the Service name to its ClusterIP through the node DNS', async (t) => {
    const resolv = await exec(client, ['cat', '/etc/resolv.conf'])
    t.match(resolv, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/)
    t.match(resolv, /ndots:5/)
    // Docker's embedded resolver forwarding to the node DNS, or the node DNS itself: on a user-defined
    // network (the node's pod network) Docker writes its own 127.0.0.11 into resolv.conf and sends
    // what it cannot answer to the servers the container was given; on its default bridge (where
    // pods run when the pod network cannot be made, e.g. another network on this Docker holds an
    // overlapping subnet) the node DNS is in the file.
    const nameservers = [...resolv.matchAll(/^nameserver (\S+)$/gm)].map((m) => m[1])
    if (nameservers.includes(dns)) t.pass(`nameserver ${dns}: the node DNS`)
    else {
      t.same(nameservers, ['127.0.0.11'], `the node DNS ${dns}, or Docker's resolver in its place`)
      const [sandbox] = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': 'client', 'io.bramble.container.role': 'sandbox' }, false)
      t.same((await docker.getContainer(sandbox!.Id).inspect()).HostConfig.Dns, [dns], "Docker's resolver forwards to the node DNS")
    }
    const answer = await until('nslookup of the Service', async () => {
      const out = await exec(client, ['nslookup', 'web.default.svc.cluster.local'])
      return out.includes(clusterIP) && out
    }, 30_000)
    t.match(answer, clusterIP)
  })

  await t.test('requests to the Service by name reach both replicas', async (t) => {
    const seen = new Set<string>()
    await until('answers from both replicas', async () => {
      // `web` alone: the search path makes it web.default.svc.cluster.local.
      const out = await get(client, 'web', 80)
      if (out) seen.add(out)
      return seen.size >= 2
    }, 60_000)
    t.same(seen, backends, `answered by ${[...seen].join(' and ')}`)
  })

  await t.test("the node port reaches the replicas at the node's address", async (t) => {
    const node = await getJson('node', 'svc-up')
    const address = node.status.addresses.find((a: any) => a.type === 'InternalIP').address
    const host = await until('an answer on the node port', async () => {
      const r = await fetch(`http://${address}:${nodePort}/index.html`, { signal: AbortSignal.timeout(3000) }).catch(() => undefined)
      return r?.ok && (await r.text()).trim()
    }, 30_000)
    t.ok(backends.has(host), `answered by ${host}`)
  })

  await t.test('a replica whose readiness probe fails leaves rotation within 5 s of going unready, and comes back', async (t) => {
    const [victim, other] = [...backends]
    const [httpd] = await clusterContainers(docker, clusterId, { 'io.bramble.pod.name': victim!, 'io.bramble.container.name': 'httpd' }, false)
    await exec(httpd!.Id, ['mv', '/www/index.html', '/www/gone.html'])
    await until('the replica not ready in its Endpoints', async () => {
      const e = await getJson('endpoints', 'web')
      return e?.subsets?.[0]?.notReadyAddresses?.some((a: any) => a.targetRef.name === victim)
    }, 30_000)
    const unreadyAt = Date.now()
    await until('only the ready replica answers', async () => {
      for (let i = 0; i < 8; i++) if ((await get(client, clusterIP, 80)) !== other) return false
      return true
    }, 5_000)
    t.pass(`${victim} out of rotation ${Date.now() - unreadyAt} ms after its Endpoints said not ready`)
    await exec(httpd!.Id, ['mv', '/www/gone.html', '/www/index.html'])
    const seen = new Set<string>()
    await until('both answer again', async () => {
      seen.add(await get(client, clusterIP, 80))
      return seen.has(victim!) && seen.has(other!)
    }, 30_000)
    t.pass('back in rotation once ready')
  })

  await t.test('scaled to one replica, only that one answers', async (t) => {
    t.equal((await bramble('scale', 'deployment', 'web', '--replicas', '1')).code, 0)
    const left = await until('one endpoint', async () => {
      const e = await getJson('endpoints', 'web')
      return e?.subsets?.[0]?.addresses?.length === 1 && e.subsets[0].addresses[0].targetRef.name
    })
    await until('only the remaining replica answers', async () => {
      for (let i = 0; i < 8; i++) {
        const out = await get(client, clusterIP, 80)
        if (out !== left) return false
      }
      return true
    }, 30_000)
    t.pass(`only ${left} answers`)
  })
}

if (unavailable) t.plan(0, unavailable)
else await run()
