// A hub pointed at an external Mosquitto (--mqtt-url): it writes Mosquitto's password and ACL
// files, makes it reload them, and an agent joins and runs a pod through that broker.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { BRAMBLE_BIN, startHubProcess } from '../helpers/hub-process.js'
import { mosquittoAvailable, startHubMosquitto, type HubMosquitto } from '../helpers/mosquitto.js'

async function until<T>(what: string, probe: () => Promise<T | undefined>, ms = 60_000): Promise<T> {
  const deadline = Date.now() + ms
  for (;;) {
    const value = await probe().catch(() => undefined)
    if (value !== undefined) return value
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 250))
  }
}

t.test('a hub with --mqtt-url serves agents through a real Mosquitto', async (t) => {
  if (!(await mosquittoAvailable())) {
    t.comment('mosquitto is not installed (apt-get install mosquitto): nothing to test against')
    return
  }
  const noDocker = await dockerUnavailable()
  if (noDocker) {
    t.comment(`no Docker engine (${noDocker}): the agent cannot run pods`)
    return
  }

  const root = mkdtempSync(join(tmpdir(), 'bramble-mosq-'))
  const dataDir = join(root, 'hub')
  let agent: ChildProcess | undefined
  let mosquitto: HubMosquitto | undefined
  t.teardown(async () => {
    agent?.kill('SIGKILL')
    mosquitto?.child.kill('SIGTERM')
    closeApiAgents()
    rmSync(root, { recursive: true, force: true })
  })
  mosquitto = await startHubMosquitto({ dir: root, hubDataDir: dataDir })
  const { port, pidFile } = mosquitto

  const hub = await startHubProcess({ dataDir, args: ['--mqtt-url', `mqtt://127.0.0.1:${port}`, '--mosquitto-pid-file', pidFile] })
  t.teardown(() => hub.cleanup())
  const token = await new Promise<string>((resolve, reject) => {
    const c = spawn(process.execPath, [BRAMBLE_BIN, 'token', 'create', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    c.stdout!.on('data', (d) => (out += d))
    c.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`token create exited ${code}`))))
  })
  const clusterId = readFileSync(join(dataDir, 'cluster-id'), 'utf8').trim()
  agent = spawn(process.execPath, [BRAMBLE_BIN, 'agent', '--data-dir', join(root, 'agent'), '--hub', new URL(hub.server).host, '--token', token, '--node-name', 'mosq-node', '--log-level', 'warn'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  })

  const node = await until('the node to be Ready', async () => {
    const res = await apiRequest(hub, 'GET', '/api/v1/nodes/mosq-node')
    return res.json?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True') ? res.json : undefined
  })
  t.equal(node.metadata.labels['kubernetes.io/os'], 'linux')

  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'through-mosquitto' },
    spec: { containers: [{ name: 'main', image: 'bramble/pause:1', command: ['sh', '-c', 'echo via mosquitto; sleep 3600'] }], terminationGracePeriodSeconds: 1 },
  }
  t.equal((await apiRequest(hub, 'POST', '/api/v1/namespaces/default/pods', pod)).status, 201)
  const running = await until('the pod to run', async () => {
    const res = await apiRequest(hub, 'GET', '/api/v1/namespaces/default/pods/through-mosquitto')
    return res.json?.status?.phase === 'Running' ? res.json : undefined
  }, 120_000)
  t.equal(running.spec.nodeName, 'mosq-node')
  const logs = await until('the log', async () => {
    const res = await apiRequest(hub, 'GET', '/api/v1/namespaces/default/pods/through-mosquitto/log')
    return res.status === 200 && res.text.includes('via mosquitto') ? res.text : undefined
  })
  t.match(logs, 'via mosquitto')
  await apiRequest(hub, 'DELETE', '/api/v1/namespaces/default/pods/through-mosquitto')
  await until('the pod to be gone', async () => ((await apiRequest(hub, 'GET', '/api/v1/namespaces/default/pods/through-mosquitto')).status === 404 ? true : undefined))
  await removeClusterContainers(dockerClient(), clusterId)
})
