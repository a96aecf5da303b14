// The OpenAPI v3 documents kubectl reads before `apply`: the root at /openapi/v3 and one document
// per group-version. Operations carry `x-kubernetes-group-version-kind` and declare the
// `fieldValidation` parameter, so kubectl validates on the server (`?fieldValidation=Strict`);
// component schemas carry the patch metadata kubectl needs to compute strategic merge patches.

import { createHash } from 'node:crypto'
import { KINDS, apiVersionOf, type KindInfo } from './kinds.js'
import { typeOfKind } from './k8s-schema.js'
import { definitionName, reachableSchemas, ref, type Schema } from './openapi-schemas.js'

export { definitionName } from './openapi-schemas.js'

/** Group-version paths as kubectl names them in the root document. */
export const OPENAPI_GROUP_VERSIONS = ['api/v1', 'apis/apps/v1', 'apis/batch/v1', 'apis/storage.k8s.io/v1'] as const

const META = 'io.k8s.apimachinery.pkg.apis.meta.v1'
const SCALE = 'io.k8s.api.autoscaling.v1.Scale'

const query = (name: string, description: string, schema: Schema = { type: 'string' }): Schema => ({ name, in: 'query', description, schema, uniqueItems: true })
const P = {
  pretty: query('pretty', "If 'true', then the output is pretty printed."),
  dryRun: query('dryRun', 'When present, indicates that modifications should not be persisted. Valid values: All.'),
  fieldManager: query('fieldManager', 'fieldManager is a name associated with the actor or entity that is making these changes.'),
  fieldValidation: query('fieldValidation', 'How the server handles unknown or duplicate fields in the request body: Ignore, Warn (the default without this parameter) or Strict.'),
  force: query('force', 'Force is going to "force" Apply requests. Must be unset for non-apply patch requests.', { type: 'boolean' }),
  labelSelector: query('labelSelector', 'A selector to restrict the list of returned objects by their labels.'),
  fieldSelector: query('fieldSelector', 'A selector to restrict the list of returned objects by their fields.'),
  watch: query('watch', 'Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.', { type: 'boolean' }),
  resourceVersion: query('resourceVersion', 'resourceVersion sets a constraint on what resource versions a request may be served from.'),
  resourceVersionMatch: query('resourceVersionMatch', 'resourceVersionMatch determines how resourceVersion is applied to list calls.'),
  allowWatchBookmarks: query('allowWatchBookmarks', 'allowWatchBookmarks requests watch events with type "BOOKMARK".', { type: 'boolean' }),
  limit: query('limit', 'limit is a maximum number of responses to return for a list call.', { type: 'integer' }),
  continue: query('continue', 'The continue option should be set when retrieving more results from the server.'),
  timeoutSeconds: query('timeoutSeconds', 'Timeout for the list/watch call.', { type: 'integer' }),
  gracePeriodSeconds: query('gracePeriodSeconds', 'The duration in seconds before the object should be deleted.', { type: 'integer' }),
  propagationPolicy: query('propagationPolicy', "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
  follow: query('follow', 'Follow the log stream of the pod.', { type: 'boolean' }),
  container: query('container', 'The container for which to stream logs.'),
  tailLines: query('tailLines', 'If set, the number of lines from the end of the logs to show.', { type: 'integer' }),
  sinceSeconds: query('sinceSeconds', 'A relative time in seconds before the current time from which to show logs.', { type: 'integer' }),
  timestamps: query('timestamps', 'If true, add an RFC3339 timestamp at the beginning of every line of log output.', { type: 'boolean' }),
  previous: query('previous', 'Return previous terminated container logs.', { type: 'boolean' }),
}
const pathParam = (name: string, description: string): Schema => ({ name, in: 'path', required: true, description, schema: { type: 'string' }, uniqueItems: true })
const NAMESPACE = pathParam('namespace', 'object name and auth scope, such as for teams and projects')

const WRITE_PARAMS = [P.dryRun, P.fieldManager, P.fieldValidation]
const LIST_PARAMS = [P.allowWatchBookmarks, P.continue, P.fieldSelector, P.labelSelector, P.limit, P.resourceVersion, P.resourceVersionMatch, P.timeoutSeconds, P.watch]
const DELETE_PARAMS = [P.dryRun, P.gracePeriodSeconds, P.propagationPolicy]

const RESPONSE_TYPES = ['application/json', 'application/yaml', 'application/vnd.kubernetes.protobuf']
const PATCH_TYPES = ['application/apply-patch+yaml', 'application/json-patch+json', 'application/merge-patch+json', 'application/strategic-merge-patch+json']

function content(types: string[], schema: Schema): Schema {
  return Object.fromEntries(types.map((t) => [t, { schema }]))
}
const reply = (description: string, schema: Schema) => ({ description, content: content(RESPONSE_TYPES, schema) })

interface Target {
  kind: KindInfo
  /** The kind the operation reads and writes: the kind's own, or autoscaling/v1 Scale. */
  gvk: { group: string; version: string; kind: string }
  schema: string
  /** `Namespaced`, `` for cluster-scoped, or `ForAllNamespaces`. */
  scope: string
  /** Operation-id suffix, e.g. `Status`. */
  sub: string
}

function operationId(action: string, t: Target, list = false): string {
  // Kubernetes names a group by its first label: storage.k8s.io's operations are `...StorageV1...`.
  const first = t.kind.group.split('.')[0]
  const group = first === '' ? 'Core' : first[0].toUpperCase() + first.slice(1)
  const scope = t.scope === 'ForAllNamespaces' ? '' : t.scope
  return `${action}${group}V1${scope}${t.kind.kind}${list ? '' : t.sub}${t.scope === 'ForAllNamespaces' ? 'ForAllNamespaces' : ''}`
}

function op(verb: string, action: string, t: Target, params: Schema[], extra: Schema = {}): Schema {
  return {
    tags: [t.kind.group === '' ? 'core_v1' : `${t.kind.group.split('.')[0]}_v1`],
    description: `${action} ${t.gvk.kind}`,
    operationId: operationId(verb, t, action === 'list' || action === 'deletecollection'),
    parameters: params,
    'x-kubernetes-action': action,
    'x-kubernetes-group-version-kind': t.gvk,
    ...extra,
  }
}

function itemOperations(t: Target): Schema {
  const schema = ref(t.schema)
  const ops: Schema = {
    get: op('read', 'get', t, [], { responses: { '200': reply('OK', schema), '401': { description: 'Unauthorized' } } }),
    put: op('replace', 'put', t, WRITE_PARAMS, {
      requestBody: { required: true, content: { '*/*': { schema } } },
      responses: { '200': reply('OK', schema), '201': reply('Created', schema), '401': { description: 'Unauthorized' } },
    }),
    patch: op('patch', 'patch', t, [...WRITE_PARAMS, P.force], {
      requestBody: { required: true, content: content(PATCH_TYPES, ref(`${META}.Patch`)) },
      responses: { '200': reply('OK', schema), '201': reply('Created', schema), '401': { description: 'Unauthorized' } },
    }),
  }
  if (t.sub === '') {
    ops.delete = op('delete', 'delete', t, DELETE_PARAMS, {
      requestBody: { content: { '*/*': { schema: ref(`${META}.DeleteOptions`) } } },
      responses: { '200': reply('OK', ref(`${META}.Status`)), '202': reply('Accepted', ref(`${META}.Status`)), '401': { description: 'Unauthorized' } },
    })
  }
  return ops
}

function collectionOperations(t: Target, withWrites: boolean): Schema {
  const list = ref(`${t.schema}List`)
  const ops: Schema = {
    get: op('list', 'list', t, LIST_PARAMS, { responses: { '200': reply('OK', list), '401': { description: 'Unauthorized' } } }),
  }
  if (!withWrites) return ops
  const schema = ref(t.schema)
  ops.post = op('create', 'post', t, WRITE_PARAMS, {
    requestBody: { required: true, content: { '*/*': { schema } } },
    responses: { '200': reply('OK', schema), '201': reply('Created', schema), '202': reply('Accepted', schema), '401': { description: 'Unauthorized' } },
  })
  ops.delete = op('deletecollection', 'deletecollection', t, [...DELETE_PARAMS, ...LIST_PARAMS.filter((p) => p !== P.watch && p !== P.allowWatchBookmarks)], {
    responses: { '200': reply('OK', ref(`${META}.Status`)), '401': { description: 'Unauthorized' } },
  })
  return ops
}

function pathsOf(kind: KindInfo): Record<string, Schema> {
  const gv = kind.group === '' ? '/api/v1' : `/apis/${kind.group}/v1`
  const own = { group: kind.group, version: kind.version, kind: kind.kind }
  const schema = definitionName(typeOfKind(apiVersionOf(kind), kind.kind) ?? kind.kind)
  const scope = kind.namespaced ? 'Namespaced' : ''
  const base = kind.namespaced ? `${gv}/namespaces/{namespace}/${kind.plural}` : `${gv}/${kind.plural}`
  const scopeParams = kind.namespaced ? [NAMESPACE] : []
  const name = pathParam('name', `name of the ${kind.kind}`)
  const target: Target = { kind, gvk: own, schema, scope, sub: '' }
  const paths: Record<string, Schema> = {
    [base]: { ...collectionOperations(target, true), parameters: [...scopeParams, P.pretty] },
    [`${base}/{name}`]: { ...itemOperations(target), parameters: [name, ...scopeParams, P.pretty] },
  }
  if (kind.namespaced) {
    paths[`${gv}/${kind.plural}`] = { ...collectionOperations({ ...target, scope: 'ForAllNamespaces' }, false), parameters: [P.pretty] }
  }
  for (const sub of kind.subresources) {
    // Eviction and binding are POST-only actions found through discovery, not OpenAPI; exec and portforward are WebSocket upgrades.
    if (sub === 'eviction' || sub === 'binding' || sub === 'exec' || sub === 'portforward') continue
    const subParams = [pathParam('name', `name of the ${sub === 'scale' ? 'Scale' : kind.kind}`), ...scopeParams, P.pretty]
    const subName = sub[0].toUpperCase() + sub.slice(1)
    if (sub === 'log') {
      paths[`${base}/{name}/log`] = {
        get: {
          ...op('read', 'get', { ...target, sub: 'Log' }, [P.container, P.follow, P.previous, P.sinceSeconds, P.tailLines, P.timestamps]),
          responses: { '200': { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } }, '401': { description: 'Unauthorized' } },
        },
        parameters: subParams,
      }
      continue
    }
    const subTarget: Target =
      sub === 'scale'
        ? { ...target, gvk: { group: 'autoscaling', version: 'v1', kind: 'Scale' }, schema: SCALE, sub: subName }
        : { ...target, sub: subName }
    paths[`${base}/{name}/${sub}`] = { ...itemOperations(subTarget), parameters: subParams }
  }
  return paths
}

function kindsOf(groupVersionPath: string): KindInfo[] {
  return KINDS.filter((k) => (k.group === '' ? 'api/v1' : `apis/${k.group}/${k.version}`) === groupVersionPath)
}

function buildDocument(groupVersionPath: string): Schema {
  const kinds = kindsOf(groupVersionPath)
  const paths: Record<string, Schema> = {}
  for (const k of kinds) Object.assign(paths, pathsOf(k))
  const roots = [`${META}.Status`, `${META}.DeleteOptions`, `${META}.Patch`, `${META}.WatchEvent`]
  for (const k of kinds) {
    const item = definitionName(typeOfKind(apiVersionOf(k), k.kind) ?? k.kind)
    roots.push(item, `${item}List`)
    if (k.subresources.includes('scale')) roots.push(SCALE)
  }
  const sortedPaths = Object.fromEntries(Object.keys(paths).sort().map((p) => [p, paths[p]]))
  return {
    openapi: '3.0.0',
    info: { title: 'Bramble', version: 'v1.32.0' },
    paths: sortedPaths,
    components: {
      schemas: reachableSchemas(roots),
      securitySchemes: { BearerToken: { type: 'apiKey', description: 'Bearer Token authentication', name: 'authorization', in: 'header' } },
    },
    security: [{ BearerToken: [] }],
  }
}

interface Built {
  document: Schema
  hash: string
}

let built: Map<string, Built> | undefined

function documents(): Map<string, Built> {
  if (built) return built
  built = new Map()
  for (const gv of OPENAPI_GROUP_VERSIONS) {
    const document = buildDocument(gv)
    built.set(gv, { document, hash: createHash('sha512').update(JSON.stringify(document)).digest('hex').toUpperCase() })
  }
  return built
}

/** The document at /openapi/v3: each group-version with the URL of its document, hash included. */
export function openApiV3Root(): object {
  const paths: Record<string, { serverRelativeURL: string }> = {}
  for (const [gv, { hash }] of documents()) paths[gv] = { serverRelativeURL: `/openapi/v3/${gv}?hash=${hash}` }
  return { paths }
}

/** The document at /openapi/v3/<groupVersionPath> (`api/v1`, `apis/apps/v1`, `apis/batch/v1`), or undefined. */
export function openApiV3Document(groupVersionPath: string): object | undefined {
  return documents().get(groupVersionPath.replace(/^\/+|\/+$/g, ''))?.document
}

/** The hash of a group-version document (what `?hash=` in the root names), for ETag and caching. */
export function openApiV3Hash(groupVersionPath: string): string | undefined {
  return documents().get(groupVersionPath.replace(/^\/+|\/+$/g, ''))?.hash
}
