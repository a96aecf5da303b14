// The pods/binding subresource in-process against a real LMDB store: discovery lists it, a Binding
// sets spec.nodeName and PodScheduled=True in one write and answers a 201 Status, a pod already
// assigned or being deleted is a 409, preconditions hold, and bad bodies are refused naming the field.

import t from 'tap'
import { apiRequest, type ApiTarget } from '../helpers/api-client.js'
import { startApiServerFixture } from '../helpers/api-server-fixture.js'

const PODS = '/api/v1/namespaces/default/pods'

const { store, server, admin, viewer } = await startApiServerFixture(t)

async function createPod(name: string, spec: Record<string, unknown> = {}): Promise<any> {
  const res = await apiRequest(admin, 'POST', PODS, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox' }], ...spec } })
  if (res.status !== 201) throw new Error(`creating pod ${name}: ${res.text}`)
  return res.json
}

const binding = (name: string, node: string, extra: Record<string, any> = {}) => ({
  apiVersion: 'v1',
  kind: 'Binding',
  ...extra,
  metadata: { name, namespace: 'default', ...extra.metadata },
  target: { apiVersion: 'v1', kind: 'Node', name: node, ...extra.target },
})

t.test('discovery lists pods/binding with the create verb', async (t) => {
  const res = await apiRequest(admin, 'GET', '/api/v1')
  t.match(
    res.json.resources.find((r: any) => r.name === 'pods/binding'),
    { kind: 'Binding', namespaced: true, verbs: ['create'] },
  )
})

t.test('a Binding assigns the pod to the node with PodScheduled=True in one write and answers 201', async (t) => {
  const created = await createPod('web-1')
  const res = await apiRequest(admin, 'POST', `${PODS}/web-1/binding`, binding('web-1', 'pi-1', { metadata: { annotations: { 'example.com/placed-by': 'test' } } }))
  t.equal(res.status, 201, res.text)
  t.same(res.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 })
  const pod = (await apiRequest(admin, 'GET', `${PODS}/web-1`)).json
  t.equal(pod.spec.nodeName, 'pi-1')
  t.match(pod.status.conditions, [{ type: 'PodScheduled', status: 'True' }])
  t.equal(pod.metadata.annotations['example.com/placed-by'], 'test', "the Binding's annotations are copied onto the pod")
  t.equal(Number(pod.metadata.resourceVersion), Number(created.metadata.resourceVersion) + 1, 'exactly one write')
  t.same(pod.spec.containers, created.spec.containers, 'nothing else changed')
})

t.test('a pod already on a node, or being deleted, is a 409 Conflict', async (t) => {
  await createPod('web-2', { nodeName: 'pi-2' })
  const res = await apiRequest(admin, 'POST', `${PODS}/web-2/binding`, binding('web-2', 'pi-1'))
  t.equal(res.status, 409)
  t.match(res.json, { reason: 'Conflict', message: 'pod default/web-2 is already assigned to node "pi-2"' })
  t.equal((await apiRequest(admin, 'GET', `${PODS}/web-2`)).json.spec.nodeName, 'pi-2', 'the first binding stands')

  await createPod('web-3', { containers: [{ name: 'c', image: 'busybox' }] })
  const marked = (await apiRequest(admin, 'GET', `${PODS}/web-3`)).json
  marked.metadata.deletionTimestamp = '2026-01-01T00:00:00Z'
  marked.metadata.finalizers = ['example.com/hold']
  await store.update({ resource: 'pods', namespace: 'default', name: 'web-3' }, marked)
  const deleting = await apiRequest(admin, 'POST', `${PODS}/web-3/binding`, binding('web-3', 'pi-1'))
  t.equal(deleting.status, 409)
  t.match(deleting.json.message, /is being deleted, cannot be assigned to a host/)
})

t.test("a Binding's uid must be the pod's: another pod of the same name is not bound", async (t) => {
  await createPod('web-4')
  const res = await apiRequest(admin, 'POST', `${PODS}/web-4/binding`, binding('web-4', 'pi-1', { metadata: { uid: 'not-this-pod' } }))
  t.equal(res.status, 409)
  t.match(res.json.message, /Precondition failed: UID in precondition: not-this-pod/)
  t.notOk((await apiRequest(admin, 'GET', `${PODS}/web-4`)).json.spec.nodeName, 'still unassigned')
})

t.test('dryRun checks the binding and writes nothing', async (t) => {
  await createPod('web-5')
  const res = await apiRequest(admin, 'POST', `${PODS}/web-5/binding?dryRun=All`, binding('web-5', 'pi-1'))
  t.equal(res.status, 201, res.text)
  t.notOk((await apiRequest(admin, 'GET', `${PODS}/web-5`)).json.spec.nodeName)
})

t.test('bad Bindings are refused naming the field; nothing is written', async (t) => {
  await createPod('web-6')
  const cases: Array<[string, unknown, number, RegExp | Record<string, unknown>]> = [
    ['no target', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'web-6' } }, 422, { details: { causes: [{ field: 'target' }] } }],
    ['no target name', binding('web-6', ''), 422, { details: { causes: [{ field: 'target.name', reason: 'FieldValueRequired' }] } }],
    ['a target name that is no node name', binding('web-6', 'Not_A_Node'), 422, { details: { causes: [{ field: 'target.name', reason: 'FieldValueInvalid' }] } }],
    ['a target that is not a Node', binding('web-6', 'pi-1', { target: { kind: 'Pod' } }), 422, { details: { causes: [{ field: 'target.kind' }] } }],
    ['annotations that are not strings', binding('web-6', 'pi-1', { metadata: { annotations: { a: 1 } } }), 422, { details: { causes: [{ field: 'metadata.annotations[a]' }] } }],
    ['another pod named', binding('web-7', 'pi-1'), 400, { message: /metadata.name/ }],
    ['another namespace', binding('web-6', 'pi-1', { metadata: { namespace: 'other' } }), 400, { message: /metadata.namespace/ }],
    ['not a Binding', { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: 'web-6' } }, 400, { message: /must be a Binding/ }],
  ]
  for (const [what, body, status, expected] of cases) {
    const res = await apiRequest(admin, 'POST', `${PODS}/web-6/binding`, body)
    t.equal(res.status, status, `${what}: ${res.text}`)
    t.match(res.json, expected, what)
  }
  t.notOk((await apiRequest(admin, 'GET', `${PODS}/web-6`)).json.spec.nodeName, 'still unassigned')
})

t.test('a missing pod is a 404; read-only users may not bind; only POST binds', async (t) => {
  t.equal((await apiRequest(admin, 'POST', `${PODS}/nobody/binding`, binding('nobody', 'pi-1'))).status, 404)
  await createPod('web-8')
  t.equal((await apiRequest(viewer, 'POST', `${PODS}/web-8/binding`, binding('web-8', 'pi-1'))).status, 403)
  t.equal((await apiRequest(admin, 'GET', `${PODS}/web-8/binding`)).status, 405)
  t.notOk((await apiRequest(admin, 'GET', `${PODS}/web-8`)).json.spec.nodeName)
})

t.test('Registry.bind with a stale copy of the pod binds the stored version (what changed since stays)', async (t) => {
  await createPod('web-9')
  const stale = (await apiRequest(admin, 'GET', `${PODS}/web-9`)).json
  const relabelled = await apiRequest(admin, 'PATCH', `${PODS}/web-9`, { metadata: { labels: { tier: 'front' } } }, { 'Content-Type': 'application/merge-patch+json' })
  t.equal(relabelled.status, 200, relabelled.text)
  const bound = await server.registry.bind('default', 'web-9', { node: 'pi-3' }, false, stale)
  t.equal(bound.spec.nodeName, 'pi-3')
  t.equal(bound.metadata.labels?.tier, 'front', 'the label written after the stale read is kept')
  await t.rejects(server.registry.bind('default', 'web-9', { node: 'pi-4' }, false, stale), { reason: 'Conflict' } as any, 'and a second binding from the same stale copy is refused')
})
