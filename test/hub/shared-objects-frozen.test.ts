// The objects a write of this process returns are the ones the informers' caches get (the LMDB
// store hands them over instead of decoding the log), so no controller may change one. This runs
// the leader's controllers over a store that deep-freezes every shared object (freezeShared): a
// controller that changed one would throw instead of corrupting the caches, its work would not
// converge, and its queue or watch would log the TypeError.

import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import t from 'tap'
import { KINDS } from '../../src/api/kinds.js'
import type { KubeObject } from '../../src/api/types.js'
import { startControllers } from '../../src/hub/controllers.js'
import { HubMetrics } from '../../src/hub/hub-metrics.js'
import { openLmdbStore } from '../../src/hub/lmdb-store.js'
import { Registry } from '../../src/hub/registry.js'
import { systemClock } from '../../src/lib/clock.js'
import { resolveHubConfig } from '../../src/lib/config.js'
import { createLogger } from '../../src/lib/logger.js'

const kind = (k: string) => KINDS.find((i) => i.kind === k)!
const WRITE = { dryRun: false, fieldValidation: 'Strict' as const }

async function until(what: string, probe: () => Promise<boolean>, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await probe())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function node(name: string): KubeObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'arm64', 'kubernetes.io/os': 'linux' } },
    status: {
      conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2026-01-01T00:00:00Z', lastTransitionTime: '2026-01-01T00:00:00Z' }],
      capacity: { cpu: '4', memory: '4Gi', pods: '110' },
      allocatable: { cpu: '4', memory: '4Gi', pods: '110' },
      nodeInfo: { architecture: 'arm64', operatingSystem: 'linux' },
    },
  }
}

const template = (app: string) => ({
  metadata: { labels: { app } },
  spec: { containers: [{ name: 'c', image: 'busybox:1', resources: { requests: { cpu: '100m', memory: '32Mi' } } }] },
})

t.test('the controllers take a Deployment, a Service, a Job and a DaemonSet through their lives without changing a shared object', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hsc-frozen-'))
  const store = await openLmdbStore({ path: join(dir, 'store'), freezeShared: true })
  const logged: string[] = []
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (chunk, _enc, done) => void (logged.push(String(chunk)), done()) }) })
  const registry = new Registry(store, systemClock, logger)
  const stops: Array<() => Promise<void> | void> = []
  t.teardown(async () => {
    for (const stop of stops.reverse()) await stop()
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  })
  await registry.create(kind('Namespace'), '', { metadata: { name: 'default' } }, WRITE)
  for (const name of ['n1', 'n2']) await registry.create(kind('Node'), '', node(name), WRITE)
  const config = resolveHubConfig({ dataDir: dir }, {})
  await startControllers(registry, config, { logger, clock: systemClock }, stops, new HubMetrics())

  const { object: written } = await registry.create(kind('ConfigMap'), 'default', { metadata: { name: 'c' }, data: { k: 'v' } }, WRITE)
  t.ok(Object.isFrozen(written) && Object.isFrozen(written.data), 'the check is on: what a write returns is frozen')

  const pods = async () => (await registry.list(kind('Pod'), 'default')).items
  const podsOf = async (app: string) => (await pods()).filter((p) => p.metadata.labels?.app === app)
  // The kubelet's part: every bound pod runs (a Job's pod finishes), as a node's status report would write it.
  let kubelet = true
  const playKubelet = (async () => {
    while (kubelet) {
      for (const p of await pods()) {
        if (!p.spec?.nodeName || p.status?.phase === 'Running' || p.status?.phase === 'Succeeded') continue
        const finished = p.metadata.labels?.['job-name'] !== undefined
        const status = finished ? { ...p.status, phase: 'Succeeded' } : { ...p.status, phase: 'Running', podIP: '10.42.0.9', conditions: [...(p.status?.conditions ?? []), { type: 'Ready', status: 'True' }] }
        await registry.update(kind('Pod'), 'default', p.metadata.name!, { ...p, status }, WRITE, 'status').catch(() => undefined)
      }
      await new Promise((r) => setTimeout(r, 30))
    }
  })()
  stops.push(async () => {
    kubelet = false
    await playKubelet
  })

  await registry.create(kind('Deployment'), 'default', { metadata: { name: 'web' }, spec: { replicas: 3, selector: { matchLabels: { app: 'web' } }, template: template('web') } }, WRITE)
  await registry.create(kind('Service'), 'default', { metadata: { name: 'web' }, spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } }, WRITE)
  await registry.create(kind('Job'), 'default', { metadata: { name: 'once' }, spec: { template: { ...template('once'), spec: { ...template('once').spec, restartPolicy: 'Never' } } } }, WRITE)
  await registry.create(kind('DaemonSet'), 'default', { metadata: { name: 'every' }, spec: { selector: { matchLabels: { app: 'every' } }, template: template('every') } }, WRITE)

  await until('3 web pods Running on the nodes', async () => (await podsOf('web')).filter((p) => p.status?.phase === 'Running').length === 3)
  await until('the Service has 3 ready endpoints', async () => {
    const endpoints = await registry.get(kind('Endpoints'), 'default', 'web').catch(() => undefined)
    return ((endpoints?.subsets ?? []) as any[]).flatMap((s: any) => s.addresses ?? []).length === 3
  })
  await until('the Job complete', async () => ((await registry.get(kind('Job'), 'default', 'once')).status?.conditions ?? []).some((c: any) => c.type === 'Complete' && c.status === 'True'))
  await until('a DaemonSet pod on each node', async () => new Set((await podsOf('every')).map((p) => p.spec?.nodeName)).size === 2)
  t.pass('everything converged')

  await registry.patch(kind('Deployment'), 'default', 'web', Buffer.from(JSON.stringify({ spec: { replicas: 1 } })), 'application/merge-patch+json', WRITE)
  await until('scaled down to 1 web pod', async () => (await podsOf('web')).length === 1)
  await registry.delete(kind('Deployment'), 'default', 'web', { dryRun: false, propagationPolicy: 'Background' })
  await until("the Deployment's pods collected", async () => (await podsOf('web')).length === 0)
  t.pass('scaled down, deleted and collected')

  const typeErrors = logged.filter((line) => /TypeError|read only|not extensible/.test(line))
  t.same(typeErrors, [], 'no controller tried to change a shared object')
})
