// The process's own CPU time and memory as Prometheus metrics, under the names Prometheus' own
// clients use (process_cpu_seconds_total, process_resident_memory_bytes), read when scraped.
// prom-client's collectDefaultMetrics would also start event-loop and GC monitors: too much for
// the agent's budget on a Pi.

import { Counter, Gauge, type Registry } from 'prom-client'

export function registerProcessMetrics(registry: Registry): void {
  let reportedCpuSeconds = 0
  new Counter({
    name: 'process_cpu_seconds_total',
    help: 'Total user and system CPU time spent, in seconds.',
    registers: [registry],
    collect() {
      const { user, system } = process.cpuUsage()
      const seconds = (user + system) / 1e6
      this.inc(Math.max(0, seconds - reportedCpuSeconds))
      reportedCpuSeconds = Math.max(reportedCpuSeconds, seconds)
    },
  })
  new Gauge({
    name: 'process_resident_memory_bytes',
    help: 'Resident memory size, in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage.rss())
    },
  })
  new Gauge({
    name: 'nodejs_heap_used_bytes',
    help: 'V8 heap in use, in bytes.',
    registers: [registry],
    collect() {
      this.set(process.memoryUsage().heapUsed)
    },
  })
}
