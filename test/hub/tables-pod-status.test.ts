// The STATUS column of `get pods` reads as kubectl's: a container's waiting or terminated reason
// wins over the phase, init containers show their progress, and a deleted pod is Terminating.

import t from 'tap'
import { toTable } from '../../src/hub/tables.js'

const statusOf = (pod: any): string => {
  const table = toTable('Pod', [{ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', ...pod.metadata }, spec: pod.spec ?? { containers: [{ name: 'a' }] }, status: pod.status }], '1', Date.now(), 'None')
  const column = table.columnDefinitions.findIndex((c) => c.name === 'Status')
  return table.rows[0].cells[column] as string
}

t.test('a running, ready pod is Running', async (t) => {
  t.equal(statusOf({ status: { phase: 'Running', containerStatuses: [{ name: 'a', ready: true, state: { running: {} } }] } }), 'Running')
})

t.test('a container in back-off shows CrashLoopBackOff though the phase is Running', async (t) => {
  t.equal(
    statusOf({
      spec: { containers: [{ name: 'a' }, { name: 'b' }] },
      status: { phase: 'Running', containerStatuses: [{ name: 'a', ready: false, state: { waiting: { reason: 'CrashLoopBackOff' } } }, { name: 'b', ready: true, state: { running: {} } }] },
    }),
    'CrashLoopBackOff',
  )
})

t.test('a container that ended shows its reason, or its exit code without one', async (t) => {
  t.equal(statusOf({ status: { phase: 'Running', containerStatuses: [{ name: 'a', state: { terminated: { reason: 'Error', exitCode: 1 } } }] } }), 'Error')
  t.equal(statusOf({ status: { phase: 'Running', containerStatuses: [{ name: 'a', state: { terminated: { exitCode: 3 } } }] } }), 'ExitCode:3')
})

t.test('an init container still working shows Init:i/n', async (t) => {
  t.equal(
    statusOf({
      spec: { initContainers: [{ name: 'i0' }, { name: 'i1' }], containers: [{ name: 'a' }] },
      status: { phase: 'Pending', initContainerStatuses: [{ name: 'i0', state: { terminated: { exitCode: 0, reason: 'Completed' } } }, { name: 'i1', state: { running: {} } }] },
    }),
    'Init:1/2',
  )
})

t.test('a pod being deleted is Terminating', async (t) => {
  t.equal(statusOf({ metadata: { deletionTimestamp: new Date().toISOString() }, status: { phase: 'Running' } }), 'Terminating')
})
