// The tables of `bramble top`: kubectl's columns, millicores and Mi, percentages of allocatable,
// the board's temperature, `<unknown>` for a node that has not reported, sorting.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { bytesOf, coresOf, formatTopNodes, formatTopPods } from '../../src/cli/top-format.js'

const node = (name: string, cpu: string, memory: string) => ({ apiVersion: 'v1', kind: 'Node', metadata: { name }, status: { allocatable: { cpu, memory } } }) as KubeObject
const nodeMetrics = (name: string, cpu: string, memory: string, temperature?: string) =>
  ({ kind: 'NodeMetrics', apiVersion: 'metrics.k8s.io/v1beta1', metadata: { name, ...(temperature ? { annotations: { 'bramble.io/temperature-celsius': temperature } } : {}) }, usage: { cpu, memory } }) as unknown as KubeObject
const podMetrics = (namespace: string, name: string, containers: Array<[string, string, string]>) =>
  ({ kind: 'PodMetrics', apiVersion: 'metrics.k8s.io/v1beta1', metadata: { name, namespace }, containers: containers.map(([n, cpu, memory]) => ({ name: n, usage: { cpu, memory } })) }) as unknown as KubeObject

t.test('quantities read as cores and bytes; garbage reads as 0', async (t) => {
  t.equal(coresOf('250000000n'), 0.25)
  t.equal(coresOf('1500m'), 1.5)
  t.equal(coresOf('2'), 2)
  t.equal(bytesOf('2048Ki'), 2 * 1024 * 1024)
  t.equal(bytesOf('1Gi'), 1024 ** 3)
  t.equal(coresOf(undefined), 0)
  t.equal(bytesOf('lots'), 0)
})

t.test('top nodes: usage, percentage of allocatable, temperature; <unknown> for a node without a report', async (t) => {
  const text = formatTopNodes(
    [node('pi-1', '3900m', '3800Mi'), node('pi-2', '4', '7Gi'), node('pi-3', '4', '1Gi')],
    [nodeMetrics('pi-1', '975000000n', '1945600Ki', '51.2'), nodeMetrics('pi-2', '400000000n', '1048576Ki')],
  )
  t.equal(
    text,
    [
      'NAME   CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)   TEMPERATURE',
      'pi-1   975m         25%         1900Mi          50%         51.2°C',
      'pi-2   400m         10%         1024Mi          14%         <none>',
      'pi-3   <unknown>    <unknown>   <unknown>       <unknown>   <unknown>',
      '',
    ].join('\n'),
  )
})

t.test('top nodes --sort-by memory puts the fullest first and unreported nodes last', async (t) => {
  const text = formatTopNodes([node('a', '4', '4Gi'), node('b', '4', '4Gi'), node('c', '4', '4Gi')], [nodeMetrics('a', '1', '100Mi'), nodeMetrics('c', '0', '900Mi')], 'memory')
  t.same(text.split('\n').slice(1, 4).map((l) => l.split(' ')[0]), ['c', 'a', 'b'])
})

t.test('top pods sums containers per pod; --containers gives one line each; -A leads with the namespace', async (t) => {
  const metrics = [podMetrics('default', 'web', [['app', '12000000n', '10240Ki'], ['sidecar', '3000000n', '5120Ki']]), podMetrics('kube-system', 'dns', [['dns', '1000000n', '4096Ki']])]
  t.equal(formatTopPods(metrics.slice(0, 1)), 'NAME   CPU(cores)   MEMORY(bytes)\nweb    15m          15Mi\n')
  t.equal(formatTopPods(metrics.slice(0, 1), { containers: true }), 'POD   NAME      CPU(cores)   MEMORY(bytes)\nweb   app       12m          10Mi\nweb   sidecar   3m           5Mi\n')
  t.equal(formatTopPods(metrics, { allNamespaces: true, sort: 'cpu' }), 'NAMESPACE     NAME   CPU(cores)   MEMORY(bytes)\ndefault       web    15m          15Mi\nkube-system   dns    1m           4Mi\n')
})
