import t from 'tap'
import { containerRuntimeContract } from '../contract/container-runtime.js'
import { FakeRuntime } from './fake-runtime.js'

containerRuntimeContract(t, 'in-memory fake', async () => {
  const runtime = new FakeRuntime()
  runtime.addImage('busybox:fake')
  return { runtime, image: 'busybox:fake', unpullableImage: 'nowhere/nothing:1', clusterId: 'fake-cluster', close: async () => {} }
})

t.test('the fake throws on what it does not implement', async (t) => {
  const runtime = new FakeRuntime()
  runtime.addImage('busybox:fake')
  const id = await runtime.create({ name: 'x', image: 'busybox:fake', labels: {} })
  await t.rejects(runtime.logs(id), { code: 'BRAMBLE_AGENT_NOT_IMPLEMENTED' })
  await t.rejects(runtime.exec(id, ['true']), { code: 'BRAMBLE_AGENT_NOT_IMPLEMENTED' })
})
