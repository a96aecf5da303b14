// The mesh end to end (issue 5's "Done when"): `bramble hub` and three `bramble agent`s (msa, msb,
// msc), each in a network namespace of its own with its own dockerd and wireguard-go interface.
// A 2-replica Deployment of busybox httpd servers runs on msb and msc (node affinity by name, one
// per node by anti-affinity) behind a Service; a client pod on msa asks for it by name, through
// msa's DNS server, its ClusterIP rules, the WireGuard tunnel and the other node's bridge: the
// answers come from both nodes (each seeing the client's own pod IP), msa's transfer counters
// grow, and 256 KiB answers arrive whole (full-size packets fit the tunnel). A replica that goes
// unready, or is deleted, leaves rotation within 5 s; every agent's rules and DNS address are in
// its own namespace; a restarted agent brings back its interface, routes and rules each once;
// deleting a Node removes its peer from the others. msa and msb run Docker with its iptables
// rules (DOCKER-USER), msc without (the pod network's rules then go into FORWARD).

import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t from 'tap'
import { WireGuardLink } from '../../src/agent/wireguard-link.js'
import { containsIp, parseCidr } from '../../src/mesh/ipam.js'
import { chainsFor } from '../../src/mesh/proxy-rules.js'
import type { WireGuardState } from '../../src/mesh/wireguard-port.js'
import { apiRequest } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE } from '../helpers/busybox-image.js'
import { until } from '../helpers/e2e.js'
import { NetnsCluster, podReady, wireguardInterfaceOf, type AgentProcess } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'
import { wireguardNetnsUnavailable } from '../helpers/wireguard-netns.js'

const run = promisify(execFile)

const APP = {
  deployment: {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default' },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          terminationGracePeriodSeconds: 1,
          affinity: {
            nodeAffinity: {
              // Terms are ORed; a field selector takes one value.
              requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: ['msb', 'msc'].map((n) => ({ matchFields: [{ key: 'metadata.name', operator: 'In', values: [n] }] })) },
            },
            podAntiAffinity: {
              requiredDuringSchedulingIgnoredDuringExecution: [{ labelSelector: { matchLabels: { app: 'web' } }, topologyKey: 'kubernetes.io/hostname' }],
            },
          },
          containers: [
            {
              name: 'httpd',
              image: BUSYBOX_IMAGE,
              imagePullPolicy: 'IfNotPresent',
              command: ['sh', '-c', 'mkdir -p /www && hostname > /www/index.html && yes 0123456789abcdef | head -c 262144 > /www/big && exec httpd -f -vv -p 8080 -h /www'],
              ports: [{ name: 'http', containerPort: 8080 }],
              readinessProbe: { httpGet: { path: '/index.html', port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    },
  },
  service: {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: 'web', namespace: 'default' },
    spec: { selector: { app: 'web' }, ports: [{ port: 80, targetPort: 'http' }] },
  },
  client: {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'client', namespace: 'default' },
    spec: {
      nodeName: 'msa',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'sh', image: BUSYBOX_IMAGE, imagePullPolicy: 'IfNotPresent', command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }],
    },
  },
}

/** Runs a command in a running container of a node's dockerd and returns what it printed. */
async function exec(agent: AgentProcess, containerId: string, cmd: string[]): Promise<string> {
  const e = await agent.host.docker.getContainer(containerId).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true })
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

/** A command inside a host's network namespace (where its agent runs); its stdout. */
async function inNetns(agent: AgentProcess, cmd: string[]): Promise<string> {
  const { stdout } = await run('nsenter', agent.host.nsenter(cmd), { timeout: 20_000 })
  return stdout
}

/** iptables-save's rule lines, each prefixed with its table: the same rule text may stand in two tables. */
function tableLines(save: string): string[] {
  let table = ''
  const lines: string[] = []
  for (const line of save.split('\n')) {
    if (line.startsWith('*')) table = line.slice(1)
    else if (line.startsWith('-A ')) lines.push(`${table} ${line}`)
  }
  return lines
}

const unavailable = (await netnsUnavailable()) ?? (await wireguardNetnsUnavailable())
if (unavailable) t.plan(0, unavailable)
else {
  const cluster = await NetnsCluster.start()
  t.teardown(() => cluster.cleanup())
  const withDiagnostics = async <T>(p: Promise<T>): Promise<T> => p.catch(async (err) => Promise.reject(new Error(`${(err as Error).message}\n${await cluster.diagnostics()}`)))
  // msa and msb run Docker as hosts do (its iptables rules: FORWARD policy DROP, DOCKER-USER);
  // msc's Docker leaves iptables alone (--iptables=false): both kinds of node in one cluster.
  await withDiagnostics(Promise.all([cluster.addNode('msa', { dockerIptables: true }), cluster.addNode('msb', { dockerIptables: true }), cluster.addNode('msc')]))
  const clusterId = readFileSync(join(cluster.hub.dataDir, 'cluster-id'), 'utf8').trim()
  const show = (node: string): Promise<WireGuardState | undefined> => {
    const agent = cluster.agent(node)
    return new WireGuardLink({ netns: agent.host.netns }).show(wireguardInterfaceOf(agent.host))
  }
  const keyOf = async (node: string): Promise<string> => (await cluster.get(`/api/v1/nodes/${node}`)).metadata.annotations['bramble.io/wireguard-public-key']
  const post = async (path: string, body: unknown) => {
    const res = await apiRequest(cluster.hub, 'POST', path, body)
    if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${res.text}`)
    return res.json
  }
  const endpoints = () => cluster.get('/api/v1/namespaces/default/endpoints/web')
  const clientContainer = async (): Promise<string | undefined> => {
    const [c] = await cluster.agent('msa').host.docker.listContainers({ filters: { label: ['io.bramble.pod.name=client', 'io.bramble.container.name=sh'] } })
    return c?.Id
  }
  /** One HTTP GET from the client pod with busybox nc (its static wget crashes): the body, or '' when none came. */
  const get = async (host: string, port: number): Promise<string> => {
    const id = await clientContainer()
    if (!id) return ''
    const out = await exec(cluster.agent('msa'), id, ['sh', '-c', `printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${host} ${port}`])
    return out.split('\r\n\r\n')[1]?.trim() ?? ''
  }

  /** The size of /big as the client pod received it (the body after the headers). */
  const bigSize = async (host: string, port: number): Promise<number> => {
    const out = await exec(cluster.agent('msa'), (await clientContainer())!, ['sh', '-c', `printf 'GET /big HTTP/1.0\r\n\r\n' | nc -w 5 ${host} ${port} | sed -e '1,/^\r$/d' | wc -c`])
    return Number(out.trim())
  }
  const readyBackends = async () => {
    const ready = await withDiagnostics(until('two ready endpoints', async () => {
      const e = await endpoints()
      return e?.subsets?.[0]?.addresses?.length === 2 && !e.subsets[0].notReadyAddresses?.length && e.subsets[0].addresses
    }, 120_000))
    return new Map<string, string>(ready.map((a: any) => [a.targetRef.name, a.nodeName]))
  }

  let backends = new Map<string, string>() // pod name → node
  let clusterIP = ''

  await t.test('the mesh, the Service and its pods come up: web on msb and msc, the client on msa', async (t) => {
    await withDiagnostics(
      until('two peers on each node', async () => {
        for (const n of ['msa', 'msb', 'msc']) if ((await show(n))?.peers.length !== 2) return false
        return true
      }, 90_000),
    )
    await post('/apis/apps/v1/namespaces/default/deployments', APP.deployment)
    const svc = await post('/api/v1/namespaces/default/services', APP.service)
    clusterIP = svc.spec.clusterIP
    await post('/api/v1/namespaces/default/pods', APP.client)
    backends = await readyBackends()
    t.same([...backends.values()].sort(), ['msb', 'msc'], 'one replica on each of msb and msc')
    const pods = (await cluster.get('/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).items
    for (const p of pods) {
      const subnet: string = (await cluster.get(`/api/v1/nodes/${p.spec.nodeName}`)).spec.podCIDR
      t.ok(containsIp(parseCidr(subnet), p.status.podIP), `${p.metadata.name} has an IP of ${p.spec.nodeName}'s ${subnet}: ${p.status.podIP}`)
    }
    const client = await withDiagnostics(until('the client pod running', async () => podReady((await cluster.get('/api/v1/namespaces/default/pods/client')) ?? { metadata: {} }) && clientContainer(), 90_000))
    t.ok(client, 'the client pod runs on msa')
  })

  await t.test("the client on msa reaches the Service by name and both nodes answer, through the tunnel", async (t) => {
    const id = (await clientContainer())!
    const resolv = await exec(cluster.agent('msa'), id, ['cat', '/etc/resolv.conf'])
    t.match(resolv, /search default\.svc\.cluster\.local svc\.cluster\.local cluster\.local/)
    t.match(resolv, /ndots:5/)
    // On a user-defined network Docker writes its embedded resolver (127.0.0.11) into resolv.conf
    // and forwards to the sandbox's --dns servers: the node's DNS address must be among them.
    const containers = await cluster.agent('msa').host.docker.listContainers({ filters: { label: ['io.bramble.pod.name=client'] } })
    const dns = await Promise.all(containers.map(async (c) => (await cluster.agent('msa').host.docker.getContainer(c.Id).inspect()).HostConfig.Dns ?? []))
    t.ok(dns.some((servers) => servers.includes('169.254.20.10')), `the pod's DNS server is the node's 169.254.20.10 (${JSON.stringify(dns)})`)
    const answer = await withDiagnostics(until('nslookup of web on msa', async () => {
      const out = await exec(cluster.agent('msa'), id, ['nslookup', 'web.default.svc.cluster.local'])
      return out.includes(clusterIP) && out
    }, 30_000))
    t.match(answer, clusterIP, 'the name resolves to the ClusterIP')
    const direct = await exec(cluster.agent('msa'), id, ['nslookup', 'web.default.svc.cluster.local', '169.254.20.10'])
    t.match(direct, clusterIP, "the pod reaches msa's DNS server at 169.254.20.10 itself")
    const peerBytes = async () => new Map(((await show('msa'))?.peers ?? []).map((p) => [p.publicKey, p.txBytes + p.rxBytes]))
    const before = await peerBytes()
    const seen = new Set<string>()
    await withDiagnostics(until('answers from both replicas', async () => {
      // `web` alone: the search path makes it web.default.svc.cluster.local.
      const out = await get('web', 80)
      if (out) seen.add(out)
      return seen.size >= 2
    }, 60_000))
    t.same(seen, new Set(backends.keys()), `answered by ${[...seen].join(' and ')}`)
    const after = await peerBytes()
    for (const node of ['msb', 'msc']) {
      const key = await keyOf(node)
      const grew = (after.get(key) ?? 0) - (before.get(key) ?? 0)
      t.ok(grew > 0, `msa's WireGuard counters for its ${node} peer grew by ${grew} bytes during the requests`)
    }
    // httpd -vv logs each request's source: the client pod's own IP, not masqueraded on the way.
    const clientIP = (await cluster.get('/api/v1/namespaces/default/pods/client')).status.podIP
    for (const [pod, node] of backends) {
      const [httpd] = await cluster.agent(node).host.docker.listContainers({ filters: { label: [`io.bramble.pod.name=${pod}`, 'io.bramble.container.name=httpd'] } })
      const log = (await cluster.agent(node).host.docker.getContainer(httpd!.Id).logs({ stdout: true, stderr: true })).toString()
      t.match(log, `[::ffff:${clientIP}]`, `${pod} on ${node} saw the client's pod IP ${clientIP}`)
    }
  })

  await t.test('a replica that goes unready leaves rotation within 5 s', async (t) => {
    const [victim, other] = [...backends.keys()]
    const victimNode = cluster.agent(backends.get(victim!)!)
    const [httpd] = await victimNode.host.docker.listContainers({ filters: { label: [`io.bramble.pod.name=${victim}`, 'io.bramble.container.name=httpd'] } })
    await exec(victimNode, httpd!.Id, ['mv', '/www/index.html', '/www/gone.html'])
    await until('the replica not ready in its Endpoints', async () => (await endpoints())?.subsets?.[0]?.notReadyAddresses?.some((a: any) => a.targetRef.name === victim), 30_000)
    const unreadyAt = Date.now()
    await withDiagnostics(until('only the ready replica answers', async () => {
      for (let i = 0; i < 6; i++) if ((await get(clusterIP, 80)) !== other) return false
      return true
    }, 5_000))
    const took = Date.now() - unreadyAt
    t.comment(`${victim} out of rotation on msa ${took} ms after its Endpoints said not ready`)
    t.ok(took <= 5_000)
    await exec(victimNode, httpd!.Id, ['mv', '/www/gone.html', '/www/index.html'])
    const seen = new Set<string>()
    await withDiagnostics(until('both answer again', async () => {
      seen.add(await get(clusterIP, 80))
      return seen.has(victim!) && seen.has(other!)
    }, 30_000))
    t.pass('back in rotation once ready')
  })

  await t.test("msa itself (the node, not a pod) reaches the ClusterIP: both nodes answer", async (t) => {
    // A process's connect() needs a route to the ClusterIP before the OUTPUT chain rewrites it; a
    // host has its default route, the lab's namespaces have none (nothing may leave the machine).
    // Through the tunnel: the source is then msa's overlay address, and what no rule rewrote
    // matches no peer and is dropped by WireGuard.
    const msa = cluster.agent('msa')
    await inNetns(msa, ['ip', 'route', 'replace', `${clusterIP}/32`, 'dev', wireguardInterfaceOf(msa.host)])
    const seen = new Set<string>()
    await withDiagnostics(until('answers to msa from both replicas', async () => {
      const out = await inNetns(cluster.agent('msa'), ['sh', '-c', `printf 'GET /index.html HTTP/1.0\r\n\r\n' | busybox nc -w 3 ${clusterIP} 80`]).catch(() => '')
      const body = out.split('\r\n\r\n')[1]?.trim()
      if (body) seen.add(body)
      return seen.size >= 2
    }, 30_000))
    t.same(seen, new Set(backends.keys()))
    await inNetns(msa, ['ip', 'route', 'del', `${clusterIP}/32`, 'dev', wireguardInterfaceOf(msa.host)])
  })

  await t.test('full-size packets cross the tunnel: 256 KiB from each backend pod, and through the Service', async (t) => {
    const pods = (await cluster.get('/api/v1/namespaces/default/pods?labelSelector=app%3Dweb')).items
    for (const p of pods) t.equal(await bigSize(p.status.podIP, 8080), 262144, `from ${p.metadata.name} on ${p.spec.nodeName} at ${p.status.podIP}`)
    t.equal(await bigSize('web', 80), 262144, 'through the Service by name')
  })

  await t.test('a deleted backend pod leaves rotation within 5 s, and its replacement joins', async (t) => {
    const [victim] = [...backends.keys()]
    const res = await apiRequest(cluster.hub, 'DELETE', `/api/v1/namespaces/default/pods/${victim}`)
    t.equal(res.status, 200, res.status === 200 ? `DELETE ${victim}` : res.text)
    const deletedAt = Date.now()
    // Out of rotation: six answers in a row, none from it. The replacement may already answer beside
    // the other replica (on a quick machine it is Ready before the deleted pod's endpoint goes).
    await withDiagnostics(until('the deleted replica answers no more', async () => {
      for (let i = 0; i < 6; i++) {
        const answer = await get('web', 80)
        if (answer === victim || !answer.startsWith('web-')) return false
      }
      return true
    }, 5_000))
    const took = Date.now() - deletedAt
    t.comment(`${victim} out of rotation on msa ${took} ms after its deletion`)
    t.ok(took <= 5_000)
    backends = await readyBackends()
    t.same([...backends.values()].sort(), ['msb', 'msc'], 'the replacement runs where the deleted one did')
    const seen = new Set<string>()
    await withDiagnostics(until('the replacement answers', async () => {
      seen.add(await get('web', 80))
      return [...backends.keys()].every((b) => seen.has(b))
    }, 30_000))
    t.pass(`answered by ${[...backends.keys()].join(' and ')}`)
  })

  await t.test("each agent's host setup is in its own namespace, none in the root one", async (t) => {
    const marker = `bramble:${clusterId}:`
    const tag = chainsFor(clusterId).prefix
    const root = tableLines((await run('iptables-save')).stdout)
    t.same(root.filter((l) => l.includes(marker) || l.includes(tag)), [], 'no rule of this cluster in the root namespace')
    for (const node of ['msa', 'msb', 'msc']) {
      const save = tableLines(await inNetns(cluster.agent(node), ['iptables-save']))
      t.equal(save.filter((l) => l.includes(`${marker}${node}:pod-network`)).length, 3, `${node}'s pod network rules in its namespace`)
      t.ok(save.some((l) => l.includes(tag)), `${node}'s service rules in its namespace`)
      t.match(await inNetns(cluster.agent(node), ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lo']), /169\.254\.20\.10\/32/, `${node}'s DNS address on its own loopback`)
    }
    const forward = (node: string) => inNetns(cluster.agent(node), ['iptables', '-S', 'FORWARD'])
    t.match(await forward('msc'), new RegExp(`${marker}msc:pod-network`), "msc's Docker has no DOCKER-USER: the accept rules are in FORWARD")
    t.notMatch(await forward('msa'), /pod-network/, "msa's are in DOCKER-USER only")
  })

  await t.test("a restarted agent brings back its interface, routes and service rules, each once", async (t) => {
    const state = async () => {
      const wg = (await show('msa'))!
      const save = tableLines(await inNetns(cluster.agent('msa'), ['iptables-save']))
      const lo = await inNetns(cluster.agent('msa'), ['ip', '-4', '-o', 'addr', 'show', 'dev', 'lo'])
      return {
        peers: wg.peers.map((p) => p.publicKey).sort(),
        routes: [...wg.routes].sort(),
        addresses: wg.addresses,
        // The jumps from the built-in chains into ours, and our pod network rules.
        jumps: save.filter((l) => l.includes('bramble service proxy')).sort(),
        podNetworkRules: save.filter((l) => l.includes(':pod-network')).sort(),
        dnsAddresses: lo.split('\n').filter((l) => l.includes('169.254.20.10')).length,
      }
    }
    const before = await state()
    t.equal(before.peers.length, 2)
    t.equal(before.routes.length, 2)
    t.equal(new Set(before.jumps).size, before.jumps.length, 'each service jump once')
    t.ok(before.jumps.length >= 2, `${before.jumps.length} service jumps`)
    t.equal(before.podNetworkRules.length, 3, 'the pod network rules')
    t.equal(before.podNetworkRules.filter((l) => l.startsWith('filter -A DOCKER-USER ')).length, 2, "msa's Docker has DOCKER-USER: the accept rules are there")
    t.equal(before.dnsAddresses, 1, 'the DNS address once on lo')
    await cluster.agent('msa').stop('SIGTERM')
    const again = await withDiagnostics(cluster.restartAgent(cluster.agent('msa')))
    t.ok(again)
    // A few resyncs' worth: whatever it adds again would show by then.
    await new Promise((r) => setTimeout(r, 5_000))
    const after = await state()
    t.same(after, before, 'the same peers, routes, address, jumps, rules and DNS address: nothing twice')
    const seen = new Set<string>()
    await withDiagnostics(until('both replicas answer after the restart', async () => {
      seen.add(await get('web', 80))
      return seen.size >= 2 && [...backends.keys()].every((b) => seen.has(b))
    }, 30_000))
    t.pass('the Service answers from both nodes after the restart')
  })

  await t.test('deleting node msc removes its peer from msa and msb', async (t) => {
    const key = await keyOf('msc')
    t.ok((await show('msa'))?.peers.some((p) => p.publicKey === key), 'msa has msc as a peer first')
    await cluster.bramble('delete', 'node', 'msc')
    for (const node of ['msa', 'msb']) {
      const s = await withDiagnostics(until(`${node} without msc's peer`, async () => {
        const s = await show(node)
        return s && !s.peers.some((p) => p.publicKey === key) && s
      }, 60_000))
      t.equal(s.peers.length, 1, `${node} keeps one peer`)
      t.equal(s.routes.length, 1, `${node} keeps one route`)
    }
    const onMsb = [...backends].find(([, node]) => node === 'msb')![0]
    await withDiagnostics(until("only msb's replica answers", async () => {
      for (let i = 0; i < 6; i++) if ((await get('web', 80)) !== onMsb) return false
      return true
    }, 60_000))
    t.pass(`only ${onMsb} on msb answers once msc is gone`)
  })
}
