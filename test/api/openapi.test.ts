import t from 'tap'
import { KINDS, apiVersionOf } from '../../src/api/kinds.js'
import { typeOfKind } from '../../src/api/k8s-schema.js'
import { OPENAPI_GROUP_VERSIONS, definitionName, openApiV3Document, openApiV3Hash, openApiV3Root } from '../../src/api/openapi.js'

type Doc = { paths: Record<string, Record<string, any>>; components: { schemas: Record<string, any> } }
const doc = (gv: string) => openApiV3Document(gv) as Doc
const gvPath = (group: string) => (group === '' ? 'api/v1' : `apis/${group}/v1`)

t.test('the root lists the four group-versions with a stable hash', async (t) => {
  const root = openApiV3Root() as { paths: Record<string, { serverRelativeURL: string }> }
  t.same(Object.keys(root.paths).sort(), ['api/v1', 'apis/apps/v1', 'apis/batch/v1', 'apis/storage.k8s.io/v1'])
  for (const gv of OPENAPI_GROUP_VERSIONS) {
    t.match(root.paths[gv].serverRelativeURL, new RegExp(`^/openapi/v3/${gv}\\?hash=[0-9A-F]{128}$`))
    t.equal(root.paths[gv].serverRelativeURL.split('hash=')[1], openApiV3Hash(gv))
  }
  t.same(openApiV3Root(), root, 'built once, the same every time')
  t.equal(openApiV3Document('apis/policy/v1'), undefined)
  t.equal(openApiV3Document('/apis/apps/v1'), openApiV3Document('apis/apps/v1'))
})

t.test('client-node model names map to Kubernetes definition names', async (t) => {
  const cases: Record<string, string> = {
    V1Pod: 'io.k8s.api.core.v1.Pod',
    V1PodSpec: 'io.k8s.api.core.v1.PodSpec',
    V1ObjectMeta: 'io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta',
    V1LabelSelector: 'io.k8s.apimachinery.pkg.apis.meta.v1.LabelSelector',
    V1Condition: 'io.k8s.apimachinery.pkg.apis.meta.v1.Condition',
    V1Deployment: 'io.k8s.api.apps.v1.Deployment',
    V1RollingUpdateDeployment: 'io.k8s.api.apps.v1.RollingUpdateDeployment',
    V1DaemonSetUpdateStrategy: 'io.k8s.api.apps.v1.DaemonSetUpdateStrategy',
    V1JobTemplateSpec: 'io.k8s.api.batch.v1.JobTemplateSpec',
    V1PodFailurePolicyRule: 'io.k8s.api.batch.v1.PodFailurePolicyRule',
    V1Scale: 'io.k8s.api.autoscaling.v1.Scale',
    CoreV1Event: 'io.k8s.api.core.v1.Event',
    CoreV1EndpointPort: 'io.k8s.api.core.v1.EndpointPort',
    V1PodTemplateSpec: 'io.k8s.api.core.v1.PodTemplateSpec',
  }
  for (const [model, name] of Object.entries(cases)) t.equal(definitionName(model), name, model)
})

t.test('every kind has its schema with its group-version-kind, and its list', async (t) => {
  for (const k of KINDS) {
    const schemas = doc(gvPath(k.group)).components.schemas
    const name = definitionName(typeOfKind(apiVersionOf(k), k.kind)!)
    t.same(schemas[name]?.['x-kubernetes-group-version-kind'], [{ group: k.group, kind: k.kind, version: 'v1' }], k.kind)
    t.same(schemas[`${name}List`]?.['x-kubernetes-group-version-kind'], [{ group: k.group, kind: `${k.kind}List`, version: 'v1' }])
  }
})

t.test('every $ref resolves inside its own document', async (t) => {
  for (const gv of OPENAPI_GROUP_VERSIONS) {
    const d = doc(gv)
    const missing = new Set<string>()
    JSON.stringify(d, (key, value) => {
      if (key === '$ref' && !d.components.schemas[value.slice('#/components/schemas/'.length)]) missing.add(value)
      return value
    })
    t.same([...missing], [], gv)
  }
})

t.test('schemas carry the strategic merge metadata kubectl reads', async (t) => {
  const core = doc('api/v1').components.schemas
  t.match(core['io.k8s.api.core.v1.PodSpec'].properties.containers, {
    type: 'array',
    items: { $ref: '#/components/schemas/io.k8s.api.core.v1.Container' },
    'x-kubernetes-patch-strategy': 'merge',
    'x-kubernetes-patch-merge-key': 'name',
    'x-kubernetes-list-type': 'map',
  })
  t.match(core['io.k8s.api.core.v1.Container'].properties.ports, { 'x-kubernetes-patch-merge-key': 'containerPort', 'x-kubernetes-list-map-keys': ['containerPort', 'protocol'] })
  t.notOk('x-kubernetes-patch-strategy' in core['io.k8s.api.core.v1.PodSpec'].properties.tolerations, 'untagged lists carry no strategy')
  const apps = doc('apis/apps/v1').components.schemas
  t.same(apps['io.k8s.api.apps.v1.DeploymentSpec'].properties.strategy['x-kubernetes-patch-strategy'], 'retainKeys')
  t.ok(apps['io.k8s.api.core.v1.PodSpec'], 'the apps document carries the core types it reaches')
})

t.test('types: IntOrString, Quantity, Time, integers, byte maps', async (t) => {
  const s = doc('api/v1').components.schemas
  t.same(s['io.k8s.apimachinery.pkg.util.intstr.IntOrString'], { type: 'string', format: 'int-or-string' })
  t.same(s['io.k8s.apimachinery.pkg.api.resource.Quantity'], { type: 'string' })
  t.same(s['io.k8s.api.core.v1.ServicePort'].properties.targetPort, { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.util.intstr.IntOrString' })
  t.same(s['io.k8s.api.core.v1.ResourceRequirements'].properties.limits, { type: 'object', additionalProperties: { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity' } })
  t.same(s['io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta'].properties.creationTimestamp, { $ref: '#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time' })
  t.same(s['io.k8s.api.core.v1.PodSpec'].properties.activeDeadlineSeconds, { type: 'integer', format: 'int64' })
  t.same(s['io.k8s.api.core.v1.Secret'].properties.data, { type: 'object', additionalProperties: { type: 'string', format: 'byte' } })
})

t.test('operations declare fieldValidation and carry their kind and action', async (t) => {
  const apps = doc('apis/apps/v1').paths
  const item = apps['/apis/apps/v1/namespaces/{namespace}/deployments/{name}']
  const collection = apps['/apis/apps/v1/namespaces/{namespace}/deployments']
  const gvk = { group: 'apps', version: 'v1', kind: 'Deployment' }
  for (const [name, operation, action] of [['create', collection.post, 'post'], ['update', item.put, 'put'], ['patch', item.patch, 'patch']] as const) {
    t.ok(operation.parameters.some((p: { name: string }) => p.name === 'fieldValidation'), `${name} declares fieldValidation`)
    t.same(operation['x-kubernetes-group-version-kind'], gvk)
    t.equal(operation['x-kubernetes-action'], action)
  }
  t.equal(item.get['x-kubernetes-action'], 'get')
  t.equal(item.delete['x-kubernetes-action'], 'delete')
  t.equal(collection.get['x-kubernetes-action'], 'list')
  t.ok(item.patch.requestBody.content['application/strategic-merge-patch+json'])
  t.ok(apps['/apis/apps/v1/deployments'].get, 'the all-namespaces list')
  t.notOk(apps['/apis/apps/v1/deployments'].post)
  t.same(apps['/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale'].patch['x-kubernetes-group-version-kind'], { group: 'autoscaling', version: 'v1', kind: 'Scale' })
  t.ok(apps['/apis/apps/v1/namespaces/{namespace}/deployments/{name}/status'].put)
})

t.test('paths follow the kinds: cluster-scoped, subresources, pod log', async (t) => {
  const core = doc('api/v1').paths
  t.ok(core['/api/v1/namespaces/{name}'].get, 'namespaces are cluster-scoped')
  t.ok(core['/api/v1/nodes/{name}/status'].patch)
  t.notOk(core['/api/v1/nodes/{name}/scale'], 'no scale where kinds.ts lists none')
  t.ok(core['/api/v1/namespaces/{namespace}/pods/{name}/log'].get)
  t.ok(core['/api/v1/namespaces/{namespace}/configmaps'].post)
  t.ok(doc('apis/batch/v1').paths['/apis/batch/v1/namespaces/{namespace}/cronjobs/{name}'].patch)
  t.notOk(Object.keys(core).some((p) => p.startsWith('/apis/')), 'the core document holds only core paths')
})
