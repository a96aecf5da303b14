// Getting into pods end to end on the shared dockerd, with a real hub and a real agent
// (in-process): `bramble exec` (output, exit codes, stdin, a chosen container) and
// `bramble port-forward` (an HTTP fetch through the local port, a half-closed echo) relayed hub →
// MQTT → node, and the same through the pinned kubectl (exec over v5.channel.k8s.io, port-forward
// over SPDY tunneled in a WebSocket); skipped cleanly where kubectl is missing.

import t, { type Test } from 'tap'
import { spawn, execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { get as httpGet } from 'node:http'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { once } from 'node:events'
import WebSocket from 'ws'
import { parse as parseYaml } from 'yaml'
import { startAgent, type RunningAgent } from '../../src/agent/agent.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { openClientContext, type Output } from '../../src/cli/client-context.js'
import { runExec, type ExecStreams } from '../../src/cli/exec-command.js'
import { runPortForward } from '../../src/cli/port-forward-command.js'
import { startHub } from '../../src/hub/hub.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { silentLogger } from '../../src/lib/logger.js'
import { apiRequest, closeApiAgents, type ApiTarget } from '../helpers/api-client.js'
import { ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { findKubectl, pinnedKubectls } from '../helpers/kubectl.js'
import { BRAMBLE_BIN } from '../helpers/hub-process.js'
import { existsSync } from 'node:fs'

const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()

async function until<T>(what: string, fn: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

function fetchText(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path: '/', timeout: 30_000 }, (res) => {
      let text = ''
      res.setEncoding('utf8')
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve(text))
    })
      .on('error', reject)
      .on('timeout', function (this: any) {
        this.destroy(new Error('timed out'))
      })
  })
}

/** Sends `text`, half-closes, and reads until the other side closes. */
function echoThrough(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true })
    let got = ''
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.end(text))
    socket.on('data', (d) => (got += d))
    socket.on('close', () => resolve(got))
    socket.on('error', reject)
    socket.setTimeout(30_000, () => socket.destroy(new Error('timed out')))
  })
}

function capture(): { io: Output; out: () => string; err: () => string } {
  let out = ''
  let err = ''
  return { io: { out: (s) => void (out += s), err: (s) => void (err += s) }, out: () => out, err: () => err }
}

function execStreams(input?: string): ExecStreams & { stdoutText(): string; stderrText(): string } {
  const stdin = new PassThrough()
  if (input !== undefined) stdin.end(input)
  const stdout = new PassThrough()
  const stderr = new PassThrough()
  let out = ''
  let err = ''
  stdout.on('data', (d) => (out += d))
  stderr.on('data', (d) => (err += d))
  return { stdin, stdout, stderr, stdoutText: () => out, stderrText: () => err }
}

function runWithInput(bin: string, args: string[], home: string, input?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(bin, args, { env: { PATH: process.env.PATH, HOME: home }, timeout: 90_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? ((err as any).code ?? 1) : 0, stdout, stderr }),
    )
    if (input !== undefined) child.stdin!.end(input)
    else child.stdin!.end()
  })
}

async function run() {
  const image = await ensureBusyboxImage(docker)
  const runtime = new DockerRuntime(docker)
  const root = await mkdtemp(join(tmpdir(), 'ex-exec-hub-'))
  const hub = await startHub(resolveHubConfig({ dataDir: join(root, 'hub'), listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi', heartbeatInterval: '1s' }, {}), {
    logger: silentLogger(),
    clock: systemClock,
  })
  let agent: RunningAgent | undefined
  t.teardown(async () => {
    await agent?.close()
    await hub.close()
    closeApiAgents()
    await removeClusterContainers(docker, hub.clusterId)
    await rm(root, { recursive: true, force: true })
  })
  const kc = parseYaml(readFileSync(hub.kubeconfigPath, 'utf8'))
  const server = kc.clusters[0].cluster.server
  const ca = Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString()
  const admin: ApiTarget = { server, ca, token: kc.users[0].user.token }

  const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash, ttlMs: 60_000 })
  agent = await startAgent(
    {
      dataDir: join(root, 'node'),
      hub: new URL(hub.url).host,
      token,
      nodeName: 'ex-pi',
      reserve: { cpuMillis: 100, memoryBytes: 64 * 1024 * 1024 },
      heartbeatIntervalMs: 1_000,
      resyncMs: 2_000,
      pods: { defaultGraceSeconds: 1 },
    },
    { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger: silentLogger() },
  )
  const loop = ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done']
  const pods = [
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ex-shell', namespace: 'default' },
      spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'app', image, command: loop }, { name: 'side', image, command: loop }] },
    },
    {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'ex-web', namespace: 'default' },
      spec: {
        terminationGracePeriodSeconds: 1,
        containers: [
          { name: 'httpd', image, command: ['sh', '-c', 'mkdir -p /www && echo hello-from-httpd > /www/index.html && exec httpd -f -p 8080 -h /www'] },
          { name: 'echo', image, command: ['nc', '-ll', '-p', '9000', '-e', 'cat'] },
        ],
      },
    },
  ]
  for (const pod of pods) {
    const created = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/pods', pod)
    if (created.status !== 201) throw new Error(`could not create pod ${pod.metadata.name}: ${created.status} ${created.text}`)
  }
  for (const name of ['ex-shell', 'ex-web']) {
    await until(`pod ${name} Running`, async () => (await apiRequest(admin, 'GET', `/api/v1/namespaces/default/pods/${name}`)).json?.status?.phase === 'Running')
  }
  const ctx = (io: Output) => openClientContext({ kubeconfig: hub.kubeconfigPath }, {}, io)

  await t.test('discovery lists pods/exec and pods/portforward as create', async (t) => {
    const list = (await apiRequest(admin, 'GET', '/api/v1')).json
    const exec = list.resources.find((r: any) => r.name === 'pods/exec')
    const pf = list.resources.find((r: any) => r.name === 'pods/portforward')
    t.same(exec?.verbs, ['create', 'get'])
    t.equal(exec?.kind, 'PodExecOptions')
    t.same(pf?.verbs, ['create', 'get'])
  })

  await t.test('bramble exec prints the output and exits with the command exit code', async (t) => {
    const c = capture()
    const io = execStreams()
    t.equal(await runExec(ctx(c.io), 'ex-shell', ['echo', 'hello', 'from', 'exec'], {}, io), 0)
    t.equal(io.stdoutText(), 'hello from exec\n')
    const failing = execStreams()
    t.equal(await runExec(ctx(c.io), 'ex-shell', ['sh', '-c', 'echo oops >&2; exit 7'], {}, failing), 7)
    t.equal(failing.stderrText(), 'oops\n', 'stderr kept apart from stdout')
    const side = execStreams()
    t.equal(await runExec(ctx(c.io), 'pod/ex-shell', ['sh', '-c', 'echo $HOSTNAME-side'], { container: 'side' }, side), 0)
    t.match(side.stdoutText(), /-side\n$/)
  })

  await t.test('bramble exec -i passes stdin through, and its end reaches the command', async (t) => {
    const io = execStreams('line one\nline two\n')
    t.equal(await runExec(ctx(capture().io), 'ex-shell', ['cat'], { stdin: true }, io), 0)
    t.equal(io.stdoutText(), 'line one\nline two\n')
    const big = 'x'.repeat(700 * 1024) + '\n'
    const count = execStreams(big)
    t.equal(await runExec(ctx(capture().io), 'ex-shell', ['wc', '-c'], { stdin: true }, count), 0)
    t.equal(count.stdoutText().trim(), String(big.length), 'more than a window of input arrives whole')
  })

  await t.test('bramble exec -t gives the command a terminal', async (t) => {
    // stdin stays open: the command ends by itself, as an interactive one would.
    const io = execStreams()
    t.equal(await runExec(ctx(capture().io), 'ex-shell', ['sh', '-c', 'test -t 0 && test -t 1 && echo on-a-tty'], { stdin: true, tty: true }, io), 0)
    t.equal(io.stdoutText().trim(), 'on-a-tty')
  })

  await t.test('a client that stops reading holds the command, not the hub or the node: output waits within the window', async (t) => {
    const total = 24 * 1024 * 1024
    const query = new URLSearchParams({ container: 'app', stdout: 'true', stderr: 'true' })
    for (const c of ['sh', '-c', `head -c ${total} /dev/zero; touch /tmp/ex-done`]) query.append('command', c)
    const ws = new WebSocket(`${server.replace(/^https/, 'wss')}/api/v1/namespaces/default/pods/ex-shell/exec?${query}`, ['v5.channel.k8s.io'], { ca, headers: { Authorization: `Bearer ${admin.token}` } })
    let received = 0
    let status = ''
    ws.on('message', (d: Buffer) => {
      if (d[0] === 1) received += d.length - 1
      else if (d[0] === 3) status = d.subarray(1).toString()
    })
    await once(ws, 'open')
    await until('the first output', () => received > 0, 60_000)
    ws.pause()
    await new Promise((r) => setTimeout(r, 4_000))
    const check = execStreams()
    await runExec(ctx(capture().io), 'ex-shell', ['sh', '-c', 'test -e /tmp/ex-done && echo finished || echo blocked'], { container: 'app' }, check)
    t.equal(check.stdoutText(), 'blocked\n', 'the command is held while its output is not read')
    ws.resume()
    await once(ws, 'close')
    t.equal(received, total, 'every byte arrives once the client reads again')
    t.match(status, /"Success"/)
  })

  await t.test('bad exec requests are refused naming what is wrong', async (t) => {
    await t.rejects(runExec(ctx(capture().io), 'ex-shell', ['true'], { container: 'nope' }, execStreams()), /container: Invalid value: "nope"/)
    await t.rejects(runExec(ctx(capture().io), 'ex-missing', ['true'], {}, execStreams()), /not found/)
    const missing = execStreams()
    const code = await runExec(ctx(capture().io), 'ex-shell', ['no-such-command'], {}, missing)
    t.ok(code === 126 || code === 127, `a command that is not there exits 126 or 127 as in kubectl (got ${code})`)
    t.match(missing.stdoutText() + missing.stderrText(), /no-such-command/)
    const viewer = hub.tokens.issueUserToken('ex-viewer', 'read-only')
    const viewerCtx = openClientContext({ kubeconfig: hub.kubeconfigPath }, {}, capture().io)
    ;(viewerCtx.client.config as any).token = viewer
    await t.rejects(runExec(viewerCtx, 'ex-shell', ['true'], {}, execStreams()), /cannot create resource "pods\/exec"/)
    const anonymousCtx = openClientContext({ kubeconfig: hub.kubeconfigPath }, {}, capture().io)
    ;(anonymousCtx.client.config as any).token = 'not-a-token'
    await t.rejects(runExec(anonymousCtx, 'ex-shell', ['true'], {}, execStreams()), /Unauthorized/, 'an unknown token is refused before any upgrade')
    await t.rejects(runExec(ctx(capture().io), 'ex-shell', ['true'], { container: '' }, { ...execStreams() }).then(() => runExec(ctx(capture().io), 'ex-shell', [], {}, execStreams())), /needs a command/)
    const plain = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/pods/ex-shell/exec?command=true&stdout=true')
    t.equal(plain.status, 400)
    t.match(plain.json.message, /Upgrade request required/)
  })

  await t.test('bramble port-forward carries HTTP and a half-closed echo to the pod', async (t) => {
    const c = capture()
    const forward = await runPortForward(ctx(c.io), 'ex-web', [':8080', '0:9000'])
    t.teardown(() => forward.close())
    t.match(c.out(), /Forwarding from 127\.0\.0\.1:\d+ -> 8080/)
    const [web, echo] = forward.ports
    t.equal(await fetchText(web.local), 'hello-from-httpd\n')
    t.equal(await fetchText(web.local), 'hello-from-httpd\n', 'a second connection')
    const payload = 'ping '.repeat(100_000)
    t.equal(await echoThrough(echo.local, payload), payload, '500 KB there and back, beyond a window each way')
  })

  await t.test('port-forward to a port nobody listens on reports the refusal', async (t) => {
    const c = capture()
    const forward = await runPortForward(ctx(c.io), 'ex-web', [':9999'])
    t.teardown(() => forward.close())
    t.equal(await echoThrough(forward.ports[0].local, 'x'), '')
    await until('the error printed', () => /could not reach port 9999/.test(c.err()))
  })

  await t.test('the built bramble binary: exec exits with the exit code, -i pipes stdin, port-forward serves until interrupted', { skip: existsSync(BRAMBLE_BIN) ? false : 'run npm run build first' }, async (t) => {
    const home = join(root, 'bramble-home')
    const bramble = (args: string[], input?: string) => runWithInput(process.execPath, [BRAMBLE_BIN, '--kubeconfig', hub.kubeconfigPath, ...args], home, input)
    const five = await bramble(['exec', 'ex-shell', '--', 'sh', '-c', 'echo out; echo err >&2; exit 5'])
    t.equal(five.code, 5, five.stderr)
    t.equal(five.stdout, 'out\n')
    t.equal(five.stderr, 'err\n')
    const piped = await bramble(['exec', '-i', 'pod/ex-shell', '-c', 'side', '--', 'tr', 'a-z', 'A-Z'], 'shout\n')
    t.equal(piped.code, 0, piped.stderr)
    t.equal(piped.stdout, 'SHOUT\n')
    const usage = await bramble(['exec', 'ex-shell'])
    t.equal(usage.code, 2, 'no command is a usage error')

    const child = spawn(process.execPath, [BRAMBLE_BIN, '--kubeconfig', hub.kubeconfigPath, 'port-forward', 'ex-web', ':8080'], { env: { PATH: process.env.PATH, HOME: home } })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    const exited = once(child, 'exit')
    t.teardown(() => void child.kill())
    const port = await until('bramble port-forward listening', () => Number(/127\.0\.0\.1:(\d+) -> 8080/.exec(out)?.[1]), 60_000)
    t.equal(await fetchText(port), 'hello-from-httpd\n')
    child.kill('SIGINT')
    const [code] = await exited
    t.equal(code, 0, 'an interrupt ends it cleanly')
  })

  const kubectl = findKubectl('1.32') ?? findKubectl('1.33') ?? findKubectl('1.31')
  const kubectlHome = join(root, 'kubectl-home')
  const kubectlArgs = (bin: string) => ['--kubeconfig', hub.kubeconfigPath, '--cache-dir', join(kubectlHome, `cache-${bin.split('.').slice(-2).join('.')}`)]

  /** Runs `kubectl port-forward pod/ex-web :8080` until it says where it listens; the caller stops it. */
  async function kubectlForward(t: Test, bin: string): Promise<{ port: number; stderr: () => string }> {
    const child = spawn(bin, [...kubectlArgs(bin), 'port-forward', 'pod/ex-web', ':8080'], { env: { PATH: process.env.PATH, HOME: kubectlHome } })
    t.teardown(() => void child.kill())
    let out = ''
    let err = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (err += d))
    const port = await until('kubectl port-forward listening', () => Number(/127\.0\.0\.1:(\d+) -> 8080/.exec(out)?.[1]) || (child.exitCode !== null && Promise.reject(new Error(`kubectl port-forward exited: ${err}`))), 60_000)
    return { port, stderr: () => err }
  }

  await t.test('kubectl exec and port-forward against the hub', { skip: kubectl ? false : 'no pinned kubectl 1.31+ on this machine' }, async (t) => {
    const base = kubectlArgs(kubectl!)
    const echo = await runWithInput(kubectl!, [...base, 'exec', 'ex-shell', '-c', 'app', '--', 'echo', 'hi', 'kubectl'], kubectlHome)
    t.equal(echo.code, 0, echo.stderr)
    t.equal(echo.stdout, 'hi kubectl\n')
    const failing = await runWithInput(kubectl!, [...base, 'exec', 'ex-shell', '-c', 'app', '--', 'sh', '-c', 'exit 3'], kubectlHome)
    t.equal(failing.code, 3, 'the exit code of the command')
    t.match(failing.stderr, /exit code 3/)
    const piped = await runWithInput(kubectl!, [...base, 'exec', '-i', 'ex-shell', '-c', 'app', '--', 'cat'], kubectlHome, 'through kubectl\n')
    t.equal(piped.code, 0, piped.stderr)
    t.equal(piped.stdout, 'through kubectl\n')

    const forward = await kubectlForward(t, kubectl!)
    t.equal(await fetchText(forward.port), 'hello-from-httpd\n', forward.stderr())
    t.equal(await fetchText(forward.port), 'hello-from-httpd\n', 'a second connection through the same kubectl')
  })

  // exec speaks WebSocket from 1.30 on and SPDY before; port-forward SPDY on the connection until 1.30, tunneled in a WebSocket after.
  const pinned = pinnedKubectls()
  await t.test('every pinned kubectl: port-forward, and exec with stdin and the exit code', { skip: pinned.length ? false : 'no pinned kubectl on this machine' }, async (t) => {
    for (const { version, bin } of pinned) {
      const forward = await kubectlForward(t, bin)
      t.equal(await fetchText(forward.port), 'hello-from-httpd\n', `kubectl ${version} port-forward`)
      const exec = await runWithInput(bin, [...kubectlArgs(bin), 'exec', '-i', 'ex-shell', '-c', 'app', '--', 'sh', '-c', 'cat; exit 4'], kubectlHome, `${version}\n`)
      t.equal(exec.stdout, `${version}\n`, `kubectl ${version} exec -i: ${exec.stderr}`)
      t.equal(exec.code, 4, `kubectl ${version} exec exits with the command's code`)
    }
  })
}
