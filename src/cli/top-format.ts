// The tables of `bramble top nodes|pods`, as kubectl top prints them, from metrics.k8s.io
// NodeMetrics and PodMetrics and the Nodes' allocatable resources. Pure: objects in, text out.

import { Quantity } from '../api/quantity.js'
import type { KubeObject } from '../api/types.js'
import { alignLine, columnWidths } from './table-printer.js'

/** NodeMetrics' annotation with the board's temperature (the hub's metrics-api.ts sets it). */
const ANNOTATION_TEMPERATURE = 'bramble.io/temperature-celsius'

export type TopSort = 'cpu' | 'memory'

/** Cores of a quantity (`12345678n`, `250m`, `2`); 0 when absent or malformed. */
export function coresOf(q: unknown): number {
  const parsed = Quantity.tryParse(q)
  return parsed ? Number(parsed.nanos) / 1e9 : 0
}

/** Bytes of a quantity (`2048Ki`, `1Gi`); 0 when absent or malformed. */
export function bytesOf(q: unknown): number {
  const parsed = Quantity.tryParse(q)
  return parsed ? Number(parsed.nanos) / 1e9 : 0
}

/** `250m`, as kubectl top prints CPU. */
export function milliCores(cores: number): string {
  return `${Math.round(cores * 1000)}m`
}

/** `123Mi`, as kubectl top prints memory. */
export function mebibytes(bytes: number): string {
  return `${Math.floor(bytes / (1024 * 1024))}Mi`
}

function percent(used: number, of: number): string {
  return of > 0 ? `${Math.round((used / of) * 100)}%` : '<unknown>'
}

function render(lines: string[][]): string {
  const widths = columnWidths(lines)
  return lines.map((l) => alignLine(l, widths) + '\n').join('')
}

/**
 * NAME, CPU(cores), CPU(%), MEMORY(bytes), MEMORY(%) and TEMPERATURE for every Node; a node
 * without a recent report shows `<unknown>`, as kubectl does.
 */
export function formatTopNodes(nodes: KubeObject[], metrics: KubeObject[], sort?: TopSort): string {
  const byName = new Map(metrics.map((m) => [m.metadata.name, m]))
  const rows = nodes.map((node) => {
    const m = byName.get(node.metadata.name) as any
    const cpu = coresOf(m?.usage?.cpu)
    const memory = bytesOf(m?.usage?.memory)
    const temperature = m?.metadata?.annotations?.[ANNOTATION_TEMPERATURE]
    const cells = m
      ? [node.metadata.name!, milliCores(cpu), percent(cpu, coresOf(node.status?.allocatable?.cpu)), mebibytes(memory), percent(memory, bytesOf(node.status?.allocatable?.memory)), temperature ? `${temperature}°C` : '<none>']
      : [node.metadata.name!, '<unknown>', '<unknown>', '<unknown>', '<unknown>', '<unknown>']
    return { cells, cpu: m ? cpu : -1, memory: m ? memory : -1 }
  })
  sortRows(rows, sort)
  return render([['NAME', 'CPU(cores)', 'CPU(%)', 'MEMORY(bytes)', 'MEMORY(%)', 'TEMPERATURE'], ...rows.map((r) => r.cells)])
}

/** NAME, CPU(cores), MEMORY(bytes) per pod (NAMESPACE first with `allNamespaces`; one line per container with `containers`). */
export function formatTopPods(metrics: KubeObject[], options: { allNamespaces?: boolean; containers?: boolean; sort?: TopSort } = {}): string {
  const rows = metrics.flatMap((m: any) => {
    const lead = [...(options.allNamespaces ? [m.metadata.namespace] : []), m.metadata.name]
    const containers: any[] = m.containers ?? []
    if (options.containers) return containers.map((c) => row([...lead, c.name], coresOf(c.usage?.cpu), bytesOf(c.usage?.memory)))
    return [row(lead, containers.reduce((n, c) => n + coresOf(c.usage?.cpu), 0), containers.reduce((n, c) => n + bytesOf(c.usage?.memory), 0))]
  })
  sortRows(rows, options.sort)
  const header = [...(options.allNamespaces ? ['NAMESPACE'] : []), ...(options.containers ? ['POD', 'NAME'] : ['NAME']), 'CPU(cores)', 'MEMORY(bytes)']
  return render([header, ...rows.map((r) => r.cells)])
}

function row(lead: string[], cpu: number, memory: number) {
  return { cells: [...lead, milliCores(cpu), mebibytes(memory)], cpu, memory }
}

/** Largest first, as kubectl's --sort-by; otherwise the order given. */
function sortRows(rows: Array<{ cpu: number; memory: number }>, sort: TopSort | undefined): void {
  if (sort) rows.sort((a, b) => b[sort] - a[sort])
}
