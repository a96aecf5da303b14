// The ContainerRuntime contract: one suite, run against Docker (test/agent/docker-runtime.test.ts)
// and against the in-memory fake (test/agent/fake-runtime.test.ts).

import type { Test } from 'tap'
import { randomBytes } from 'node:crypto'
import { LABELS, type ContainerRuntime, type ContainerSpec } from '../../src/agent/container-runtime.js'
import { ImagePullError } from '../../src/agent/errors.js'
import { PAUSE_COMMAND } from '../../src/agent/pod-pause-image.js'

export interface RuntimeFixture {
  runtime: ContainerRuntime
  /** An image present in the runtime whose /bin/sh and sleep work. */
  image: string
  /** A reference no pull can fetch. */
  unpullableImage: string
  clusterId: string
  close(): Promise<void>
}

export type MakeRuntime = () => Promise<RuntimeFixture>

export function containerRuntimeContract(t: Test, name: string, makeRuntime: MakeRuntime): void {
  t.test(`ContainerRuntime contract: ${name}`, async (t) => {
    const f = await makeRuntime()
    t.teardown(() => f.close())
    const { runtime, image, clusterId } = f
    const suffix = randomBytes(3).toString('hex')
    const spec = (container: string, extra: Partial<ContainerSpec> = {}): ContainerSpec => ({
      name: `bramble-contract-${container}-${suffix}`,
      image,
      cmd: PAUSE_COMMAND,
      labels: { [LABELS.cluster]: clusterId, [LABELS.containerName]: container },
      log: { maxSize: '1m', maxFile: 2 },
      ...extra,
    })

    await t.test('lists nothing for a cluster that has no containers', async (t) => {
      t.same(await runtime.list({ [LABELS.cluster]: clusterId }), [])
    })

    await t.test('knows which images are present', async (t) => {
      t.match(await runtime.imageId(image), /^sha256:/)
      t.equal(await runtime.imageId(f.unpullableImage), undefined)
    })

    await t.test('a failed pull is an ImagePullError naming the image', async (t) => {
      const err = await runtime.pullImage(f.unpullableImage).catch((e) => e)
      t.type(err, ImagePullError)
      t.equal(err.code, 'BRAMBLE_AGENT_IMAGE_PULL')
      t.equal(err.image, f.unpullableImage)
    })

    await t.test('creates, starts, stops and removes a container found by its labels', async (t) => {
      const id = await runtime.create(spec('a'))
      let [c] = await runtime.list({ [LABELS.cluster]: clusterId, [LABELS.containerName]: 'a' })
      t.equal(c.id, id)
      t.equal(c.name, spec('a').name)
      t.equal(c.image, image)
      t.match(c.imageId, /^sha256:/)
      t.equal(c.labels[LABELS.cluster], clusterId)
      t.equal(c.state.status, 'created')
      t.same(await runtime.listRunning({ [LABELS.cluster]: clusterId }), [], 'a created container is not running')

      await runtime.start(id)
      t.same(await runtime.listRunning({ [LABELS.cluster]: clusterId, [LABELS.containerName]: 'a' }), [{ id, name: spec('a').name, labels: c.labels }], 'listRunning: id, name and labels, as list has them')
      t.same(await runtime.listRunning({ [LABELS.cluster]: `${clusterId}-other` }), [], 'listRunning filters by labels')
      c = await runtime.inspect(id)
      t.equal(c.state.status, 'running')
      t.ok(c.state.startedAt && !Number.isNaN(Date.parse(c.state.startedAt)), 'startedAt is a timestamp')
      t.ok(c.ipAddress, 'a container on the default network has an IP address')

      await runtime.stop(id, 5)
      c = await runtime.inspect(id)
      t.equal(c.state.status, 'exited')
      t.ok(c.state.finishedAt, 'finishedAt is set once stopped')
      t.same(await runtime.listRunning({ [LABELS.cluster]: clusterId }), [], 'a stopped container is not running')
      await runtime.stop(id, 5) // stopping a stopped container is fine

      await runtime.remove(id)
      t.same(await runtime.list({ [LABELS.cluster]: clusterId }), [])
      await runtime.remove(id) // removing a missing container is fine
    })

    await t.test('a missing container is a ContainerNotFoundError', async (t) => {
      const missing = 'f'.repeat(64)
      await t.rejects(runtime.inspect(missing), { code: 'BRAMBLE_AGENT_CONTAINER_NOT_FOUND' })
      await t.rejects(runtime.start(missing), { code: 'BRAMBLE_AGENT_CONTAINER_NOT_FOUND' })
    })

    await t.test('labels keep clusters apart', async (t) => {
      const mine = await runtime.create(spec('mine'))
      const other = await runtime.create(spec('other', { labels: { [LABELS.cluster]: `${clusterId}-other` } }))
      t.teardown(async () => {
        await runtime.remove(mine)
        await runtime.remove(other)
      })
      const ids = (await runtime.list({ [LABELS.cluster]: clusterId })).map((c) => c.id)
      t.same(ids, [mine])
    })

    await t.test('a second container joins the first one\'s network namespace', async (t) => {
      const owner = await runtime.create(spec('owner'))
      const joined = await runtime.create(spec('joined', { networkMode: `container:${spec('owner').name}` }))
      t.teardown(async () => {
        await runtime.remove(joined)
        await runtime.remove(owner)
      })
      await runtime.start(owner)
      await runtime.start(joined)
      t.equal((await runtime.inspect(joined)).state.status, 'running')
      t.notOk((await runtime.inspect(joined)).ipAddress, 'the joined container has no address of its own')
    })

    await t.test('wait resolves with the exit code once the container stops', async (t) => {
      const id = await runtime.create(spec('waited'))
      t.teardown(() => runtime.remove(id))
      await runtime.start(id)
      const waited = runtime.wait(id)
      await runtime.stop(id, 5)
      const { exitCode } = await waited
      t.equal(exitCode, (await runtime.inspect(id)).state.exitCode)
    })

    await t.test('reports lifecycle events of its cluster\'s containers', async (t) => {
      const seen: string[] = []
      const watch = await runtime.watchEvents({ [LABELS.cluster]: clusterId }, (e) => seen.push(e.action))
      t.teardown(() => watch.close())
      const id = await runtime.create(spec('evented'))
      await runtime.start(id)
      await runtime.remove(id)
      const deadline = Date.now() + 10_000
      while (!seen.includes('destroy') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
      t.ok(seen.includes('start'), 'start seen')
      t.ok(seen.includes('destroy'), 'destroy seen')
    })
  })
}
