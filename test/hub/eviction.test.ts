// The pods/eviction subresource in-process against a real LMDB store: discovery lists it the way
// kubectl drain looks for it, an Eviction deletes its pod with a 201 Status, and bad bodies are
// refused naming the field.

import protobuf from 'protobufjs'
import t from 'tap'
import { K8S_PROTO } from '../../src/api/k8s-proto/k8s-proto-text.js'
import { apiRequest, type ApiTarget } from '../helpers/api-client.js'
import { startApiServerFixture } from '../helpers/api-server-fixture.js'

const PODS = '/api/v1/namespaces/default/pods'

const { store, server, admin, viewer } = await startApiServerFixture(t)

async function createPod(name: string): Promise<any> {
  const res = await apiRequest(admin, 'POST', PODS, { apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { nodeName: 'pi-1', containers: [{ name: 'c', image: 'busybox' }] } })
  if (res.status !== 201) throw new Error(`creating pod ${name}: ${res.text}`)
  return res.json
}

const eviction = (name: string, extra: Record<string, unknown> = {}) => ({ apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name, namespace: 'default' }, ...extra })

t.test('discovery lists pods/eviction in the policy/v1 group version, as kubectl drain requires', async (t) => {
  const res = await apiRequest(admin, 'GET', '/api/v1')
  const entry = res.json.resources.find((r: any) => r.name === 'pods/eviction')
  t.ok(entry, 'pods/eviction is listed')
  t.match(entry, { kind: 'Eviction', group: 'policy', version: 'v1', namespaced: true, verbs: ['create'] })
})

t.test('an Eviction deletes the pod and answers a 201 Success Status', async (t) => {
  await createPod('web-1')
  const res = await apiRequest(admin, 'POST', `${PODS}/web-1/eviction`, eviction('web-1', { deleteOptions: { gracePeriodSeconds: 0 } }))
  t.equal(res.status, 201, res.text)
  t.same(res.json, { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 })
  t.equal((await apiRequest(admin, 'GET', `${PODS}/web-1`)).status, 404, 'the pod is gone')
})

t.test('policy/v1beta1 Evictions are accepted too', async (t) => {
  await createPod('web-2')
  const res = await apiRequest(admin, 'POST', `${PODS}/web-2/eviction`, { ...eviction('web-2'), apiVersion: 'policy/v1beta1' })
  t.equal(res.status, 201, res.text)
  t.equal((await apiRequest(admin, 'GET', `${PODS}/web-2`)).status, 404)
})

t.test('a protobuf Eviction (what kubectl sends) is decoded and honoured', async (t) => {
  await createPod('web-3')
  const root = protobuf.parse(K8S_PROTO, { keepCase: true }).root
  const type = root.lookupType('Eviction')
  const raw = type.encode(type.fromObject({ metadata: { name: 'web-3', namespace: 'default' }, deleteOptions: { gracePeriodSeconds: 0 } })).finish()
  const unknown = root.lookupType('Unknown')
  const body = Buffer.concat([Buffer.from('k8s\0', 'latin1'), Buffer.from(unknown.encode(unknown.fromObject({ typeMeta: { apiVersion: 'policy/v1', kind: 'Eviction' }, raw })).finish())])
  const res = await apiRequest(admin, 'POST', `${PODS}/web-3/eviction`, body, { 'Content-Type': 'application/vnd.kubernetes.protobuf' })
  t.equal(res.status, 201, res.text)
  t.equal((await apiRequest(admin, 'GET', `${PODS}/web-3`)).status, 404)
})

t.test('an unknown pod is a 404 NotFound naming it', async (t) => {
  const res = await apiRequest(admin, 'POST', `${PODS}/ghost/eviction`, eviction('ghost'))
  t.equal(res.status, 404)
  t.equal(res.json.reason, 'NotFound')
  t.match(res.json.message, 'pods "ghost" not found')
})

t.test('bad bodies are refused naming the field, and the pod stays', async (t) => {
  await createPod('keep')
  const cases: [string, unknown, number, string][] = [
    ['another name', eviction('other'), 400, 'metadata.name'],
    ['another namespace', { ...eviction('keep'), metadata: { name: 'keep', namespace: 'prod' } }, 400, 'metadata.namespace'],
    ['another kind', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'keep' } }, 400, 'Eviction'],
    ['a negative grace period', eviction('keep', { deleteOptions: { gracePeriodSeconds: -5 } }), 422, 'deleteOptions.gracePeriodSeconds'],
    ['an unknown dryRun value', eviction('keep', { deleteOptions: { dryRun: ['Some'] } }), 422, 'deleteOptions.dryRun'],
  ]
  for (const [what, body, status, field] of cases) {
    const res = await apiRequest(admin, 'POST', `${PODS}/keep/eviction`, body)
    t.equal(res.status, status, `${what}: ${res.text}`)
    t.match(res.json.message, field, what)
  }
  t.equal((await apiRequest(admin, 'GET', `${PODS}/keep`)).status, 200, 'the pod is still there')
})

t.test('a failed uid precondition is a 409 and a dry run deletes nothing', async (t) => {
  const pod = await createPod('guarded')
  const stale = await apiRequest(admin, 'POST', `${PODS}/guarded/eviction`, eviction('guarded', { deleteOptions: { preconditions: { uid: 'not-the-uid' } } }))
  t.equal(stale.status, 409, stale.text)
  const dry = await apiRequest(admin, 'POST', `${PODS}/guarded/eviction?dryRun=All`, eviction('guarded', { deleteOptions: { preconditions: { uid: pod.metadata.uid } } }))
  t.equal(dry.status, 201, dry.text)
  t.equal((await apiRequest(admin, 'GET', `${PODS}/guarded`)).status, 200, 'still there after the dry run')
})

t.test('eviction is POST only, and a read-only user may not evict', async (t) => {
  t.equal((await apiRequest(admin, 'GET', `${PODS}/guarded/eviction`)).status, 405)
  const res = await apiRequest(viewer, 'POST', `${PODS}/guarded/eviction`, eviction('guarded'))
  t.equal(res.status, 403)
  t.equal((await apiRequest(admin, 'GET', `${PODS}/guarded`)).status, 200)
})

/** The object of the DELETED event the store records for pod `name` after `fromRevision`. */
async function deletedObject(name: string, fromRevision: number, act: () => Promise<void>): Promise<any> {
  const events: any[] = []
  const watch = store.watch({ resource: 'pods', namespace: 'default' }, fromRevision, (e) => events.push(e))
  try {
    await act()
    const deadline = Date.now() + 10_000
    for (;;) {
      const found = events.find((e) => e.type === 'DELETED' && e.object.metadata.name === name)
      if (found) return found.object
      if (Date.now() > deadline) throw new Error(`no DELETED event for ${name}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  } finally {
    watch.stop()
  }
}

t.test("an eviction's grace period is on the pod as it goes, for its node's delete message", async (t) => {
  const pod = await createPod('graced')
  const gone = await deletedObject('graced', Number(pod.metadata.resourceVersion), async () => {
    const res = await apiRequest(admin, 'POST', `${PODS}/graced/eviction`, eviction('graced', { deleteOptions: { gracePeriodSeconds: 4 } }))
    t.equal(res.status, 201, res.text)
  })
  t.equal(gone.metadata.deletionGracePeriodSeconds, 4)
  const plain = await createPod('plain')
  const plainGone = await deletedObject('plain', Number(plain.metadata.resourceVersion), async () => {
    t.equal((await apiRequest(admin, 'POST', `${PODS}/plain/eviction`, eviction('plain'))).status, 201)
  })
  t.equal(plainGone.metadata.deletionGracePeriodSeconds, undefined, 'none named: the pod keeps its own')
})

t.test('DELETE honours gracePeriodSeconds too (kubectl delete --grace-period), and refuses a bad one naming it', async (t) => {
  const pod = await createPod('deleted')
  const bad = await apiRequest(admin, 'DELETE', `${PODS}/deleted?gracePeriodSeconds=soon`)
  t.equal(bad.status, 400)
  t.match(bad.json.message, 'gracePeriodSeconds')
  const gone = await deletedObject('deleted', Number(pod.metadata.resourceVersion), async () => {
    const res = await apiRequest(admin, 'DELETE', `${PODS}/deleted`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 2 })
    t.equal(res.status, 200, res.text)
  })
  t.equal(gone.metadata.deletionGracePeriodSeconds, 2)
})
