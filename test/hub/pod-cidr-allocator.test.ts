// Pod subnets leased to Nodes, against a real LMDB store, Registry and Informer: assigned when a
// Node registers, unique under concurrent registration, freed when the Node goes, kept across a
// hub restart on the same store, and refused (with an Event) when the range is full or taken.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { EventRecorder } from '../../src/hub/event-recorder.js'
import { Informer } from '../../src/hub/informer.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { PodCidrAllocator } from '../../src/hub/pod-cidr-allocator.js'
import { ANNOTATION_CLUSTER_CIDR } from '../../src/mesh/pod-network.js'
import { Registry } from '../../src/hub/registry.js'
import type { Store } from '../../src/hub/store.js'
import { systemClock } from '../../src/lib/clock.js'
import { silentLogger } from '../../src/lib/logger.js'

const NODE = KINDS.find((k) => k.kind === 'Node')!
const EVENT = KINDS.find((k) => k.kind === 'Event')!
const WRITE = { dryRun: false, fieldValidation: 'Ignore' as const }

interface Hub {
  store: Store
  registry: Registry
  allocator: PodCidrAllocator
  stop(): Promise<void>
}

/** The hub's part that leases subnets, over the store at `path` (opened again after a stop: a restart). */
async function startHub(path: string, options: { clusterCidr?: string; nodeCidrMaskSize?: number } = {}): Promise<Hub> {
  const store = await openLmdbStore({ path })
  const registry = new Registry(store, systemClock, silentLogger())
  if (!(await store.get({ resource: 'namespaces', namespace: '', name: 'default' }))) {
    await store.create({ resource: 'namespaces', namespace: '', name: 'default' }, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } })
  }
  const nodes = new Informer(registry, NODE)
  const events = new EventRecorder(registry, systemClock, silentLogger(), { component: 'pod-cidr-allocator' })
  const allocator = new PodCidrAllocator({ registry, nodes, events, clock: systemClock, logger: silentLogger(), ...options })
  await nodes.start()
  allocator.start()
  return {
    store,
    registry,
    allocator,
    async stop() {
      nodes.stop()
      await allocator.stop()
      await store.close()
    },
  }
}

function newNode(name: string, spec: Record<string, unknown> = {}): KubeObject {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name }, spec } as KubeObject
}

async function register(hub: Hub, name: string, spec?: Record<string, unknown>): Promise<void> {
  await hub.registry.create(NODE, '', newNode(name, spec), WRITE)
}

/** The Node's spec.podCIDR once the allocator is idle (it may take a write or two). */
async function podCidr(hub: Hub, name: string): Promise<string | undefined> {
  for (let i = 0; i < 100; i++) {
    await hub.allocator.idle()
    const node = await hub.registry.get(NODE, '', name)
    if (node.spec?.podCIDR) return node.spec.podCIDR
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return undefined
}

async function settle(hub: Hub): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 50))
  await hub.allocator.idle()
}

async function warnings(hub: Hub, node: string): Promise<string[]> {
  const { items } = await hub.registry.list(EVENT, 'default')
  return items.filter((e: any) => e.involvedObject?.name === node && e.reason === 'CIDRNotAvailable').map((e: any) => e.message)
}

function tempStore(t: any): string {
  const dir = mkdtempSync(join(tmpdir(), 'bramble-podcidr-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'store')
}

t.test('a registering Node is leased the first free /24 of 10.42.0.0/16, in spec.podCIDR and spec.podCIDRs', async (t) => {
  const hub = await startHub(tempStore(t))
  t.teardown(() => hub.stop())
  await register(hub, 'pi-1')
  t.equal(await podCidr(hub, 'pi-1'), '10.42.0.0/24')
  const node = await hub.registry.get(NODE, '', 'pi-1')
  t.same(node.spec.podCIDRs, ['10.42.0.0/24'])
  t.equal(node.metadata.annotations?.[ANNOTATION_CLUSTER_CIDR], '10.42.0.0/16', 'with the range it came from, for the agent')
  await register(hub, 'pi-2')
  t.equal(await podCidr(hub, 'pi-2'), '10.42.1.0/24')
})

t.test('Nodes registering at the same moment never share a subnet', async (t) => {
  const hub = await startHub(tempStore(t), { clusterCidr: '10.100.0.0/16', nodeCidrMaskSize: 24 })
  t.teardown(() => hub.stop())
  const names = Array.from({ length: 24 }, (_, i) => `node-${i}`)
  await Promise.all(names.map((name) => register(hub, name)))
  const cidrs = await Promise.all(names.map((name) => podCidr(hub, name)))
  t.notOk(cidrs.includes(undefined), 'every node has one')
  t.equal(new Set(cidrs).size, names.length, 'all different')
  t.ok(cidrs.every((c) => /^10\.100\.\d+\.0\/24$/.test(c!)), 'all from --cluster-cidr')
})

t.test("a deleted Node's subnet is free again", async (t) => {
  const hub = await startHub(tempStore(t))
  t.teardown(() => hub.stop())
  await register(hub, 'a')
  await register(hub, 'b')
  t.equal(await podCidr(hub, 'a'), '10.42.0.0/24')
  t.equal(await podCidr(hub, 'b'), '10.42.1.0/24')
  await hub.registry.delete(NODE, '', 'a', { dryRun: false })
  await settle(hub)
  await register(hub, 'c')
  t.equal(await podCidr(hub, 'c'), '10.42.0.0/24', 'the freed one is reused')
})

t.test('leases survive a hub restart on the same store, and new ones do not collide with them', async (t) => {
  const path = tempStore(t)
  const first = await startHub(path)
  await register(first, 'a')
  await register(first, 'b')
  await register(first, 'c')
  t.equal(await podCidr(first, 'c'), '10.42.2.0/24')
  await first.registry.delete(NODE, '', 'b', { dryRun: false })
  await settle(first)
  await first.stop()

  const second = await startHub(path)
  t.teardown(() => second.stop())
  t.equal(await podCidr(second, 'a'), '10.42.0.0/24', 'kept')
  t.equal(await podCidr(second, 'c'), '10.42.2.0/24', 'kept')
  await register(second, 'd')
  await register(second, 'e')
  t.equal(await podCidr(second, 'd'), '10.42.1.0/24', "the deleted node's subnet")
  t.equal(await podCidr(second, 'e'), '10.42.3.0/24', 'past the ones held before the restart')
})

t.test('a full range leaves a Node without a subnet and says so; one freed goes to it', async (t) => {
  const hub = await startHub(tempStore(t), { clusterCidr: '10.42.0.0/23', nodeCidrMaskSize: 24 })
  t.teardown(() => hub.stop())
  await register(hub, 'a')
  await register(hub, 'b')
  t.ok(await podCidr(hub, 'a'))
  t.ok(await podCidr(hub, 'b'))
  await register(hub, 'c')
  await settle(hub)
  t.equal((await hub.registry.get(NODE, '', 'c')).spec?.podCIDR, undefined, 'none left for c')
  t.match(await warnings(hub, 'c'), [/Node c has no pod subnet: no free pod subnet left in 10\.42\.0\.0\/23/])
  await hub.registry.delete(NODE, '', 'a', { dryRun: false })
  t.equal(await podCidr(hub, 'c'), '10.42.0.0/24', 'c gets the one a held')
})

t.test('a subnet set by hand is kept when free, and flagged when taken or outside the range', async (t) => {
  const hub = await startHub(tempStore(t))
  t.teardown(() => hub.stop())
  await register(hub, 'manual', { podCIDR: '10.42.7.0/24' })
  await settle(hub)
  t.same((await hub.registry.get(NODE, '', 'manual')).spec.podCIDRs, ['10.42.7.0/24'], 'kept, podCIDRs filled in')
  t.same(await warnings(hub, 'manual'), [])
  await register(hub, 'copy', { podCIDR: '10.42.7.0/24' })
  await register(hub, 'away', { podCIDR: '192.168.5.0/24' })
  await settle(hub)
  t.match(await warnings(hub, 'copy'), [/Node copy keeps pod subnet 10\.42\.7\.0\/24, which cannot be leased to it \(10\.42\.7\.0\/24 is already held by manual\)/])
  t.match(await warnings(hub, 'away'), [/192\.168\.5\.0\/24 is outside 10\.42\.0\.0\/16/])
  await register(hub, 'next')
  t.equal(await podCidr(hub, 'next'), '10.42.0.0/24', 'a new node still gets a free one')
})
