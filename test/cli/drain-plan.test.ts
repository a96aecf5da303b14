// Which pods a drain evicts, refuses and passes over, with kubectl's messages.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { planDrain } from '../../src/cli/drain-plan.js'

function pod(name: string, options: { owner?: string; emptyDir?: boolean; phase?: string; mirror?: boolean; deleting?: boolean } = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'default',
      ...(options.owner ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: options.owner, name: 'owner', uid: 'u', controller: true }] } : {}),
      ...(options.mirror ? { annotations: { 'kubernetes.io/config.mirror': 'x' } } : {}),
      ...(options.deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
    },
    spec: { nodeName: 'pi-1', containers: [{ name: 'c', image: 'busybox' }], ...(options.emptyDir ? { volumes: [{ name: 'scratch', emptyDir: {} }] } : {}) },
    status: { phase: options.phase ?? 'Running' },
  }
}

const names = (pods: KubeObject[]) => pods.map((p) => p.metadata.name)

t.test('evicts pods that a controller replaces, with nothing to say', async (t) => {
  const plan = planDrain([pod('web-1', { owner: 'ReplicaSet' }), pod('job-1', { owner: 'Job' })], {})
  t.same(plan, { evict: [pod('web-1', { owner: 'ReplicaSet' }), pod('job-1', { owner: 'Job' })], warnings: '', errors: [] })
})

t.test('an empty node: nothing to evict, nothing refused', async (t) => {
  t.same(planDrain([], {}), { evict: [], warnings: '', errors: [] })
})

t.test('refuses DaemonSet pods unless told to ignore them, and never evicts them', async (t) => {
  const ds = pod('agent-x', { owner: 'DaemonSet' })
  t.same(planDrain([ds], {}).errors, ['cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent-x'])
  const ignored = planDrain([ds, pod('web-1', { owner: 'ReplicaSet' })], { ignoreDaemonSets: true })
  t.same(names(ignored.evict), ['web-1'])
  t.equal(ignored.warnings, 'ignoring DaemonSet-managed Pods: default/agent-x')
  t.same(ignored.errors, [])
})

t.test('refuses pods with emptyDir data unless --delete-emptydir-data', async (t) => {
  const scratch = pod('cache-1', { owner: 'ReplicaSet', emptyDir: true })
  t.same(planDrain([scratch], {}).errors, ['cannot delete Pods with local storage (use --delete-emptydir-data to override): default/cache-1'])
  t.same(names(planDrain([scratch], { deleteEmptyDirData: true }).evict), ['cache-1'])
})

t.test('refuses unmanaged pods unless --force, which evicts them with a warning', async (t) => {
  const bare = pod('bare')
  t.same(planDrain([bare], {}).errors, ['cannot delete Pods that declare no controller (use --force to override): default/bare'])
  const forced = planDrain([bare], { force: true })
  t.same(names(forced.evict), ['bare'])
  t.equal(forced.warnings, 'deleting Pods that declare no controller: default/bare')
})

t.test('groups refusals by reason, each naming its pods', async (t) => {
  const plan = planDrain([pod('a'), pod('b'), pod('c', { owner: 'ReplicaSet', emptyDir: true })], {})
  t.same(plan.errors, [
    'cannot delete Pods that declare no controller (use --force to override): default/a, default/b',
    'cannot delete Pods with local storage (use --delete-emptydir-data to override): default/c',
  ])
})

t.test('finished pods go whatever they hold; mirror pods and pods being deleted are passed over', async (t) => {
  const plan = planDrain([pod('done', { phase: 'Succeeded', emptyDir: true }), pod('mirror', { mirror: true }), pod('going', { deleting: true, owner: 'ReplicaSet' })], {})
  t.same(names(plan.evict), ['done'])
  t.same(plan.errors, [])
})
