// A deleted pod's containers are stopped within the grace period its deletion named (an
// eviction's deleteOptions.gracePeriodSeconds, carried in the delete ref), else the pod's own.

import t from 'tap'
import { LABELS, type ContainerInfo } from '../../src/agent/container-runtime.js'
import { emptyPodState, planRemoval } from '../../src/agent/pod-planner.js'
import { decodeDown } from '../../src/api/protocol-decode.js'
import { encodeMessage } from '../../src/api/protocol.js'

function running(name: string, role: string, graceLabel: string): ContainerInfo {
  return {
    id: `id-${name}`,
    name: `k8s_${name}`,
    image: 'busybox',
    imageId: 'sha256:1',
    labels: { [LABELS.containerName]: name, [LABELS.role]: role, [LABELS.podUid]: 'u1', [LABELS.grace]: graceLabel },
    state: { status: 'running', exitCode: 0, oomKilled: false },
  }
}

const stops = (steps: ReturnType<typeof planRemoval>) => steps.flatMap((s) => (s.kind === 'stop' ? [`${s.container}:${s.graceSeconds}`] : []))

t.test("without a grace period of its own, a deleted pod's containers get the pod's", async (t) => {
  t.same(stops(planRemoval('u1', [running('app', 'app', '30'), running('pause', 'sandbox', '30')], emptyPodState())), ['app:30', 'pause:30'])
})

t.test("the deletion's grace period replaces the pod's for every container", async (t) => {
  const state = { ...emptyPodState(), deletionGraceSeconds: 2 }
  t.same(stops(planRemoval('u1', [running('app', 'app', '30'), running('pause', 'sandbox', '30')], state)), ['app:2', 'pause:2'])
})

t.test('a delete ref carries the grace period through the protocol, and a bad one is refused', async (t) => {
  const message = { revision: 5, since: 4, full: false, upserts: [], deletes: [{ kind: 'Pod', namespace: 'default', name: 'web', uid: 'u1', gracePeriodSeconds: 3 }] }
  const decoded = decodeDown('desired', encodeMessage(message))
  t.ok(decoded.ok)
  t.same((decoded as any).message.deletes[0], message.deletes[0])
  const bad = decodeDown('desired', encodeMessage({ ...message, deletes: [{ ...message.deletes[0], gracePeriodSeconds: -1 }] }))
  t.notOk(bad.ok)
  t.match((bad as any).reason, 'gracePeriodSeconds')
})
