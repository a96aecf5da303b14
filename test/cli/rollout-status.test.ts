// What `rollout status` says at each stage of a Deployment's and a DaemonSet's rollout: kubectl's
// messages, in kubectl's order of checks.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { CommandError } from '../../src/cli/errors.js'
import { daemonSetRolloutState, deploymentRolloutState } from '../../src/cli/rollout-status.js'

function deployment(generation: number, replicas: number, status: Record<string, unknown>, revision = '2'): KubeObject {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', generation, annotations: { 'deployment.kubernetes.io/revision': revision } }, spec: { replicas }, status }
}

t.test('waits until the controller has observed the latest generation', async (t) => {
  const s = deploymentRolloutState(deployment(3, 2, { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }))
  t.same(s, { message: 'Waiting for deployment spec update to be observed...\n', done: false })
})

t.test('counts new replicas, then old ones pending termination, then available ones', async (t) => {
  const cases: [Record<string, unknown>, string][] = [
    [{ observedGeneration: 2, replicas: 3, updatedReplicas: 1, availableReplicas: 2 }, 'Waiting for deployment "web" rollout to finish: 1 out of 3 new replicas have been updated...\n'],
    [{ observedGeneration: 2, replicas: 4, updatedReplicas: 3, availableReplicas: 3 }, 'Waiting for deployment "web" rollout to finish: 1 old replicas are pending termination...\n'],
    [{ observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 1 }, 'Waiting for deployment "web" rollout to finish: 1 of 3 updated replicas are available...\n'],
  ]
  for (const [status, message] of cases) t.match(deploymentRolloutState(deployment(2, 3, status)), { message, done: false })
})

t.test('is done when every replica is updated and available', async (t) => {
  const s = deploymentRolloutState(deployment(2, 3, { observedGeneration: 2, replicas: 3, updatedReplicas: 3, availableReplicas: 3 }))
  t.same(s, { message: 'deployment "web" successfully rolled out\n', done: true })
})

t.test('a missing status counts as nothing done yet', async (t) => {
  const s = deploymentRolloutState({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', generation: 1 }, spec: { replicas: 1 } })
  t.equal(s.message, 'Waiting for deployment spec update to be observed...\n')
})

t.test('fails on an exceeded progress deadline and on another revision than asked for', async (t) => {
  const stuck = deployment(2, 2, { observedGeneration: 2, conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }] })
  t.throws(() => deploymentRolloutState(stuck), new CommandError('deployment "web" exceeded its progress deadline'))
  const running = deployment(2, 2, { observedGeneration: 2, replicas: 2, updatedReplicas: 2, availableReplicas: 2 }, '4')
  t.throws(() => deploymentRolloutState(running, 3), { message: 'desired revision (3) is different from the running revision (4)' })
  t.equal(deploymentRolloutState(running, 4).done, true, 'the right revision is fine')
})

t.test('daemon sets: observed generation, updated pods, then available pods', async (t) => {
  const ds = (generation: number, status: Record<string, unknown>, strategy = 'RollingUpdate'): KubeObject => ({
    apiVersion: 'apps/v1',
    kind: 'DaemonSet',
    metadata: { name: 'agent', generation },
    spec: { updateStrategy: { type: strategy } },
    status,
  })
  t.equal(daemonSetRolloutState(ds(2, { observedGeneration: 1 })).message, 'Waiting for daemon set spec update to be observed...\n')
  t.equal(daemonSetRolloutState(ds(2, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 1, numberAvailable: 3 })).message, 'Waiting for daemon set "agent" rollout to finish: 1 out of 3 new pods have been updated...\n')
  t.equal(daemonSetRolloutState(ds(2, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 2 })).message, 'Waiting for daemon set "agent" rollout to finish: 2 of 3 updated pods are available...\n')
  t.same(daemonSetRolloutState(ds(2, { observedGeneration: 2, desiredNumberScheduled: 3, updatedNumberScheduled: 3, numberAvailable: 3 })), { message: 'daemon set "agent" successfully rolled out\n', done: true })
  t.throws(() => daemonSetRolloutState(ds(1, {}, 'OnDelete')), /only available for RollingUpdate strategy type/)
})
