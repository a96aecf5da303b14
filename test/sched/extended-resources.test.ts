// The scheduler and extended resources (devices.bramble.dev/serial): a pod asking for a device goes
// only where the node advertises one not yet taken by its pods, with Kubernetes' reason otherwise.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { schedule } from '../../src/sched/scheduler.js'
import type { NodeSnapshot } from '../../src/sched/snapshot.js'

const SERIAL = 'devices.bramble.dev/serial'

function node(name: string, devices: Record<string, string> = {}): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: { allocatable: { cpu: '4', memory: '4Gi', pods: '110', ...devices }, conditions: [{ type: 'Ready', status: 'True' }] },
  }
}

function pod(name: string, limits: Record<string, unknown> = {}, phase?: string, init?: Record<string, unknown>): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name: 'c', image: 'busybox', resources: { limits } }], ...(init ? { initContainers: [{ name: 'i', image: 'busybox', resources: { limits: init } }] } : {}) },
    ...(phase ? { status: { phase } } : {}),
  }
}

const on = (n: KubeObject, pods: KubeObject[] = []): NodeSnapshot => ({ node: n, pods })

t.test('a pod asking for a serial device lands on the node that has one, whatever the scores say', async (t) => {
  // b is emptier (spread would pick it) but has no device.
  const busy = on(node('a', { [SERIAL]: '2' }), [pod('x'), pod('y'), pod('z')])
  t.match(schedule(pod('ha', { [SERIAL]: 1 }), { nodes: [busy, on(node('b'))] }), { kind: 'bind', node: 'a' })
  t.match(schedule(pod('plain'), { nodes: [busy, on(node('b'))] }), { kind: 'bind', node: 'b' }, 'the do-nothing case: a pod asking for none goes where it always would')
})

t.test('devices held by the pods bound to a node count against it', async (t) => {
  const a = node('a', { [SERIAL]: '2' })
  const d = schedule(pod('third', { [SERIAL]: '1' }), { nodes: [on(a, [pod('one', { [SERIAL]: 1 }), pod('two', { [SERIAL]: 1 })]), on(node('b'))] })
  t.match(d, { kind: 'unschedulable', reasons: { [`Insufficient ${SERIAL}`]: 2 } })
  t.equal((d as any).message, `0/2 nodes are available: 2 Insufficient ${SERIAL}.`)
  t.match(schedule(pod('two', { [SERIAL]: 2 }), { nodes: [on(a, [pod('x', { [SERIAL]: 1 })])] }), { kind: 'unschedulable' }, 'one of two left')
  t.match(schedule(pod('one', { [SERIAL]: 1 }), { nodes: [on(a, [pod('x', { [SERIAL]: 1 })])] }), { kind: 'bind', node: 'a' })
})

t.test('init containers count by their largest, app containers by their sum; other extended resources too', async (t) => {
  const a = on(node('a', { [SERIAL]: '2', 'example.com/gpu': '1' }))
  t.match(schedule(pod('p', { [SERIAL]: 1 }, undefined, { [SERIAL]: 2 }), { nodes: [a] }), { kind: 'bind' }, 'max(1, 2) = 2 fits')
  t.match(schedule(pod('p', { [SERIAL]: 1 }, undefined, { [SERIAL]: 3 }), { nodes: [a] }), { kind: 'unschedulable' })
  t.match(schedule(pod('g', { 'example.com/gpu': 2 }), { nodes: [a] }), { kind: 'unschedulable', reasons: { 'Insufficient example.com/gpu': 1 } })
  t.match(schedule(pod('g', { 'example.com/gpu': 1, [SERIAL]: 3 }), { nodes: [a] }), { kind: 'unschedulable', reasons: { [`Insufficient ${SERIAL}`]: 1 } })
})
