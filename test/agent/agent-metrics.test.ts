// The agent's /metrics pieces on their own: the listener serves only /metrics and fails to start
// (for the agent to run on without it) when its port is taken; the metered runtime counts
// operations by result; the gauges read pods by phase and the node's last usage when scraped.

import t from 'tap'
import { request } from 'node:http'
import { AgentMetrics } from '../../src/agent/agent-metrics.js'
import { LABELS } from '../../src/agent/container-runtime.js'
import { meterRuntime } from '../../src/agent/metered-runtime.js'
import { startMetricsListener } from '../../src/agent/metrics-listener.js'
import { sampleValue } from '../helpers/prometheus-text.js'
import { FakeRuntime } from './fake-runtime.js'

function get(port: number, path: string, method = 'GET'): Promise<{ status: number; type: string; text: string }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port, path, method }, (res) => {
      let text = ''
      res.on('data', (d) => (text += d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type'] ?? ''), text }))
    })
      .on('error', reject)
      .end()
  })
}

t.test('the listener serves /metrics and nothing else', async (t) => {
  const metrics = new AgentMetrics()
  let phases = ['Running', 'Running', 'Pending']
  metrics.observe({ podPhases: () => phases, nodeUsage: () => ({ cpu: 0.3, memoryUsedBytes: 512 * 1024 * 1024, temperatureC: 47.5 }) })
  const listener = await startMetricsListener({ host: '127.0.0.1', port: 0, scrape: metrics.scrape })
  t.teardown(() => listener.close())
  const scraped = await get(listener.port, '/metrics')
  t.equal(scraped.status, 200)
  t.match(scraped.type, /^text\/plain/)
  t.equal(sampleValue(scraped.text, 'bramble_agent_pods', { phase: 'Running' }), 2)
  t.equal(sampleValue(scraped.text, 'bramble_agent_pods', { phase: 'Pending' }), 1)
  t.equal(sampleValue(scraped.text, 'bramble_node_cpu_ratio'), 0.3)
  t.equal(sampleValue(scraped.text, 'bramble_node_temperature_celsius'), 47.5)
  t.ok(sampleValue(scraped.text, 'process_resident_memory_bytes')! > 0)
  phases = ['Succeeded']
  const again = (await get(listener.port, '/metrics')).text
  t.equal(sampleValue(again, 'bramble_agent_pods', { phase: 'Running' }), undefined, 'a phase no pod is in any more is gone')
  t.equal(sampleValue(again, 'bramble_agent_pods', { phase: 'Succeeded' }), 1)
  t.equal((await get(listener.port, '/')).status, 404)
  t.equal((await get(listener.port, '/metrics', 'POST')).status, 405)
})

t.test('a taken port makes the listener fail to start, saying so', async (t) => {
  const first = await startMetricsListener({ host: '127.0.0.1', port: 0, scrape: async () => ({ contentType: 'text/plain', body: '' }) })
  t.teardown(() => first.close())
  await t.rejects(startMetricsListener({ host: '127.0.0.1', port: first.port, scrape: async () => ({ contentType: 'text/plain', body: '' }) }), { code: 'EADDRINUSE' })
})

t.test('the metered runtime counts operations by result and passes everything through', async (t) => {
  const fake = new FakeRuntime()
  fake.addImage('busybox')
  const counted: string[] = []
  const runtime = meterRuntime(fake, (operation, result) => counted.push(`${operation} ${result}`))
  const id = await runtime.create({ name: 'c1', image: 'busybox', labels: { [LABELS.cluster]: 'mt' } })
  await runtime.start(id)
  await t.rejects(runtime.create({ name: 'c2', image: 'missing', labels: {} }))
  t.equal((await runtime.list({ [LABELS.cluster]: 'mt' }))[0]?.state.status, 'running', 'uncounted calls reach the runtime')
  t.same(counted, ['create ok', 'start ok', 'create error'])
})
