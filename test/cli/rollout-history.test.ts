// A Deployment's revisions read from its ReplicaSets: the history table, one revision's template,
// which revision `rollout undo` picks, and the patch it sends.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { historyTable, revisionTemplate, revisionsOf, rollbackOf, rollbackRevision } from '../../src/cli/rollout-history.js'

const DEPLOYMENT: KubeObject = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: {
    name: 'web',
    namespace: 'default',
    uid: 'd-uid',
    annotations: { 'deployment.kubernetes.io/revision': '3', 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'kubernetes.io/change-cause': 'image 3' },
  },
  spec: { template: template('nginx:3') },
}

function template(image: string, hash?: string) {
  return { metadata: { labels: { app: 'web', ...(hash ? { 'pod-template-hash': hash } : {}) } }, spec: { containers: [{ name: 'web', image }] } }
}

function replicaSet(revision: string | undefined, image: string, owner = 'd-uid', cause?: string): KubeObject {
  const annotations: Record<string, string> = {}
  if (revision) annotations['deployment.kubernetes.io/revision'] = revision
  if (cause) annotations['kubernetes.io/change-cause'] = cause
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: { name: `web-${image.replace(/\W/g, '')}`, namespace: 'default', annotations, ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: owner, controller: true }] },
    spec: { template: template(image, `h${revision}`) },
  }
}

const SETS = [replicaSet('3', 'nginx:3', 'd-uid', 'image 3'), replicaSet('1', 'nginx:1', 'd-uid', 'image 1'), replicaSet('2', 'nginx:2'), replicaSet('7', 'other:1', 'someone-else'), replicaSet(undefined, 'nginx:0')]

t.test('lists only the revisions of ReplicaSets the Deployment controls, oldest first', async (t) => {
  t.same(revisionsOf(DEPLOYMENT, SETS).map((r) => r.revision), [1, 2, 3])
})

t.test('prints REVISION and CHANGE-CAUSE as kubectl aligns them, <none> for no cause', async (t) => {
  t.equal(historyTable(revisionsOf(DEPLOYMENT, SETS)), 'REVISION  CHANGE-CAUSE\n1         image 1\n2         <none>\n3         image 3\n')
  t.equal(historyTable([]), 'REVISION  CHANGE-CAUSE\n', 'no revisions: the header alone')
})

t.test("shows one revision's pod template, and refuses an unknown revision", async (t) => {
  const text = revisionTemplate(revisionsOf(DEPLOYMENT, SETS), 1)
  t.match(text, /^Pod Template:\n/)
  t.match(text, /Image:\s+nginx:1/)
  t.match(text, /kubernetes\.io\/change-cause: image 1/)
  t.throws(() => revisionTemplate(revisionsOf(DEPLOYMENT, SETS), 9), /unable to find the specified revision 9/)
})

t.test('undo goes to the previous revision by default, or to the one named', async (t) => {
  const revisions = revisionsOf(DEPLOYMENT, SETS)
  t.equal(rollbackRevision(DEPLOYMENT, revisions, 0).revision, 2)
  t.equal(rollbackRevision(DEPLOYMENT, revisions, 1).revision, 1)
  t.throws(() => rollbackRevision(DEPLOYMENT, revisions, 5), /unable to find specified revision 5 in history of deployment "web"/)
  t.throws(() => rollbackRevision(DEPLOYMENT, revisions.slice(2), 0), /no rollout history found for deployment "web"/)
})

t.test("the undo patch sets the revision's template without its hash label and takes its annotations", async (t) => {
  const target = rollbackRevision(DEPLOYMENT, revisionsOf(DEPLOYMENT, SETS), 1)
  const rollback = rollbackOf(DEPLOYMENT, target)
  t.same(rollback, {
    kind: 'patch',
    patch: [
      { op: 'replace', path: '/spec/template', value: template('nginx:1') },
      {
        op: 'add',
        path: '/metadata/annotations',
        value: { 'deployment.kubernetes.io/revision': '3', 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'kubernetes.io/change-cause': 'image 1' },
      },
    ],
  })
})

t.test('undo to the revision already running is skipped; a paused Deployment is refused', async (t) => {
  const current = rollbackRevision(DEPLOYMENT, revisionsOf(DEPLOYMENT, SETS), 3)
  t.same(rollbackOf(DEPLOYMENT, current), { kind: 'skip', message: 'skipped rollback (current template already matches revision 3)' })
  const paused = { ...DEPLOYMENT, spec: { ...DEPLOYMENT.spec, paused: true } }
  t.throws(() => rollbackOf(paused, current), /cannot rollback a paused deployment/)
})
