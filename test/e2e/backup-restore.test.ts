// `bramble backup` and `bramble restore` through the real binaries: a backup taken while writes
// stream in holds every write acknowledged before it began; only an admin may take one; restore
// refuses a data dir that holds a hub and an archive that is not a backup; a hub started on the
// restored data dir has the same CA, tokens and Secrets, and the running agent reconnects to it
// without joining again and runs a pod created after the restore.

import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { apiRequest, closeApiAgents } from '../helpers/api-client.js'
import { BUSYBOX_IMAGE, ensureBusyboxImage } from '../helpers/busybox-image.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { freePort, runCli, until } from '../helpers/e2e.js'
import { BRAMBLE_BIN, startHubProcess, type HubProcess } from '../helpers/hub-process.js'

const NODE = 'backup-e2e'
const docker = dockerClient()

const pod = (name: string) => `
apiVersion: v1
kind: Pod
metadata: {name: ${name}}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: app
    image: ${BUSYBOX_IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while :; do sleep 1; done']
`

function startAgent(dataDir: string, hub: string, token?: string): { child: ChildProcess; output(): string; stop(): Promise<void> } {
  const child = spawn(process.execPath, [BRAMBLE_BIN, 'agent', '--data-dir', dataDir, '--hub', hub, '--node-name', NODE, '--log-level', 'info', ...(token ? ['--token', token] : [])], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout!.on('data', (d) => (output += d))
  child.stderr!.on('data', (d) => (output += d))
  const exited = new Promise<void>((res) => child.once('exit', () => res()))
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM')
      await exited
    },
  }
}

async function run() {
  await ensureBusyboxImage(docker)
  const apiPort = await freePort()
  const mqttPort = await freePort()
  const hubArgs = ['--api-port', String(apiPort), '--mqtt-port', String(mqttPort)]
  let hub: HubProcess = await startHubProcess({ command: 'hub', args: hubArgs })
  const oldDir = hub.dataDir
  const newDir = mkdtempSync(join(tmpdir(), 'bramble-restored-'))
  const scratch = mkdtempSync(join(tmpdir(), 'bramble-backup-'))
  const agentDir = mkdtempSync(join(tmpdir(), 'bramble-agent-'))
  const clusterId = readFileSync(join(oldDir, 'cluster-id'), 'utf8').trim()
  const archive = join(scratch, 'hub.tar.gz')
  let agent: ReturnType<typeof startAgent> | undefined
  t.teardown(async () => {
    await agent?.stop()
    await hub.stop()
    closeApiAgents()
    await removeClusterContainers(docker, clusterId)
    for (const d of [oldDir, newDir, scratch, agentDir]) rmSync(d, { recursive: true, force: true })
  })
  const bramble = (...args: string[]) => runCli(args, { kubeconfig: hub.kubeconfig })
  const getJson = async (...args: string[]) => {
    const r = await bramble('get', ...args, '-o', 'json')
    return r.code === 0 ? JSON.parse(r.stdout) : undefined
  }
  const nodeReady = async () => (await getJson('node', NODE))?.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')
  const podRunning = async (name: string) => (await getJson('pod', name))?.status?.phase === 'Running'
  const acknowledged: string[] = []

  await t.test('setup: an agent joins and runs a pod; a Secret is stored', async (t) => {
    const token = await runCli(['token', 'create', '--data-dir', oldDir])
    t.equal(token.code, 0, token.stderr)
    agent = startAgent(agentDir, `127.0.0.1:${apiPort}`, token.stdout.trim())
    await until('Node Ready', nodeReady)
    writeFileSync(join(scratch, 'before.yaml'), pod('before'))
    t.equal((await bramble('apply', '-f', join(scratch, 'before.yaml'))).code, 0)
    writeFileSync(join(scratch, 'secret.yaml'), 'apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: s3cret}\n')
    const applied = await bramble('apply', '-f', join(scratch, 'secret.yaml'))
    t.equal(applied.code, 0, applied.stderr)
    await until('pod before Running', () => podRunning('before'))
  })

  await t.test('a backup taken while writes stream in holds every write acknowledged before it began', async (t) => {
    const target = { server: hub.server, token: hub.token, ca: hub.ca }
    let writing = true
    let n = 0
    const writer = (async () => {
      while (writing && n < 2_000) {
        const name = `cm-${n++}`
        const r = await apiRequest(target, 'POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { n: String(n) } })
        if (r.status === 201) acknowledged.push(name)
      }
    })()
    await until('some writes acknowledged', () => acknowledged.length >= 20)
    const before = [...acknowledged]
    const backup = await bramble('backup', archive)
    writing = false
    await writer
    t.equal(backup.code, 0, backup.stderr)
    t.match(backup.stderr, /backup of revision \d+ written to/)
    t.equal(statSync(archive).mode & 0o777, 0o600, 'the archive is owner-only: it holds the CA and secrets keys')
    const again = await bramble('backup', archive)
    t.not(again.code, 0, 'an existing file is not overwritten')
    acknowledged.length = 0
    acknowledged.push(...before)
  })

  await t.test('only an admin may take a backup', async (t) => {
    const readOnly = readFileSync(join(oldDir, 'read-only-token'), 'utf8').trim()
    const r = await apiRequest({ server: hub.server, token: readOnly, ca: hub.ca }, 'GET', '/bramble/v1/backup')
    t.equal(r.status, 403, 'the read-only token is refused')
    const anonymous = await apiRequest({ server: hub.server, token: '', ca: hub.ca }, 'GET', '/bramble/v1/backup')
    t.equal(anonymous.status, 401)
  })

  await t.test('restore refuses a data dir that holds a hub, and a file that is not a backup', async (t) => {
    const intoHub = await runCli(['restore', archive, '--data-dir', oldDir])
    t.not(intoHub.code, 0)
    t.match(intoHub.stderr, /already holds a hub/)
    const junk = join(scratch, 'junk.tar.gz')
    writeFileSync(junk, 'not a tar')
    const notBackup = await runCli(['restore', junk, '--data-dir', join(scratch, 'junk-dir')])
    t.not(notBackup.code, 0)
    t.match(notBackup.stderr, /not a Bramble backup/)
  })

  await t.test('a hub on the restored data dir: same CA and data; the agent reconnects without joining again', async (t) => {
    const identity = readFileSync(join(agentDir, 'agent', 'identity.json'), 'utf8')
    await hub.stop()
    const restored = await runCli(['restore', archive, '--data-dir', newDir])
    t.equal(restored.code, 0, restored.stderr)
    t.match(restored.stderr, /store at revision \d+, 1 nodes/)
    t.equal(statSync(newDir).mode & 0o777, 0o700)
    t.equal(readFileSync(join(newDir, 'ca.crt'), 'utf8'), readFileSync(join(oldDir, 'ca.crt'), 'utf8'), 'the same cluster CA')
    hub = await startHubProcess({ command: 'hub', dataDir: newDir, args: hubArgs })
    const cms = new Set<string>((await getJson('configmaps'))?.items.map((c: any) => c.metadata.name))
    const lost = acknowledged.filter((name) => !cms.has(name))
    t.same(lost, [], `all ${acknowledged.length} writes acknowledged before the backup are there`)
    const secret = await getJson('secret', 'db')
    t.equal(Buffer.from(secret?.data?.password ?? '', 'base64').toString(), 's3cret', 'Secrets open with the restored secrets key')
    await until('the agent reports to the restored hub', nodeReady)
    writeFileSync(join(scratch, 'after.yaml'), pod('after'))
    t.equal((await bramble('apply', '-f', join(scratch, 'after.yaml'))).code, 0)
    await until('a pod made after the restore runs on the agent', () => podRunning('after'))
    t.ok(await podRunning('before'), 'the pod from before the backup still runs')
    t.equal(readFileSync(join(agentDir, 'agent', 'identity.json'), 'utf8'), identity, 'the agent kept its identity: no new join')
  })
}

const why = await dockerUnavailable(docker)
if (why) t.plan(0, `needs Docker: ${why}`)
else await run()
