// The agent's own words when TLS to the broker fails, with a real hub and a real agent: a node whose
// clock is days behind logs one sentence naming the skew (its broker address leads to a TLS front
// presenting a certificate from the hub's CA valid only from two days ahead, as a Pi booted offline
// sees every certificate); a node holding another cluster's CA is told so at once, not after the
// connect timeout.

import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PassThrough } from 'node:stream'
import { createServer } from 'node:tls'
import t from 'tap'
import { startAgent } from '../../src/agent/agent.js'
import { DockerRuntime } from '../../src/agent/docker-runtime.js'
import { SystemHostInfo } from '../../src/agent/host-info.js'
import { joinHub, saveIdentity } from '../../src/agent/join-client.js'
import { startHub } from '../../src/hub/hub.js'
import type { Clock } from '../../src/lib/clock.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { createLogger, silentLogger } from '../../src/lib/logger.js'
import { makeCert } from '../helpers/cert-factory.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { testTls } from '../helpers/tls.js'

const DAY_MS = 86_400_000
const docker = dockerClient()
const unavailable = await dockerUnavailable(docker)
if (unavailable) t.plan(0, unavailable)
else await run()

/** A logger whose lines a test can read. */
function capturingLogger() {
  const stream = new PassThrough()
  const lines: Array<{ level: number; msg: string; url?: string }> = []
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString('utf8').split('\n')) if (line.trim()) lines.push(JSON.parse(line))
  })
  return { logger: createLogger({ level: 'warn', destination: stream }), lines }
}

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = fn()
    if (v) return v
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function run() {
  const root = mkdtempSync(join(tmpdir(), 'bramble-agent-tls-'))
  const hubDir = join(root, 'hub')
  const hub = await startHub(resolveHubConfig({ dataDir: hubDir, listen: '127.0.0.1', apiPort: '0', mqttPort: '0', storeMapSize: '64Mi' }, {}), { logger: silentLogger(), clock: systemClock })
  t.teardown(async () => {
    await hub.close()
    await removeClusterContainers(docker, hub.clusterId)
    rmSync(root, { recursive: true, force: true })
  })
  const runtime = new DockerRuntime(docker)
  const address = new URL(hub.url).host

  /** Joins a node for real, then lets the test change what its identity says before the agent starts. */
  async function joinedNode(name: string, change: (identity: Awaited<ReturnType<typeof joinHub>>) => void): Promise<string> {
    const dataDir = join(root, name)
    const { token } = hub.tokens.createJoinToken({ caHash: hub.caHash })
    const identity = await joinHub({ hub: address, token, nodeName: name, logger: silentLogger() })
    change(identity)
    saveIdentity(dataDir, identity)
    return dataDir
  }

  await t.test('a node whose clock is five days behind says so, once, instead of a TLS error', async (t) => {
    const ca = { certPem: readFileSync(join(hubDir, 'ca.crt'), 'utf8'), keyPem: readFileSync(join(hubDir, 'ca.key'), 'utf8') }
    const future = makeCert(Date.now() + 2 * DAY_MS, Date.now() + 400 * DAY_MS, ca)
    const front = createServer({ key: future.keyPem, cert: future.certPem }, (socket) => socket.destroy())
    await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
    t.teardown(() => new Promise<void>((resolve) => front.close(() => resolve())))
    const brokerUrl = `mqtts://127.0.0.1:${(front.address() as AddressInfo).port}`
    const dataDir = await joinedNode('pi-late', (identity) => (identity.mqtt.url = brokerUrl))

    const behind: Clock = { ...systemClock, now: () => Date.now() - 5 * DAY_MS }
    const { logger, lines } = capturingLogger()
    const agent = await startAgent(
      { dataDir, reserve: { cpuMillis: 100, memoryBytes: 0 }, heartbeatIntervalMs: 500, mqttConnectAttemptMs: 1_000 },
      { runtime, hostInfo: new SystemHostInfo(), clock: behind, logger },
    )
    t.teardown(() => agent.close())
    const said = await until('the clock sentence', () => lines.find((l) => /clock/.test(l.msg)))
    t.equal(said.level, 50, 'an error')
    t.match(said.msg, new RegExp(`^TLS to the MQTT broker at ${brokerUrl.replace(/\./g, '\\.')} failed because its certificate looks not yet valid: this node's clock is 5 days behind the hub's`))
    await new Promise((r) => setTimeout(r, 2_500)) // two more attempts at the 1 s pace
    t.equal(lines.filter((l) => /clock/.test(l.msg)).length, 1, 'said once, not on every retry')
    t.notOk(lines.some((l) => /hub unreachable/.test(l.msg)), 'not the generic unreachable message')
  })

  await t.test("a node holding another cluster's CA is told so at once", async (t) => {
    const dataDir = await joinedNode('pi-other', (identity) => (identity.ca = testTls().ca))
    const { logger, lines } = capturingLogger()
    const started = Date.now()
    const agent = await startAgent(
      { dataDir, reserve: { cpuMillis: 100, memoryBytes: 0 }, heartbeatIntervalMs: 500, mqttConnectAttemptMs: 20_000 },
      { runtime, hostInfo: new SystemHostInfo(), clock: systemClock, logger },
    )
    t.teardown(() => agent.close())
    const said = await until('the CA sentence', () => lines.find((l) => /pinned at join/.test(l.msg)), 15_000)
    t.ok(Date.now() - started < 20_000, 'before the 20 s connect attempt would have timed out')
    t.match(said.msg, /presented a certificate the cluster CA pinned at join did not sign: it is not this cluster's hub/)
  })
}
