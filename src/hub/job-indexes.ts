// Completion indexes of Indexed Jobs: which index a pod works on, and the compact list form
// (`0-2,5`) Kubernetes writes to status.completedIndexes.

import type { KubeObject } from '../api/types.js'

export const COMPLETION_INDEX_ANNOTATION = 'batch.kubernetes.io/job-completion-index'

/** The pod's completion index, or undefined when it has none (or a malformed one). */
export function completionIndexOf(pod: KubeObject): number | undefined {
  const raw = pod.metadata.annotations?.[COMPLETION_INDEX_ANNOTATION]
  return raw !== undefined && /^\d+$/.test(raw) ? Number(raw) : undefined
}

/** `0-2,5` → {0, 1, 2, 5}; parts that are not indexes are skipped. */
export function parseIndexes(list: unknown): Set<number> {
  const out = new Set<number>()
  if (typeof list !== 'string') return out
  for (const part of list.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part.trim())
    if (!m) continue
    const from = Number(m[1])
    const to = m[2] === undefined ? from : Number(m[2])
    for (let i = from; i <= to && i - from < 100_000; i++) out.add(i)
  }
  return out
}

/** {0, 1, 2, 5} → `0-2,5` */
export function formatIndexes(indexes: Set<number>): string {
  const sorted = [...indexes].sort((a, b) => a - b)
  const parts: string[] = []
  for (let i = 0; i < sorted.length; ) {
    let j = i
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j] + 1) j++
    parts.push(j === i ? String(sorted[i]) : `${sorted[i]}-${sorted[j]}`)
    i = j + 1
  }
  return parts.join(',')
}
