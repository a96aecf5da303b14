// Progress bars: drawn in place on a terminal's stderr, out of the way of the command's own lines,
// and not at all off a terminal.

import t from 'tap'
import { ProgressBar, renderBar } from '../../src/cli/progress-bar.js'
import { daemonSetRolloutState, deploymentRolloutState } from '../../src/cli/rollout-status.js'

function capture(errIsTTY: boolean) {
  const seen: Array<['out' | 'err', string]> = []
  return { seen, io: { out: (s: string) => void seen.push(['out', s]), err: (s: string) => void seen.push(['err', s]), errIsTTY } }
}

t.test('renders a bar, a count and a label', async (t) => {
  t.equal(renderBar(0, 4, 'pods evicted', 8), '[--------] 0/4 pods evicted')
  t.equal(renderBar(3, 4, 'pods evicted', 8), '[######--] 3/4 pods evicted')
  t.equal(renderBar(10, 12, 'x', 12), '[##########--] 10/12 x')
  t.equal(renderBar(7, 4, 'x', 4), '[####] 4/4 x', 'never past the total')
  t.equal(renderBar(0, 0, 'x', 4), '[####] 0/0 x', 'nothing to do is done')
})

t.test('on a terminal: redrawn in place, cleared around printed lines and at the end', async (t) => {
  const { seen, io } = capture(true)
  const bar = new ProgressBar(io)
  bar.update(1, 4, 'pods evicted')
  bar.update(1, 4, 'pods evicted')
  bar.out('pod/a evicted\n')
  bar.update(2, 4, 'pods evicted')
  bar.clear()
  const line = (n: number) => renderBar(n, 4, 'pods evicted')
  t.same(seen, [
    ['err', `\r\x1b[2K${line(1)}`],
    ['err', '\r\x1b[2K'],
    ['out', 'pod/a evicted\n'],
    ['err', line(1)],
    ['err', `\r\x1b[2K${line(2)}`],
    ['err', '\r\x1b[2K'],
  ], 'an unchanged bar is not drawn again')
})

t.test('off a terminal: only the command\'s own lines', async (t) => {
  const { seen, io } = capture(false)
  const bar = new ProgressBar(io)
  bar.update(1, 4, 'pods evicted')
  bar.out('pod/a evicted\n')
  bar.err('evicting pod default/b\n')
  bar.clear()
  t.same(seen, [['out', 'pod/a evicted\n'], ['err', 'evicting pod default/b\n']])
})

t.test('rollout states carry how far their step is', async (t) => {
  const d = (status: object) => ({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', generation: 2 }, spec: { replicas: 4 }, status: { observedGeneration: 2, ...status } })
  t.same(deploymentRolloutState(d({ replicas: 5, updatedReplicas: 1 })).progress, { done: 1, total: 4, label: 'new replicas updated' })
  t.same(deploymentRolloutState(d({ replicas: 4, updatedReplicas: 4, availableReplicas: 2 })).progress, { done: 2, total: 4, label: 'updated replicas available' })
  t.equal(deploymentRolloutState(d({ replicas: 4, updatedReplicas: 4, availableReplicas: 4 })).progress, undefined, 'done: no bar')
  const ds = { apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', generation: 1 }, spec: {}, status: { observedGeneration: 1, desiredNumberScheduled: 3, updatedNumberScheduled: 1 } }
  t.same(daemonSetRolloutState(ds).progress, { done: 1, total: 3, label: 'new pods updated' })
})
