// Image garbage collection against a real dockerd of its own (in a network namespace, so no other
// test's images are ever at risk), with fake thresholds: the real disk is far from full, so a
// high threshold of 100% finds nothing to do, and 1% / 0% counts it as full. Unused images go,
// oldest first; one a running container uses and one a desired pod names stay; the disk staying
// full is a Warning Event and the problem DiskPressure reports.

import t from 'tap'
import { statfs } from 'node:fs/promises'
import { DockerImageEngine } from '../../src/agent/image-engine.js'
import { ImageGc } from '../../src/agent/image-gc.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'
import { NetnsLab, netnsUnavailable } from '../helpers/netns-host.js'
import { importUniqueImage } from '../helpers/unique-image.js'

const unavailable = await netnsUnavailable()
if (unavailable) t.plan(0, unavailable)
else await run()

async function run(): Promise<void> {
  const lab = await NetnsLab.create({ prefix: 'ig' })
  t.teardown(() => lab.cleanup())
  const host = await lab.addHost()
  const docker = host.docker
  // Created a second apart (the engine keeps whole seconds), so their age orders them.
  for (const name of ['img-gc/a:1', 'img-gc/b:1', 'img-gc/c:1']) {
    await importUniqueImage(docker, name, 100_000)
    await new Promise((r) => setTimeout(r, 1_100))
  }
  await importUniqueImage(docker, 'img-gc/running:1', 100_000)
  await importUniqueImage(docker, 'img-gc/desired:1', 100_000)
  const c = await docker.createContainer({ Image: 'img-gc/running:1', Cmd: ['sleep', '600'], name: 'img-gc-running' })
  await c.start()

  const engine = new DockerImageEngine(docker, (path) => statfs(path))
  const events: Array<{ reason: string; message: string; type: string }> = []
  const problems: Array<string | undefined> = []
  const gc = (highPercent: number, lowPercent: number) =>
    new ImageGc({
      images: engine,
      thresholds: { highPercent, lowPercent },
      keep: () => new Set(['img-gc/desired:1']),
      event: (reason, message, type) => events.push({ reason, message, type }),
      onProblemChange: (p) => problems.push(p),
      clock: systemClock,
      logger: silentLogger(),
    })
  const tags = async () => (await engine.list()).flatMap((i) => i.tags).filter((n) => n.startsWith('img-gc/')).sort()

  await t.test('below the high threshold nothing is removed', async (t) => {
    const result = await gc(100, 99).runOnce()
    t.same(result, { removed: [], problem: undefined })
    t.same(await tags(), ['img-gc/a:1', 'img-gc/b:1', 'img-gc/c:1', 'img-gc/desired:1', 'img-gc/running:1'])
    t.same(events, [])
  })

  await t.test('over it, unused images go oldest first; in-use and desired ones stay; the disk staying full is said', async (t) => {
    const collector = gc(1, 0)
    const result = await collector.runOnce()
    t.same(result.removed.map((i) => i.tags[0]).filter((n) => n?.startsWith('img-gc/')), ['img-gc/a:1', 'img-gc/b:1', 'img-gc/c:1'], 'least recently used (here: oldest) first')
    t.same(await tags(), ['img-gc/desired:1', 'img-gc/running:1'], 'the running container’s image and the desired pod’s image are kept')
    const removedEvent = events.find((e) => e.reason === 'ImageGCRemoved')
    // The host's own test image (imported into every namespace dockerd) may go among them.
    t.match(removedEvent, { type: 'Normal', message: /^removed \d+ unused images?, least recently used first \([\d.]+ MB\): .*img-gc\/a:1;.* img-gc\/b:1;.* img-gc\/c:1/ })
    const full = events.find((e) => e.reason === 'FreeDiskSpaceFailed')
    t.match(full, { type: 'Warning', message: /stays [\d.]+% full \(high threshold 1%\)/ })
    t.equal(collector.problem(), full?.message, 'the problem DiskPressure reports')
    t.same(problems, [full?.message])
  })
}
