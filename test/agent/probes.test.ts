import t from 'tap'
import { createServer } from 'node:http'
import { ProbeWorker, runProbe } from '../../src/agent/probes.js'
import { FakeRuntime } from './fake-runtime.js'
import { FakeClock } from './fake-clock.js'

const flush = () => new Promise((r) => setImmediate(r))

t.test('liveness fails only after failureThreshold failures in a row, after the initial delay', async (t) => {
  const clock = new FakeClock()
  const runtime = new FakeRuntime(clock)
  runtime.addImage('i:1')
  const id = await runtime.create({ name: 'c', image: 'i:1', labels: {} })
  await runtime.start(id)
  let healthy = true
  runtime.execHandler = () => ({ exitCode: healthy ? 0 : 1, output: '' })
  const unhealthy: string[] = []
  const worker = new ProbeWorker(runtime, clock, { liveness: { exec: { command: ['check'] }, initialDelaySeconds: 5, periodSeconds: 2, failureThreshold: 2 } }, { containerId: id, host: '127.0.0.1' }, {
    onChange: () => {},
    onUnhealthy: (kind) => unhealthy.push(kind),
  })
  worker.start()
  healthy = false
  clock.advance(4_999)
  await flush()
  t.same(unhealthy, [], 'nothing before the initial delay')
  clock.advance(1)
  await flush()
  t.same(unhealthy, [], 'one failure is below the threshold')
  clock.advance(2_000)
  await flush()
  t.same(unhealthy, ['liveness'])
  worker.stop()
})

t.test('readiness turns true after successThreshold successes and false after failureThreshold failures', async (t) => {
  const clock = new FakeClock()
  const runtime = new FakeRuntime(clock)
  runtime.addImage('i:1')
  const id = await runtime.create({ name: 'c', image: 'i:1', labels: {} })
  await runtime.start(id)
  let ok = true
  runtime.execHandler = () => ({ exitCode: ok ? 0 : 1, output: '' })
  const seen: boolean[] = []
  const worker = new ProbeWorker(runtime, clock, { readiness: { exec: { command: ['check'] }, periodSeconds: 1, successThreshold: 2, failureThreshold: 1 } }, { containerId: id, host: '127.0.0.1' }, {
    onChange: (r) => seen.push(r.ready),
    onUnhealthy: () => t.fail('readiness never restarts a container'),
  })
  t.equal(worker.results.ready, false)
  worker.start()
  for (let i = 0; i < 3; i++) {
    clock.advance(1_000)
    await flush()
  }
  t.same(seen, [true])
  ok = false
  clock.advance(1_000)
  await flush()
  t.same(seen, [true, false])
  worker.stop()
})

t.test('httpGet and tcpSocket probes: 2xx/3xx succeed, other answers and refused connections fail', async (t) => {
  const server = createServer((req, res) => {
    res.statusCode = req.url === '/ok' ? 200 : 500
    res.end()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.teardown(() => server.close())
  const port = (server.address() as any).port
  const runtime = new FakeRuntime()
  const target = { containerId: 'x', host: '127.0.0.1' }
  t.equal((await runProbe(runtime, { httpGet: { path: '/ok', port } }, target, 2000)).ok, true)
  const bad = await runProbe(runtime, { httpGet: { path: '/bad', port } }, target, 2000)
  t.equal(bad.ok, false)
  t.match(bad.message, /statuscode: 500/)
  t.equal((await runProbe(runtime, { tcpSocket: { port } }, target, 2000)).ok, true)
  server.close()
  await new Promise((r) => setTimeout(r, 50))
  t.equal((await runProbe(runtime, { tcpSocket: { port } }, target, 2000)).ok, false)
})
