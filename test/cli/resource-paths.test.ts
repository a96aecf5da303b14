// API paths and command-line resource arguments, as kubectl reads them.

import t from 'tap'
import { kindByName } from '../../src/api/kinds.js'
import { UsageError } from '../../src/cli/errors.js'
import { parseResourceArgs, qualifiedName, resourcePath } from '../../src/cli/resource-paths.js'

const kind = (n: string) => kindByName(n)!

t.test('core, grouped and cluster-scoped kinds get Kubernetes paths', async (t) => {
  t.equal(resourcePath(kind('pod'), 'default', 'web-1'), '/api/v1/namespaces/default/pods/web-1')
  t.equal(resourcePath(kind('deploy'), 'shop'), '/apis/apps/v1/namespaces/shop/deployments')
  t.equal(resourcePath(kind('deploy'), 'shop', 'web', 'scale'), '/apis/apps/v1/namespaces/shop/deployments/web/scale')
  t.equal(resourcePath(kind('cronjob'), 'x', 'nightly'), '/apis/batch/v1/namespaces/x/cronjobs/nightly')
  t.equal(resourcePath(kind('node'), 'default', 'pi-1'), '/api/v1/nodes/pi-1', 'a namespace is ignored for cluster-scoped kinds')
  t.equal(resourcePath(kind('pods'), undefined), '/api/v1/pods', 'no namespace: across all namespaces')
})

t.test('qualified names as kubectl prints them', async (t) => {
  t.equal(qualifiedName(kind('deploy')), 'deployment.apps')
  t.equal(qualifiedName(kind('svc')), 'service')
})

t.test('TYPE[,TYPE] NAME... and TYPE/NAME... forms', async (t) => {
  t.same(
    parseResourceArgs(['deploy', 'web', 'api']).map((x) => [x.info.kind, x.names]),
    [['Deployment', ['web', 'api']]],
  )
  t.same(
    parseResourceArgs(['deploy,svc']).map((x) => [x.info.kind, x.names]),
    [['Deployment', []], ['Service', []]],
  )
  t.same(
    parseResourceArgs(['deploy/web', 'svc/web', 'deployments/api']).map((x) => [x.info.kind, x.names]),
    [['Deployment', ['web', 'api']], ['Service', ['web']]],
  )
})

t.test('`all` stands for the workload kinds and Services', async (t) => {
  t.same(
    parseResourceArgs(['all']).map((x) => x.info.kind),
    ['Pod', 'Service', 'DaemonSet', 'Deployment', 'ReplicaSet', 'Job', 'CronJob'],
  )
  t.same(parseResourceArgs(['all,deploy']).length, 7, 'a type named twice is listed once')
})

t.test('an unknown type or a mixed form is a usage error', async (t) => {
  t.throws(() => parseResourceArgs(['foo']), new UsageError('unknown resource type "foo"; try one of: pods, deployments, replicasets, daemonsets, jobs, cronjobs, services, endpoints, configmaps, secrets, events, namespaces, nodes'))
  t.throws(() => parseResourceArgs(['deploy/web', 'api']), { code: 'BRAMBLE_CLI_USAGE' })
  t.throws(() => parseResourceArgs(['deploy', 'svc/web']), { code: 'BRAMBLE_CLI_USAGE' })
  t.throws(() => parseResourceArgs([]), { code: 'BRAMBLE_CLI_USAGE' })
})
