// The hub's scrape text: the per-node gauges, written straight from the heartbeats rather than
// through prom-client, must still be a valid exposition beside prom-client's part.

import t from 'tap'
import type { KubeObject } from '../../src/api/types.js'
import { Heartbeats } from '../../src/hub/heartbeats.js'
import { HubMetrics, perNodeText } from '../../src/hub/hub-metrics.js'
import type { Informer } from '../../src/hub/informer.js'
import type { Store } from '../../src/hub/store.js'
import { sampleValue } from '../helpers/prometheus-text.js'

const beat = (cpu: number, memory: number, temperature?: number) => ({ seq: 1, uptimeMs: 1000, cpu, memory, ...(temperature === undefined ? {} : { temperature }), pods: [] })

function scrapedHub(heartbeats: Heartbeats, nodes: KubeObject[] = [], pods: KubeObject[] = []): HubMetrics {
  const metrics = new HubMetrics()
  const informer = (objects: KubeObject[]) => ({ list: () => objects }) as unknown as Informer
  metrics.observeCluster({ store: { revision: async () => 7 } as unknown as Store, storeFile: '/nonexistent', nodes: informer(nodes), pods: informer(pods), heartbeats })
  return metrics
}

t.test("each node's figures, one series per node and metric; no temperature where the board has none", async (t) => {
  const heartbeats = new Heartbeats()
  heartbeats.record('pi-1', beat(0.25, 512_000_000, 48.5), 1)
  heartbeats.record('pi-2', beat(0.5, 256_000_000), 1)
  heartbeats.seen('pi-3', 1) // alive, no heartbeat yet
  const text = perNodeText(heartbeats)
  t.equal(sampleValue(text, 'bramble_node_cpu_ratio', { node: 'pi-1' }), 0.25)
  t.equal(sampleValue(text, 'bramble_node_memory_bytes', { node: 'pi-2' }), 256_000_000)
  t.equal(sampleValue(text, 'bramble_node_temperature_celsius', { node: 'pi-1' }), 48.5)
  t.equal(sampleValue(text, 'bramble_node_temperature_celsius', { node: 'pi-2' }), undefined)
  t.notMatch(text, /pi-3/)
  t.equal(text.match(/^bramble_node_/gm)?.length, 5)
  t.match(text, /^# TYPE bramble_node_cpu_ratio gauge$/m)
})

t.test('a label value is escaped as the text format wants (backslash, quote, newline)', async (t) => {
  const heartbeats = new Heartbeats()
  heartbeats.record('a"b\\c\nd', beat(0.1, 1), 1)
  t.match(perNodeText(heartbeats), 'bramble_node_cpu_ratio{node="a\\"b\\\\c\\nd"} 0.1\n')
})

t.test('the whole scrape: every metric named once in HELP and TYPE, every sample line well formed', async (t) => {
  const heartbeats = new Heartbeats()
  for (let i = 0; i < 50; i++) heartbeats.record(`pi-${i}`, beat(i / 100, 1000 + i, 40 + i), 1)
  const ready = (status: string): KubeObject => ({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' }, status: { conditions: [{ type: 'Ready', status }, { type: 'DiskPressure', status: 'False' }] } })
  const pod = (phase?: string): KubeObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, status: phase ? { phase } : {} })
  const { body } = await scrapedHub(heartbeats, [ready('True'), ready('True'), ready('Unknown')], [pod('Running'), pod('Running'), pod()]).scrape()
  const helps = body.match(/^# HELP (\S+)/gm)!.map((l) => l.split(' ')[2])
  t.same(helps.filter((name, i) => helps.indexOf(name) !== i), [], 'no metric described twice')
  for (const line of body.split('\n').filter((l) => l && !l.startsWith('#'))) {
    if (!/^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? \S+$/.test(line)) t.fail(`malformed sample line: ${line}`)
  }
  t.equal(sampleValue(body, 'bramble_node_cpu_ratio'), Array.from({ length: 50 }, (_, i) => i / 100).reduce((a, b) => a + b))
  t.equal(sampleValue(body, 'bramble_nodes', { condition: 'Ready', status: 'True' }), 2)
  t.equal(sampleValue(body, 'bramble_nodes', { condition: 'Ready', status: 'Unknown' }), 1)
  t.equal(sampleValue(body, 'bramble_nodes', { condition: 'DiskPressure', status: 'False' }), 3)
  t.equal(sampleValue(body, 'bramble_pods', { phase: 'Running' }), 2)
  t.equal(sampleValue(body, 'bramble_pods', { phase: 'Pending' }), 1, 'a pod without a phase counts as Pending')
  t.equal(sampleValue(body, 'bramble_store_revision'), 7)
})
