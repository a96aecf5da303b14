// bench/'s SimulatedRuntime meets the ContainerRuntime contract, and refuses what it cannot fake.

import t from 'tap'
import { SimulatedRuntime } from '../../bench/simulated-runtime.js'
import { containerRuntimeContract } from '../contract/container-runtime.js'

containerRuntimeContract(t, 'simulated (bench only)', async () => {
  const runtime = new SimulatedRuntime({ images: ['busybox:simulated'], pullable: (ref) => !ref.startsWith('nowhere/') })
  return { runtime, image: 'busybox:simulated', unpullableImage: 'nowhere/nothing:1', clusterId: 'simulated-cluster', close: async () => {} }
})

t.test('a pulled image is present; exec is refused as not implemented', async (t) => {
  const runtime = new SimulatedRuntime()
  t.equal(await runtime.imageId('app:1'), undefined)
  await runtime.pullImage('app:1')
  t.match(await runtime.imageId('app:1'), /^sha256:/)
  const id = await runtime.create({ name: 'x', image: 'app:1', labels: {} })
  await runtime.start(id)
  t.equal(runtime.running, 1)
  await t.rejects(runtime.exec(id, ['true']), { code: 'BRAMBLE_AGENT_NOT_IMPLEMENTED' })
})

t.test('every call answers on a later turn of the event loop, as an engine over its socket does', async (t) => {
  const runtime = new SimulatedRuntime({ images: ['app:1'] })
  let id = ''
  const calls: Array<[string, () => Promise<unknown>]> = [
    ['list', () => runtime.list({})],
    ['create', async () => (id = await runtime.create({ name: 'turns', image: 'app:1', labels: {} }))],
    ['inspect', () => runtime.inspect(id)],
    ['start', () => runtime.start(id)],
    ['stop', () => runtime.stop(id, 0)],
    ['a refused call', () => runtime.inspect('no-such-container').catch(() => undefined)],
  ]
  for (const [name, call] of calls) {
    let turned = false
    setImmediate(() => (turned = true))
    await call()
    t.ok(turned, `${name}: I/O queued before the call ran before its answer`)
  }
})

t.test("answers due together are spread over turns: the process's budget of answers per turn holds", async (t) => {
  const runtime = new SimulatedRuntime({ images: ['app:1'] })
  const id = await runtime.create({ name: 'budget', image: 'app:1', labels: {} })
  let turn = 0
  let done = false
  const tick = () => {
    turn++
    if (!done) setImmediate(tick)
  }
  setImmediate(tick)
  const perTurn = new Map<number, number>()
  // 60 callers asked at once; each spends 2 ms with its answer, so 25 ms a turn holds at most 13 (and one that crosses the line).
  await Promise.all(
    Array.from({ length: 60 }, async () => {
      await runtime.inspect(id)
      perTurn.set(turn, (perTurn.get(turn) ?? 0) + 1)
      const until = performance.now() + 2
      while (performance.now() < until) {
        // the caller's own work with the answer
      }
    }),
  )
  done = true
  t.ok(perTurn.size >= 4, `the answers came over ${perTurn.size} turns`)
  t.ok(Math.max(...perTurn.values()) <= 14, `at most 14 answers a turn: ${[...perTurn.values()].join(', ')}`)
})
