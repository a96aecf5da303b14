// The service proxy with real iptables in a network namespace: ClusterIP connections are DNATed
// and spread over the ready endpoints, a not-ready endpoint leaves rotation, node ports work, an
// agent restart adds no duplicate jumps, and a deleted Service leaves no chain behind.

import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { ServiceProxy, commandIptables, type Iptables } from '../../src/agent/service-proxy.js'
import { silentLogger } from '../../src/lib/logger.js'
import { chainsFor } from '../../src/mesh/proxy-rules.js'

const NS = `bramble-sp-${process.pid}`
const CLUSTER = 'c0ffee0123456789'
const C = chainsFor(CLUSTER)
const inNs = ['ip', 'netns', 'exec', NS]
const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { encoding: 'utf8' })

const canRun = process.getuid?.() === 0 && (() => {
  try {
    sh(['iptables-restore', '--version'])
    return true
  } catch {
    return false
  }
})()

// Two backends in one process: each address answers its own name and closes.
const SERVER = `
const net = require('node:net')
for (const [ip, name] of [['10.42.0.5', 'a'], ['10.42.0.6', 'b']]) {
  net.createServer((s) => s.end(name)).listen(8080, ip, () => console.log('listening ' + ip))
}`

// Connects `n` times to host:port; prints the answers as JSON (errors as "!code").
const CLIENT = `
const net = require('node:net')
const [host, port, n] = process.argv.slice(1)
const one = () => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port), timeout: 2000 }, () => {})
  let got = ''
  s.on('data', (d) => (got += d))
  s.on('end', () => resolve(got))
  s.on('timeout', () => { s.destroy(); resolve('!timeout') })
  s.on('error', (e) => resolve('!' + e.code))
})
;(async () => { const out = []; for (let i = 0; i < Number(n); i++) out.push(await one()); console.log(JSON.stringify(out)) })()`

function connectMany(host: string, port: number, n: number): string[] {
  return JSON.parse(sh([...inNs, process.execPath, '-e', CLIENT, host, String(port), String(n)]))
}

const service = (spec: Record<string, unknown>): KubeObject => ({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.43.0.10', ports: [{ port: 80, targetPort: 8080, protocol: 'TCP' }], ...spec } })
const endpoints = (ready: string[], notReady: string[] = []): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'default' }, subsets: [{ addresses: ready.map((ip) => ({ ip })), notReadyAddresses: notReady.map((ip) => ({ ip })), ports: [{ port: 8080, protocol: 'TCP' }] }] }) as KubeObject

t.test('service rules in a network namespace', { skip: canRun ? false : 'needs root and iptables' }, async (t) => {
  sh(['ip', 'netns', 'add', NS])
  let server: ChildProcess | undefined
  t.teardown(() => {
    server?.kill()
    try {
      sh(['ip', 'netns', 'del', NS])
    } catch {}
  })
  sh([...inNs, 'ip', 'link', 'set', 'lo', 'up'])
  sh([...inNs, 'ip', 'link', 'add', 'pods0', 'type', 'veth', 'peer', 'name', 'pods1'])
  for (const ip of ['10.42.0.5/32', '10.42.0.6/32']) sh([...inNs, 'ip', 'addr', 'add', ip, 'dev', 'pods0'])
  for (const dev of ['pods0', 'pods1']) sh([...inNs, 'ip', 'link', 'set', dev, 'up'])
  // A route for the service range, as a node has (its default route): the lookup precedes DNAT.
  sh([...inNs, 'ip', 'route', 'add', '10.43.0.0/16', 'dev', 'pods0'])
  server = spawn(inNs[0]!, [...inNs.slice(1), process.execPath, '-e', SERVER], { stdio: ['ignore', 'pipe', 'inherit'] })
  await new Promise<void>((resolve) => {
    let seen = 0
    server!.stdout!.on('data', (d: Buffer) => (seen += String(d).split('listening').length - 1) >= 2 && resolve())
  })

  // The real commands, counted: an unchanged resync must not run more than one iptables-save.
  const real = commandIptables(inNs)
  const calls: string[] = []
  const counted = <K extends keyof Iptables>(name: K): Iptables[K] =>
    ((...args: unknown[]) => {
      calls.push(name)
      return (real[name] as (...a: unknown[]) => unknown)(...args)
    }) as Iptables[K]
  const iptables: Iptables = { addHook: counted('addHook'), restore: counted('restore'), save: counted('save') }
  let proxy = new ServiceProxy({ iptables, clusterId: CLUSTER, logger: silentLogger() })

  t.notMatch(connectMany('10.43.0.10', 80, 1)[0], /^[ab]$/, 'nothing answers the ClusterIP before the rules')

  await proxy.sync([service({})], [endpoints(['10.42.0.5', '10.42.0.6'])])
  let answers = connectMany('10.43.0.10', 80, 40)
  t.equal(answers.filter((a) => a === 'a' || a === 'b').length, 40, `every connection to the ClusterIP reached a backend: ${answers.join(',')}`)
  t.ok(answers.includes('a') && answers.includes('b'), 'spread over both endpoints')

  calls.length = 0
  await proxy.sync([service({})], [endpoints(['10.42.0.5', '10.42.0.6'])])
  t.same(calls, ['save'], 'a resync of the same catalog reads the tables once and changes nothing')
  // Someone flushes our chain: the next resync finds it and puts the rules back.
  sh([...inNs, 'iptables', '-w', '-t', 'nat', '-F', C.services])
  t.notMatch(connectMany('10.43.0.10', 80, 1)[0], /^[ab]$/, 'flushed: the ClusterIP answers no more')
  calls.length = 0
  await proxy.sync([service({})], [endpoints(['10.42.0.5', '10.42.0.6'])])
  t.ok(calls.includes('restore'), `the flushed rules were applied again (${calls.join(' ')})`)
  t.equal(connectMany('10.43.0.10', 80, 10).filter((a) => a === 'a' || a === 'b').length, 10, 'and the ClusterIP answers again')
  // A jump deleted by hand comes back too.
  sh([...inNs, 'iptables', '-w', '-t', 'nat', '-D', 'OUTPUT', '-m', 'comment', '--comment', 'bramble service proxy', '-j', C.services])
  calls.length = 0
  await proxy.sync([service({})], [endpoints(['10.42.0.5', '10.42.0.6'])])
  t.ok(calls.includes('addHook'), `the deleted jump was added again (${calls.join(' ')})`)
  t.equal(connectMany('10.43.0.10', 80, 10).filter((a) => a === 'a' || a === 'b').length, 10, 'and the ClusterIP answers again')

  await proxy.sync([service({})], [endpoints(['10.42.0.5'], ['10.42.0.6'])])
  answers = connectMany('10.43.0.10', 80, 20)
  t.same([...new Set(answers)], ['a'], 'the not-ready endpoint is out of rotation')

  await proxy.sync([service({})], [endpoints([])])
  t.match(connectMany('10.43.0.10', 80, 1)[0], /^!ECONNREFUSED$/, 'no endpoints: refused at once')

  await proxy.sync([service({ type: 'NodePort', ports: [{ port: 80, targetPort: 8080, protocol: 'TCP', nodePort: 30080 }] })], [endpoints(['10.42.0.6'])])
  t.same([...new Set(connectMany('10.42.0.5', 30080, 5))], ['b'], "a node port on the node's own address reaches the endpoint")

  // An agent restart: a new proxy, the same rules, no second jump.
  proxy = new ServiceProxy({ iptables, clusterId: CLUSTER, logger: silentLogger() })
  await proxy.sync([service({})], [endpoints(['10.42.0.5', '10.42.0.6'])])
  const saved = { nat: sh([...inNs, 'iptables-save', '-t', 'nat']), filter: sh([...inNs, 'iptables-save', '-t', 'filter']) }
  for (const [table, chain, target] of [['nat', 'PREROUTING', C.services], ['nat', 'OUTPUT', C.services], ['nat', 'POSTROUTING', C.postrouting], ['filter', 'FORWARD', C.forward], ['filter', 'OUTPUT', C.services]] as const) {
    t.equal(saved[table].split('\n').filter((l) => l.startsWith(`-A ${chain} `) && l.endsWith(`-j ${target}`)).length, 1, `one ${table} ${chain} → ${target} jump`)
  }
  t.equal(saved.nat.split('\n').filter((l) => l.includes('DNAT')).length, 2, 'two DNAT rules, not four')

  await proxy.sync([], [])
  const after = sh([...inNs, 'iptables-save'])
  t.notMatch(after, new RegExp(`${C.prefix}(SVC|SEP)-`), 'the deleted Service left no chain')
  t.notMatch(connectMany('10.43.0.10', 80, 1)[0], /^[ab]$/, 'and its ClusterIP answers no more')

  // Another cluster's agent on this machine: its chains and ours never touch.
  const other = new ServiceProxy({ iptables, clusterId: 'beef00000000', logger: silentLogger() })
  await other.sync([service({ clusterIP: '10.43.0.99' })], [endpoints(['10.42.0.6'])])
  await proxy.sync([], [])
  t.same([...new Set(connectMany('10.43.0.99', 80, 3))], ['b'], "another cluster's Service still works after our sync")
  // A second jump to our chain (an old agent's, say) goes with the rest.
  sh([...inNs, 'iptables', '-w', '-t', 'nat', '-A', 'OUTPUT', '-m', 'comment', '--comment', 'bramble service proxy', '-j', C.services])
  calls.length = 0
  await proxy.remove()
  t.same(calls, ['save', 'restore'], 'remove() reads the tables once and removes in one restore')
  const left = sh([...inNs, 'iptables-save'])
  t.notMatch(left, C.prefix, 'remove() takes every chain and jump of ours away')
  t.match(left, chainsFor('beef00000000').services, "and leaves the other cluster's")
  await other.remove()
})
