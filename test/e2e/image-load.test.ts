// Images at a site without a registry, through the real binaries: a hub and two agents in network
// namespaces, each on a dockerd of its own that never reached a registry and lacks the image. A
// pod with imagePullPolicy Never waits with ErrImageNeverPull; `bramble image load` ships a
// `docker save` archive through the hub to one node, which loads it, and the pod runs there.
// `bramble image copy` then gets the image from that node to the other, where a pod runs too.
// Last, with no command at all: a pod waiting for an image another node reports in status.images
// gets it copied there by the hub.

import { createWriteStream, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { pipeline } from 'node:stream/promises'
import { randomBytes } from 'node:crypto'
import t from 'tap'
import { identityPath } from '../../src/agent/join-client.js'
import { apiRequest } from '../helpers/api-client.js'
import { dockerClient } from '../helpers/docker.js'
import { runCli, until } from '../helpers/e2e.js'
import { NetnsCluster } from '../helpers/netns-cluster.js'
import { netnsUnavailable } from '../helpers/netns-host.js'
import { importUniqueImage } from '../helpers/unique-image.js'

const EDGE = 'img-edge'
const OTHER = 'img-other'

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()

function pod(name: string, node: string, image: string): unknown {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: {
      nodeName: node,
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'app', image, imagePullPolicy: 'Never', command: ['sh', '-c', 'cat /unique.bin | wc -c; trap "exit 0" TERM; while :; do sleep 1; done'] }],
    },
  }
}

async function run(): Promise<void> {
  const cluster = await NetnsCluster.start({ prefix: 'im' })
  t.teardown(() => cluster.cleanup())
  const docker = dockerClient()
  const image = `img-test/site-app:${randomBytes(3).toString('hex')}`
  await importUniqueImage(docker, image)
  t.teardown(() => docker.getImage(image).remove({ force: true }).catch(() => {}))
  const archive = join(cluster.lab.dir, 'site-app.tar')
  await pipeline((await docker.getImage(image).get()) as unknown as NodeJS.ReadableStream, createWriteStream(archive))

  await cluster.addNode(EDGE)
  await cluster.addNode(OTHER)
  const edgeDocker = cluster.agent(EDGE).host.docker
  const otherDocker = cluster.agent(OTHER).host.docker
  const hasImage = (d: typeof docker) => d.getImage(image).inspect().then(() => true, () => false)
  const apply = (body: unknown) => runCli(['apply', '-f', '-'], { kubeconfig: cluster.hub.kubeconfig, stdin: JSON.stringify(body) })
  const podOf = (name: string) => cluster.get(`/api/v1/namespaces/default/pods/${name}`)

  await t.test('a pod with pull policy Never waits on a node that lacks the image', async (t) => {
    t.notOk(await hasImage(edgeDocker), 'the edge dockerd does not have the image')
    const created = await apply(pod('site-app', EDGE, image))
    t.equal(created.code, 0, created.stderr)
    const waiting = await until('ErrImageNeverPull', async () => {
      const w = (await podOf('site-app'))?.status?.containerStatuses?.[0]?.state?.waiting
      return w?.reason === 'ErrImageNeverPull' ? w : undefined
    })
    t.match(waiting.message, image)
  })

  await t.test('image load to an unknown node is refused naming it, before anything is loaded', async (t) => {
    const r = await runCli(['image', 'load', archive, '--node', 'img-nowhere'], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(r.code, 1)
    t.match(r.stderr, /no such node: img-nowhere/)
    const usage = await runCli(['image', 'load', archive], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(usage.code, 2, 'no target is a usage error')
    t.match(usage.stderr, /--node NAME .* or --all/)
    // A node that is not Ready fails at once, not after the hub's wait for an answer.
    const ghost = await apiRequest(cluster.hub, 'POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'img-ghost' } })
    t.equal(ghost.status, 201, ghost.text)
    const notReady = await runCli(['image', 'load', archive, '--node', 'img-ghost'], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(notReady.code, 1)
    t.equal(notReady.stdout, 'img-ghost: failed: node img-ghost is not Ready, so it cannot take the image now; try again once it is\n')
    t.match(notReady.stderr, /1 of 1 nodes did not get the image: img-ghost/)
    await apiRequest(cluster.hub, 'DELETE', '/api/v1/nodes/img-ghost')
    // Uploads go in order and whole: each refusal names what to fix.
    const put = (query: string, body: Buffer) => apiRequest(cluster.hub, 'PUT', `/bramble/v1/image-archives?${query}`, body, { 'Content-Type': 'application/x-tar' })
    t.match((await put('id=nope&offset=0', Buffer.from('x'))).json, { code: 400, message: /^id: must be 16 to 64 lowercase hex digits/ })
    const id = randomBytes(16).toString('hex')
    t.match((await put(`id=${id}&offset=-1`, Buffer.from('x'))).json, { code: 400, message: /^offset: / })
    t.match((await put(`id=${id}&offset=0`, Buffer.from('abc'))).json, { archive: id, size: 3 })
    t.match((await put(`id=${id}&offset=10`, Buffer.from('d'))).json, { code: 409, message: `image archive ${id} holds 3 bytes, not 10; send from offset 3` })
    const early = await apiRequest(cluster.hub, 'POST', '/bramble/v1/image-loads', { archive: id, size: 4, nodes: [EDGE] })
    t.match(early.json, { code: 409, message: `image archive ${id} holds 3 bytes, not 4: finish the upload first` })
    t.match((await apiRequest(cluster.hub, 'POST', '/bramble/v1/image-loads', { archive: id, size: 3 })).json, { code: 400, message: 'nodes: must name at least one node' })
    // Archives go to nodes only, each with its own credentials, and only for a load it was asked to do.
    const path = `/bramble/v1/node-image-archives?id=${'0'.repeat(32)}`
    t.equal((await apiRequest({ server: cluster.hub.server, ca: cluster.hub.ca }, 'GET', path)).status, 401, 'no credentials: 401')
    t.equal((await apiRequest(cluster.hub, 'GET', path)).status, 401, "the admin token is not a node's credentials")
    const wrong = `Basic ${Buffer.from(`${EDGE}:not-its-password`).toString('base64')}`
    t.equal((await apiRequest({ server: cluster.hub.server, ca: cluster.hub.ca }, 'GET', path, undefined, { Authorization: wrong })).status, 401, 'a wrong password: 401')
    const identity = JSON.parse(readFileSync(identityPath(join(cluster.agent(EDGE).host.dir, 'agent')), 'utf8'))
    const own = `Basic ${Buffer.from(`${identity.mqtt.username}:${identity.mqtt.password}`).toString('base64')}`
    const notAsked = await apiRequest({ server: cluster.hub.server, ca: cluster.hub.ca }, 'GET', path, undefined, { Authorization: own })
    t.equal(notAsked.status, 403, 'the right credentials, but no load asked of the node: 403')
    t.match(notAsked.json?.message, `node ${EDGE} was not asked to load image archive`)
  })

  await t.test('image load ships the archive through the hub; the node loads it and the pod runs', async (t) => {
    const r = await runCli(['image', 'load', archive, '--node', EDGE], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, `${EDGE}: loaded ${image}\n`)
    t.ok(await hasImage(edgeDocker), 'the edge dockerd has the image now')
    t.notOk(await hasImage(otherDocker), 'the other node was not asked')
    const running = await until('pod Running', async () => {
      const p = await podOf('site-app')
      return p?.status?.phase === 'Running' ? p : undefined
    }, 120_000)
    t.equal(running.spec.nodeName, EDGE)
    const log = await until('the pod read its file', async () => (await cluster.bramble('logs', 'site-app')).trim())
    t.equal(log, '2000000', "the image's own 2 MB file is there")
  })

  await t.test('image copy gets the image from the node that has it to one that lacks it', async (t) => {
    const created = await apply(pod('site-app-2', OTHER, image))
    t.equal(created.code, 0, created.stderr)
    const r = await runCli(['image', 'copy', image, '--from', EDGE, '--to', OTHER], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.equal(r.stdout, `${OTHER}: has ${image}\n`)
    t.ok(await hasImage(otherDocker), 'the other dockerd has the image now')
    await until('second pod Running', async () => (await podOf('site-app-2'))?.status?.phase === 'Running', 120_000)
    const missing = await runCli(['image', 'copy', 'img-test/none:1', '--from', EDGE, '--to', OTHER], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(missing.code, 1)
    t.match(missing.stdout, new RegExp(`${EDGE}: failed: could not save img-test/none:1: .*No such image`, 'i'))
  })

  await t.test('a pod waiting for an image another node has gets it copied there by the hub', async (t) => {
    const second = `img-test/site-tool:${randomBytes(3).toString('hex')}`
    await importUniqueImage(docker, second)
    t.teardown(() => docker.getImage(second).remove({ force: true }).catch(() => {}))
    const tar = join(cluster.lab.dir, 'site-tool.tar')
    await pipeline((await docker.getImage(second).get()) as unknown as NodeJS.ReadableStream, createWriteStream(tar))
    t.equal((await runCli(['image', 'load', tar, '--node', EDGE], { kubeconfig: cluster.hub.kubeconfig })).code, 0)
    const listed = await until('the edge node lists the image in status.images', async () => {
      const images: any[] = (await cluster.get(`/api/v1/nodes/${EDGE}`))?.status?.images ?? []
      return images.find((i) => i.names.includes(second))
    })
    t.ok(listed.sizeBytes > 2_000_000, 'with its size')
    const created = await apply(pod('site-tool', OTHER, second))
    t.equal(created.code, 0, created.stderr)
    await until('the pod runs on the node that lacked the image', async () => (await podOf('site-tool'))?.status?.phase === 'Running', 180_000)
    t.ok(await hasImage(otherDocker), 'the image was copied to it')
    const events = (await cluster.get('/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dsite-tool'))?.items ?? []
    t.ok(events.some((e: any) => e.reason === 'ImageCopied' && e.message === `image "${second}" copied from node ${EDGE} to node ${OTHER}`), 'an ImageCopied event says from where')
  })

  await t.test('image load --all loads on every Ready node', async (t) => {
    const third = `img-test/site-all:${randomBytes(3).toString('hex')}`
    await importUniqueImage(docker, third, 10_000)
    t.teardown(() => docker.getImage(third).remove({ force: true }).catch(() => {}))
    const tar = join(cluster.lab.dir, 'site-all.tar')
    await pipeline((await docker.getImage(third).get()) as unknown as NodeJS.ReadableStream, createWriteStream(tar))
    const r = await runCli(['image', 'load', tar, '--all'], { kubeconfig: cluster.hub.kubeconfig })
    t.equal(r.code, 0, r.stderr)
    t.same(r.stdout.trim().split('\n').sort(), [`${EDGE}: loaded ${third}`, `${OTHER}: loaded ${third}`])
    for (const d of [edgeDocker, otherDocker]) t.ok(await d.getImage(third).inspect().then(() => true, () => false), 'on each engine')
  })
}
