// A node whose container runtime is down says so the way the kubelet does: Ready=False with reason
// KubeletNotReady and the cause in the message; the other conditions are unchanged, and Ready
// comes back (with a new transition time) once the runtime answers again.

import t from 'tap'
import { nodeStatus, statusFingerprint, type NodeFacts } from '../../src/agent/node-status.js'

const GiB = 1024 ** 3
const facts = (over: Partial<NodeFacts> = {}): NodeFacts => ({
  architecture: 'arm64',
  operatingSystem: 'linux',
  osImage: 'Debian GNU/Linux 12 (bookworm)',
  kernelVersion: '6.6.31-v8+',
  hostname: 'pi-one',
  addresses: ['10.0.0.21'],
  cpu: { cores: 4, model: 'ARM Cortex-A72' },
  memory: { totalBytes: 4 * GiB, availableBytes: 3 * GiB },
  disk: { totalBytes: 32 * GiB, freeBytes: 20 * GiB },
  containerRuntimeVersion: 'docker://20.10.24',
  kubeletVersion: 'bramble-0.1.0',
  ...over,
})
const reserve = { cpuMillis: 250, memoryBytes: 256 * 1024 * 1024 }
const T0 = Date.parse('2024-05-01T10:00:00Z')
const ready = (s: ReturnType<typeof nodeStatus>) => s.conditions.find((c) => c.type === 'Ready')!

t.test('a runtime that is down makes the node Ready=False, KubeletNotReady, saying why', async (t) => {
  const up = nodeStatus(facts(), reserve, T0)
  const down = nodeStatus(facts({ runtimeDown: 'container runtime is down: its event stream ended' }), reserve, T0 + 5_000, up)
  t.match(ready(down), { status: 'False', reason: 'KubeletNotReady', message: 'container runtime is down: its event stream ended', lastTransitionTime: '2024-05-01T10:00:05Z' })
  t.same(
    down.conditions.filter((c) => c.type !== 'Ready').map((c) => [c.type, c.status]),
    up.conditions.filter((c) => c.type !== 'Ready').map((c) => [c.type, c.status]),
    'the other conditions do not move',
  )
  t.not(statusFingerprint(down), statusFingerprint(up), 'a change worth publishing')
})

t.test('Ready comes back with a new transition time once the runtime answers', async (t) => {
  const down = nodeStatus(facts({ runtimeDown: 'container runtime is down: it does not answer' }), reserve, T0)
  const back = nodeStatus(facts(), reserve, T0 + 10_000, down)
  t.match(ready(back), { status: 'True', reason: 'KubeletReady', lastTransitionTime: '2024-05-01T10:00:10Z' })
})

t.test('do nothing: with the runtime up, Ready stays True and keeps its transition time', async (t) => {
  const first = nodeStatus(facts(), reserve, T0)
  const later = nodeStatus(facts(), reserve, T0 + 60_000, first)
  t.equal(ready(later).status, 'True')
  t.equal(ready(later).lastTransitionTime, ready(first).lastTransitionTime)
  t.equal(statusFingerprint(later), statusFingerprint(first))
})
