// The mesh on Node objects: annotations from agents' reports, pod subnets from the spec, and the
// mesh message built from the Nodes; and the Overlay column `get nodes -o wide` shows.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { toTable } from '../../src/hub/tables.js'
import { generateWireGuardKeyPair } from '../../src/mesh/wireguard-keys.js'
import {
  ANNOTATION_WIREGUARD_ENDPOINT,
  ANNOTATION_WIREGUARD_PUBLIC_KEY,
  meshFromNodes,
  podCIDRsOf,
  wireGuardAnnotations,
  wireGuardReportProblems,
} from '../../src/mesh/wireguard-nodes.js'

const key = generateWireGuardKeyPair().publicKey
const node = (name: string, annotations: Record<string, string> = {}, spec: Record<string, unknown> = {}, extra: Partial<KubeObject['metadata']> = {}, status: Record<string, unknown> = {}): KubeObject =>
  ({ apiVersion: 'v1', kind: 'Node', metadata: { name, annotations, ...extra }, spec, status }) as KubeObject

t.test('the mesh holds the nodes that reported a key, sorted, with endpoint and pod subnets', async (t) => {
  const other = generateWireGuardKeyPair().publicKey
  const mesh = meshFromNodes([
    node('b', { [ANNOTATION_WIREGUARD_PUBLIC_KEY]: other }, { podCIDR: '10.42.2.0/24' }),
    node('a', { [ANNOTATION_WIREGUARD_PUBLIC_KEY]: key, [ANNOTATION_WIREGUARD_ENDPOINT]: '10.0.0.1:51820' }, { podCIDR: '10.42.1.0/24', podCIDRs: ['10.42.1.0/24'] }),
    node('c'),
    node('d', { [ANNOTATION_WIREGUARD_PUBLIC_KEY]: 'garbage' }),
    node('e', { [ANNOTATION_WIREGUARD_PUBLIC_KEY]: key }, {}, { deletionTimestamp: '2026-01-01T00:00:00Z' }),
  ])
  t.same(mesh, {
    nodes: [
      { node: 'a', publicKey: key, endpoint: '10.0.0.1:51820', podCIDRs: ['10.42.1.0/24'] },
      { node: 'b', publicKey: other, podCIDRs: ['10.42.2.0/24'] },
    ],
  })
  t.same(meshFromNodes([]), { nodes: [] })
})

t.test('pod subnets: podCIDRs first, then podCIDR, else none', async (t) => {
  t.same(podCIDRsOf(node('a', {}, { podCIDR: '10.42.1.0/24', podCIDRs: ['10.42.1.0/24', 'fd00:42:1::/64'] })), ['10.42.1.0/24', 'fd00:42:1::/64'])
  t.same(podCIDRsOf(node('a', {}, { podCIDR: '10.42.1.0/24' })), ['10.42.1.0/24'])
  t.same(podCIDRsOf(node('a')), [])
})

t.test("a report sets the annotations; a report without an endpoint removes the old one", async (t) => {
  const with1 = wireGuardAnnotations({ other: 'kept' }, { publicKey: key, endpoint: '10.0.0.1:51820' })
  t.same(with1, { other: 'kept', [ANNOTATION_WIREGUARD_PUBLIC_KEY]: key, [ANNOTATION_WIREGUARD_ENDPOINT]: '10.0.0.1:51820' })
  t.same(wireGuardAnnotations(with1, { publicKey: key }), { other: 'kept', [ANNOTATION_WIREGUARD_PUBLIC_KEY]: key })
})

t.test('bad reports are refused with the field named', async (t) => {
  t.same(wireGuardReportProblems({ publicKey: key, endpoint: '[fd00::1]:51820' }), [])
  t.same(wireGuardReportProblems('x'), ['wireguard: expected an object'])
  t.match(wireGuardReportProblems({ publicKey: key, endpoint: '10.0.0.1:0' }), [/wireguard.endpoint/])
  t.match(wireGuardReportProblems({ endpoint: 'host.example:51820' }), [/wireguard.publicKey/, /wireguard.endpoint/])
})

t.test('get nodes -o wide: the Overlay column says up or down (why) and the endpoint', async (t) => {
  const overlay = (n: KubeObject) => {
    const table = toTable('Node', [n], '1', Date.now(), 'None')
    const column = table.columnDefinitions.findIndex((c) => c.name === 'Overlay')
    t.equal(table.columnDefinitions[column]?.priority, 1, 'only with -o wide')
    return table.rows[0]!.cells[column]
  }
  const annotated = { [ANNOTATION_WIREGUARD_PUBLIC_KEY]: key, [ANNOTATION_WIREGUARD_ENDPOINT]: '10.0.0.1:51820' }
  const cond = (status: string, reason: string) => ({ conditions: [{ type: 'NetworkUnavailable', status, reason }] })
  t.equal(overlay(node('a')), '<none>')
  t.equal(overlay(node('a', annotated)), 'unknown 10.0.0.1:51820')
  t.equal(overlay(node('a', annotated, {}, {}, cond('False', 'WireGuardUp'))), 'up 10.0.0.1:51820')
  t.equal(overlay(node('a', annotated, {}, {}, cond('True', 'WireGuardFailed'))), 'down (WireGuardFailed) 10.0.0.1:51820')
  t.equal(overlay(node('a', { [ANNOTATION_WIREGUARD_PUBLIC_KEY]: key }, {}, {}, cond('False', 'NoPeers'))), 'up no-endpoint')
})
