// A pull's progress as one line a person reads ("2 of 3 layers, 1.2 MB of 4.5 MB"), folded from the
// engine's per-layer progress messages, and said at most once per interval (a pull on a slow link
// sends many a second; the pod's status and Events need one every few seconds).

import type { PullProgress } from './container-runtime.js'

interface Layer {
  current: number
  total: number
  done: boolean
}

export class PullProgressTracker {
  private readonly layers = new Map<string, Layer>()
  private lastSaidAt: number | undefined

  constructor(private readonly intervalMs: number) {}

  /** Folds one engine message in; returns the line to say when one is due at `now`. */
  update(p: PullProgress, now: number): string | undefined {
    // `Pulling from REPO` carries the tag as its id: not a layer.
    if (p.id && !/^Pulling from /.test(p.status)) {
      const layer = this.layers.get(p.id) ?? { current: 0, total: 0, done: false }
      if (p.status === 'Downloading' && p.total) {
        layer.current = p.current ?? 0
        layer.total = p.total
      } else if (/^(Download complete|Pull complete|Already exists|Extracting|Verifying Checksum)/.test(p.status)) {
        if (layer.total) layer.current = layer.total
        if (p.status === 'Pull complete' || p.status === 'Already exists') layer.done = true
      }
      this.layers.set(p.id, layer)
    }
    if (this.layers.size === 0 || (this.lastSaidAt !== undefined && now - this.lastSaidAt < this.intervalMs)) return undefined
    this.lastSaidAt = now
    return this.text()
  }

  /**
   * `2 of 3 layers, 1.2 MB of 4.5 MB` (the sizes of the layers whose size the engine said), `3
   * layers, 4.5 MB` once all are done, empty before the engine named any layer.
   */
  text(): string {
    const all = [...this.layers.values()]
    if (all.length === 0) return ''
    const done = all.filter((l) => l.done).length
    const current = all.reduce((n, l) => n + l.current, 0)
    const total = all.reduce((n, l) => n + l.total, 0)
    if (done === all.length) return `${all.length} layer${all.length === 1 ? '' : 's'}${total ? `, ${megabytes(total)}` : ''}`
    return `${done} of ${all.length} layers${total ? `, ${megabytes(current)} of ${megabytes(total)}` : ''}`
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`
}
