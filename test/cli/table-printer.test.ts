// Printing the hub's meta.k8s.io Tables as `get` does.

import t from 'tap'
import { formatTable, type Table } from '../../src/cli/table-printer.js'

const table: Table = {
  kind: 'Table',
  apiVersion: 'meta.k8s.io/v1',
  columnDefinitions: [
    { name: 'Name', type: 'string', format: 'name', priority: 0 },
    { name: 'Ready', type: 'string', format: '', priority: 0 },
    { name: 'Age', type: 'string', format: '', priority: 0 },
    { name: 'Images', type: 'string', format: '', priority: 1 },
  ],
  rows: [
    { cells: ['web', '3/3', '5m', 'nginx:1.27'], object: { metadata: { name: 'web', namespace: 'shop' } } },
    { cells: ['redis-leader', '1/1', '2d', null], object: { metadata: { name: 'redis-leader', namespace: 'default' } } },
  ],
}

t.test('upper-case headers, columns aligned three spaces apart, wide-only columns hidden', async (t) => {
  t.equal(formatTable(table), ['NAME           READY   AGE', 'web            3/3     5m', 'redis-leader   1/1     2d', ''].join('\n'))
})

t.test('-o wide adds the priority-1 columns; a missing cell prints <none>', async (t) => {
  t.equal(
    formatTable(table, { wide: true }),
    ['NAME           READY   AGE   IMAGES', 'web            3/3     5m    nginx:1.27', 'redis-leader   1/1     2d    <none>', ''].join('\n'),
  )
})

t.test('-A leads with the namespace of each row', async (t) => {
  t.equal(formatTable(table, { withNamespace: true }), ['NAMESPACE   NAME           READY   AGE', 'shop        web            3/3     5m', 'default     redis-leader   1/1     2d', ''].join('\n'))
})

t.test('several types at once prefix names with their type', async (t) => {
  t.match(formatTable(table, { namePrefix: 'deployment.apps' }), /^deployment\.apps\/web {3}/m)
})

t.test('an empty table prints nothing (the caller says "No resources found")', async (t) => {
  t.equal(formatTable({ ...table, rows: [] }), '')
})
