// imagePullSecrets through the real binaries: a hub, an agent on this machine's engine and a
// private registry on loopback (Debian's docker-registry, htpasswd auth) holding an image the
// engine does not have. The pull Secret (kubernetes.io/dockerconfigjson) is applied like any
// manifest and goes down to the node sealed; a pod naming it runs, one without it fails with the
// registry's refusal, and `bramble describe pod` shows both stories.

import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { closeApiAgents } from '../helpers/api-client.js'
import { startAgentProcess, type AgentProcess } from '../helpers/agent-process.js'
import { dockerClient, dockerUnavailable, removeClusterContainers } from '../helpers/docker.js'
import { runCli, until } from '../helpers/e2e.js'
import { startHubProcess, type HubProcess } from '../helpers/hub-process.js'
import { pushImage, registryUnavailable, startLocalRegistry } from '../helpers/local-registry.js'
import { importUniqueImage } from '../helpers/unique-image.js'

const NODE = 'img-pull'
const docker = dockerClient()
const unavailable = (await dockerUnavailable(docker)) ?? registryUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()

async function run(): Promise<void> {
  const root = await mkdtemp(join(tmpdir(), 'img-pull-e2e-'))
  let hub: HubProcess | undefined
  let agent: AgentProcess | undefined
  let clusterId: string | undefined
  const registry = await startLocalRegistry()
  // One teardown, in this order: the agent is gone before its containers go (tap runs teardowns
  // last registered first, and a live agent would make the pods again).
  t.teardown(async () => {
    await agent?.stop('SIGKILL')
    await hub?.stop()
    if (clusterId) await removeClusterContainers(docker, clusterId)
    closeApiAgents()
    await registry.stop()
    await rm(root, { recursive: true, force: true })
  })
  const tag = randomBytes(3).toString('hex')
  const local = `img-test/pull-e2e:${tag}`
  const image = `${registry.address}/img-test/private-app:${tag}`
  await importUniqueImage(docker, local)
  await pushImage(docker, registry, local, image)
  await docker.getImage(image).remove()
  await docker.getImage(local).remove()
  t.teardown(() => docker.getImage(image).remove({ force: true }).catch(() => {}))

  hub = await startHubProcess({ dataDir: join(root, 'hub') })
  clusterId = readFileSync(join(root, 'hub', 'cluster-id'), 'utf8').trim()
  const token = (await runCli(['token', 'create', '--data-dir', join(root, 'hub')])).stdout.trim()
  agent = startAgentProcess({
    node: NODE,
    hub: new URL(hub.server).host,
    dataDir: join(root, 'agent'),
    token,
    args: ['--wireguard-interface', 'none', '--cluster-dns', 'none', '--metrics-address', 'none', '--heartbeat-interval', '1s'],
  })
  const bramble = (...args: string[]) => runCli(args, { kubeconfig: hub!.kubeconfig })
  const apply = (body: unknown) => runCli(['apply', '-f', '-'], { kubeconfig: hub!.kubeconfig, stdin: JSON.stringify(body) })
  const pod = (name: string, secret?: string) => ({
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: NODE,
      terminationGracePeriodSeconds: 1,
      ...(secret ? { imagePullSecrets: [{ name: secret }] } : {}),
      containers: [{ name: 'app', image, command: ['sh', '-c', 'trap "exit 0" TERM; while :; do sleep 1; done'] }],
    },
  })
  const phase = async (name: string) => JSON.parse((await bramble('get', 'pod', name, '-o', 'json')).stdout || '{}')?.status?.phase

  await until(`node ${NODE} Ready`, async () => (await bramble('get', 'node', NODE)).stdout.includes(' Ready'), 120_000)

  await t.test('without a pull secret the pod fails to pull, with the registry refusal in describe', async (t) => {
    t.equal((await apply(pod('no-creds'))).code, 0)
    // The event and the pod's status travel in separate messages: either may be shown first.
    const text = await until('a Failed pull event and the waiting state', async () => {
      const out = (await bramble('describe', 'pod', 'no-creds')).stdout
      return /no basic auth credentials/.test(out) && /State:\s+Waiting/.test(out) ? out : undefined
    })
    t.match(text, /State:\s+Waiting \((ErrImagePull|ImagePullBackOff)\)/)
    t.match(text, new RegExp(`Failed to pull image "${image.replace(/[.]/g, '\\.')}": .*no basic auth credentials`))
  })

  await t.test('with a dockerconfigjson pull secret applied, the pod pulls and runs', async (t) => {
    const auths = { [registry.address]: { username: registry.username, password: registry.password, auth: Buffer.from(`${registry.username}:${registry.password}`).toString('base64') } }
    const secret = { apiVersion: 'v1', kind: 'Secret', type: 'kubernetes.io/dockerconfigjson', metadata: { name: 'regcred', namespace: 'default' }, data: { '.dockerconfigjson': Buffer.from(JSON.stringify({ auths })).toString('base64') } }
    t.equal((await apply(secret)).code, 0)
    t.equal((await apply(pod('with-creds', 'regcred'))).code, 0)
    await until('with-creds Running', async () => (await phase('with-creds')) === 'Running', 120_000)
    // The Pulled event and the Running status travel in separate messages: either may come first.
    const text = await until('the Pulled event in describe', async () => {
      const out = (await bramble('describe', 'pod', 'with-creds')).stdout
      return /Successfully pulled/.test(out) ? out : undefined
    })
    t.match(text, /Successfully pulled image ".+" in [\d.]+s \(1 layer, [\d.]+ MB\)/, 'describe shows the pull with its time and size')
    t.ok(await docker.getImage(image).inspect().then(() => true, () => false), 'the image is on the engine now')
  })
}
