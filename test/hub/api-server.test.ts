// The API server in-process against a real LMDB store: the Kubernetes verbs and their errors.

import t from 'tap'
import { apiRequest, type ApiTarget } from '../helpers/api-client.js'
import { startApiServerFixture } from '../helpers/api-server-fixture.js'


const { store, server, admin, viewer, anonymous } = await startApiServerFixture(t, ['default', 'kube-system'])

const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments'

function deployment(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, labels: { app: name } },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'web', image: 'nginx:1.25', env: [{ name: 'MODE', value: 'prod' }], ports: [{ containerPort: 80 }] }] },
      },
      ...extra,
    },
  }
}

t.test('answers /version without a token and refuses everything else without one', async (t) => {
  t.equal((await apiRequest(anonymous, 'GET', '/version')).status, 200)
  const res = await apiRequest(anonymous, 'GET', '/api/v1/namespaces')
  t.equal(res.status, 401)
  t.equal(res.json.kind, 'Status')
  t.equal(res.json.reason, 'Unauthorized')
  t.equal((await apiRequest({ ...anonymous, token: 'wrong' }, 'GET', '/api/v1/namespaces')).status, 401)
})

t.test('lets a read-only user read but not write', async (t) => {
  t.equal((await apiRequest(viewer, 'GET', '/api/v1/namespaces')).status, 200)
  const res = await apiRequest(viewer, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'nope' } })
  t.equal(res.status, 403)
  t.equal(res.json.reason, 'Forbidden')
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps/nope')).status, 404)
})

t.test('serves discovery for every group', async (t) => {
  const api = await apiRequest(admin, 'GET', '/api')
  t.same(api.json.versions, ['v1'])
  const core = await apiRequest(admin, 'GET', '/api/v1')
  const pods = core.json.resources.find((r: any) => r.name === 'pods')
  t.equal(pods.kind, 'Pod')
  t.ok(pods.shortNames.includes('po'))
  const groups = await apiRequest(admin, 'GET', '/apis')
  t.same(groups.json.groups.map((g: any) => g.name).sort(), ['apps', 'batch', 'storage.k8s.io'])
  const apps = await apiRequest(admin, 'GET', '/apis/apps/v1')
  t.ok(apps.json.resources.some((r: any) => r.name === 'deployments/scale' && r.kind === 'Scale'))
  t.ok(apps.json.resources.some((r: any) => r.name === 'statefulsets/scale' && r.kind === 'Scale'))
  const storage = await apiRequest(admin, 'GET', '/apis/storage.k8s.io/v1')
  t.match(storage.json.resources.find((r: any) => r.name === 'storageclasses'), { kind: 'StorageClass', namespaced: false, shortNames: ['sc'] })
  t.ok(core.json.resources.some((r: any) => r.name === 'persistentvolumeclaims' && r.namespaced))
  t.equal((await apiRequest(admin, 'GET', '/apis/nope/v1')).status, 404)
})

t.test('creates an object with revision, uid, timestamp, generation and defaults', async (t) => {
  const res = await apiRequest(admin, 'POST', DEPLOYMENTS, deployment('web'))
  t.equal(res.status, 201)
  const o = res.json
  t.match(o.metadata.resourceVersion, /^\d+$/)
  t.ok(o.metadata.uid)
  t.match(o.metadata.creationTimestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/)
  t.equal(o.metadata.generation, 1)
  t.equal(o.metadata.namespace, 'default')
  t.equal(o.spec.strategy.type, 'RollingUpdate')
  t.equal(o.spec.revisionHistoryLimit, 10)
  const got = await apiRequest(admin, 'GET', `${DEPLOYMENTS}/web`)
  t.same(got.json, o)
  const again = await apiRequest(admin, 'POST', DEPLOYMENTS, deployment('web'))
  t.equal(again.status, 409)
  t.equal(again.json.reason, 'AlreadyExists')
})

t.test('refuses an invalid object with one cause per bad field and stores nothing', async (t) => {
  const before = await apiRequest(admin, 'GET', DEPLOYMENTS)
  const bad = deployment('Bad_Name')
  ;(bad.spec as any).replicas = -1
  ;(bad.spec.template.spec.containers[0] as any).resources = { requests: { cpu: 'lots' } }
  const res = await apiRequest(admin, 'POST', DEPLOYMENTS, bad)
  t.equal(res.status, 422)
  t.equal(res.json.reason, 'Invalid')
  const fields = res.json.details.causes.map((c: any) => c.field)
  t.ok(fields.includes('metadata.name'), 'names metadata.name')
  t.ok(fields.includes('spec.replicas'), 'names spec.replicas')
  t.ok(fields.includes('spec.template.spec.containers[0].resources.requests.cpu'), 'names the cpu request')
  const after = await apiRequest(admin, 'GET', DEPLOYMENTS)
  t.equal(after.json.items.length, before.json.items.length)
  t.equal(after.json.metadata.resourceVersion, before.json.metadata.resourceVersion, 'the revision did not move')
})

t.test('refuses unknown fields under Strict and warns about them otherwise', async (t) => {
  const body = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'strict' }, data: { a: 'b' }, dataa: { c: 'd' } }
  const strict = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps?fieldValidation=Strict', body)
  t.equal(strict.status, 400)
  t.match(strict.json.message, /unknown field "dataa"/)
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps/strict')).status, 404)
  const warn = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps', body)
  t.equal(warn.status, 201)
  t.match(String(warn.headers.warning), /unknown field \\?"dataa\\?"/)
})

t.test('names fields Bramble keeps but does not act on in a Warning header', async (t) => {
  const d = deployment('secure')
  ;(d.spec.template.spec.containers[0] as any).securityContext = { runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } }
  const res = await apiRequest(admin, 'POST', DEPLOYMENTS, d)
  t.equal(res.status, 201)
  t.match(String(res.headers.warning), /securityContext\.seccompProfile/)
  t.notMatch(String(res.headers.warning), /runAsUser/, 'runAsUser is acted on')
  t.same(res.json.spec.template.spec.containers[0].securityContext, { runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } }, 'the field is kept')
})

t.test('refuses a stale resourceVersion with a conflict and changes nothing', async (t) => {
  const current = (await apiRequest(admin, 'GET', `${DEPLOYMENTS}/web`)).json
  const first = structuredClone(current)
  first.spec.replicas = 3
  const ok = await apiRequest(admin, 'PUT', `${DEPLOYMENTS}/web`, first)
  t.equal(ok.status, 200)
  t.equal(ok.json.metadata.generation, 2, 'a spec change bumps generation')
  const stale = structuredClone(current)
  stale.spec.replicas = 7
  const res = await apiRequest(admin, 'PUT', `${DEPLOYMENTS}/web`, stale)
  t.equal(res.status, 409)
  t.equal(res.json.reason, 'Conflict')
  t.equal((await apiRequest(admin, 'GET', `${DEPLOYMENTS}/web`)).json.spec.replicas, 3)
})

t.test('keeps status on main-resource writes and changes only status through /status', async (t) => {
  const current = (await apiRequest(admin, 'GET', `${DEPLOYMENTS}/web`)).json
  const withStatus = { ...current, status: { replicas: 3, readyReplicas: 3 } }
  const main = await apiRequest(admin, 'PUT', `${DEPLOYMENTS}/web`, withStatus)
  t.same(main.json.status, current.status, 'status ignored on the main resource')
  const res = await apiRequest(admin, 'PUT', `${DEPLOYMENTS}/web/status`, { ...main.json, status: { replicas: 3, readyReplicas: 2 }, spec: { ...main.json.spec, replicas: 9 } })
  t.equal(res.status, 200)
  t.equal(res.json.status.readyReplicas, 2)
  t.equal(res.json.spec.replicas, 3, 'spec ignored on /status')
  t.equal(res.json.metadata.generation, main.json.metadata.generation, 'generation unchanged')
})

t.test('applies merge, JSON and strategic merge patches', async (t) => {
  const merge = await apiRequest(admin, 'PATCH', `${DEPLOYMENTS}/web`, { metadata: { labels: { tier: 'front' } } }, { 'Content-Type': 'application/merge-patch+json' })
  t.equal(merge.status, 200)
  t.equal(merge.json.metadata.labels.tier, 'front')
  const json = await apiRequest(admin, 'PATCH', `${DEPLOYMENTS}/web`, [{ op: 'replace', path: '/spec/replicas', value: 4 }], { 'Content-Type': 'application/json-patch+json' })
  t.equal(json.json.spec.replicas, 4)
  const smp = await apiRequest(
    admin,
    'PATCH',
    `${DEPLOYMENTS}/web`,
    { spec: { template: { spec: { containers: [{ name: 'web', image: 'nginx:1.27' }] } } } },
    { 'Content-Type': 'application/strategic-merge-patch+json' },
  )
  t.equal(smp.status, 200)
  const c = smp.json.spec.template.spec.containers
  t.equal(c.length, 1)
  t.equal(c[0].image, 'nginx:1.27')
  t.same(c[0].env, [{ name: 'MODE', value: 'prod' }], 'env kept by the strategic merge')
  const bad = await apiRequest(admin, 'PATCH', `${DEPLOYMENTS}/web`, 'not json', { 'Content-Type': 'application/merge-patch+json' })
  t.ok(bad.status === 400 || bad.status === 422, `bad patch refused (${bad.status})`)
  const unsupported = await apiRequest(admin, 'PATCH', `${DEPLOYMENTS}/web`, {}, { 'Content-Type': 'text/plain' })
  t.equal(unsupported.status, 415)
})

t.test('serves and updates the scale subresource', async (t) => {
  const scale = await apiRequest(admin, 'GET', `${DEPLOYMENTS}/web/scale`)
  t.equal(scale.json.kind, 'Scale')
  t.equal(scale.json.apiVersion, 'autoscaling/v1')
  t.equal(scale.json.status.selector, 'app=web')
  const res = await apiRequest(admin, 'PATCH', `${DEPLOYMENTS}/web/scale`, { spec: { replicas: 5 } }, { 'Content-Type': 'application/merge-patch+json' })
  t.equal(res.status, 200)
  t.equal(res.json.spec.replicas, 5)
  t.equal((await apiRequest(admin, 'GET', `${DEPLOYMENTS}/web`)).json.spec.replicas, 5)
  const neg = await apiRequest(admin, 'PATCH', `${DEPLOYMENTS}/web/scale`, { spec: { replicas: -2 } }, { 'Content-Type': 'application/merge-patch+json' })
  t.equal(neg.status, 422)
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps/strict/scale')).status, 404)
})

t.test('lists with label and field selectors, and as a Table', async (t) => {
  const byLabel = await apiRequest(admin, 'GET', `${DEPLOYMENTS}?labelSelector=${encodeURIComponent('app=secure')}`)
  t.same(byLabel.json.items.map((i: any) => i.metadata.name), ['secure'])
  const byField = await apiRequest(admin, 'GET', `/apis/apps/v1/deployments?fieldSelector=${encodeURIComponent('metadata.name=web')}`)
  t.same(byField.json.items.map((i: any) => i.metadata.name), ['web'])
  t.equal((await apiRequest(admin, 'GET', `${DEPLOYMENTS}?labelSelector=${encodeURIComponent('a in (b')}`)).status, 400)
  const table = await apiRequest(admin, 'GET', DEPLOYMENTS, undefined, { Accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json' })
  t.equal(table.json.kind, 'Table')
  t.same(table.json.columnDefinitions.filter((c: any) => c.priority === 0).map((c: any) => c.name), ['Name', 'Ready', 'Up-to-date', 'Available', 'Age'])
  t.equal(table.json.rows.length, 2)
})

t.test('accepts YAML bodies and dry runs without storing', async (t) => {
  const yaml = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  k: v\n'
  const res = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps', yaml, { 'Content-Type': 'application/yaml' })
  t.equal(res.status, 201)
  t.equal(res.json.data.k, 'v')
  const dry = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps?dryRun=All', { metadata: { name: 'dry' } })
  t.equal(dry.status, 201)
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps/dry')).status, 404)
})

t.test('refuses writes into a namespace that does not exist', async (t) => {
  const res = await apiRequest(admin, 'POST', '/api/v1/namespaces/ghost/configmaps', { metadata: { name: 'x' } })
  t.equal(res.status, 404)
  t.match(res.json.message, /namespaces "ghost" not found/)
})

t.test('refuses an oversized body', async (t) => {
  const res = await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'big' }, data: { k: 'x'.repeat(4 * 1024 * 1024) } })
  t.equal(res.status, 413)
})

t.test('streams watch events from a revision, and from a list', async (t) => {
  const start = (await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps')).json.metadata.resourceVersion
  await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'w1' } })
  await apiRequest(admin, 'DELETE', '/api/v1/namespaces/default/configmaps/w1')
  const res = await apiRequest(admin, 'GET', `/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${start}&timeoutSeconds=1`)
  const events = res.text.trim().split('\n').map((l) => JSON.parse(l))
  t.same(events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED w1', 'DELETED w1'])
  const fromList = await apiRequest(admin, 'GET', `/api/v1/namespaces/default/configmaps?watch=1&timeoutSeconds=1&fieldSelector=${encodeURIComponent('metadata.name=strict')}`)
  t.same(fromList.text.trim().split('\n').map((l) => JSON.parse(l).type), ['ADDED'])
})

t.test('answers a watch from a compacted revision with 410 Gone', async (t) => {
  await apiRequest(admin, 'POST', '/api/v1/namespaces/default/configmaps', { metadata: { name: 'compact-me' } })
  await store.compact(await store.revision())
  const res = await apiRequest(admin, 'GET', '/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1&timeoutSeconds=1')
  const event = JSON.parse(res.text.trim().split('\n')[0])
  t.equal(event.type, 'ERROR')
  t.equal(event.object.code, 410)
})

t.test('deleting a namespace deletes what is in it; built-in namespaces cannot be deleted', async (t) => {
  t.equal((await apiRequest(admin, 'POST', '/api/v1/namespaces', { metadata: { name: 'shop' } })).status, 201)
  t.equal((await apiRequest(admin, 'POST', '/api/v1/namespaces/shop/configmaps', { metadata: { name: 'cfg' } })).status, 201)
  t.equal((await apiRequest(admin, 'POST', '/apis/apps/v1/namespaces/shop/deployments', deployment('till'))).status, 201)
  const res = await apiRequest(admin, 'DELETE', '/api/v1/namespaces/shop')
  t.equal(res.status, 200)
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces/shop/configmaps/cfg')).status, 404)
  t.equal((await apiRequest(admin, 'GET', '/apis/apps/v1/namespaces/shop/deployments/till')).status, 404)
  t.equal((await apiRequest(admin, 'GET', '/api/v1/namespaces/shop')).status, 404)
  const protectedNs = await apiRequest(admin, 'DELETE', '/api/v1/namespaces/default')
  t.equal(protectedNs.status, 403)
})

t.test('deletes an object and answers 404 afterwards', async (t) => {
  const res = await apiRequest(admin, 'DELETE', `${DEPLOYMENTS}/secure`)
  t.equal(res.status, 200)
  t.equal(res.json.metadata.name, 'secure')
  const again = await apiRequest(admin, 'DELETE', `${DEPLOYMENTS}/secure`)
  t.equal(again.status, 404)
  t.equal(again.json.message, 'deployments.apps "secure" not found')
})
