// An informer: a list-then-watch cache of one kind that controllers read instead of the store,
// with change callbacks that only say "look again at this key" (level-triggered, STYLE.md §1).

import type { KindInfo } from '../api/kinds.js'
import type { KubeObject } from '../api/types.js'
import { systemClock, type Clock } from '../lib/clock.js'
import type { Registry } from './registry.js'
import type { StoreEvent, Watch } from './store.js'

export type ChangeHandler = (type: StoreEvent['type'], object: KubeObject, previous: KubeObject | undefined) => void

export function objectKey(o: KubeObject): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name}` : o.metadata.name!
}

export class Informer {
  private readonly cache = new Map<string, KubeObject>()
  private readonly handlers: ChangeHandler[] = []
  private watch?: Watch
  private synced = false
  private stopped = false
  /** The revision the cache reflects: the list's, then each applied event's. */
  private revision = 0

  constructor(
    private readonly registry: Registry,
    readonly info: KindInfo,
    /** Paces another list when one fails after the watch ended. */
    private readonly clock: Clock = systemClock,
  ) {}

  onChange(handler: ChangeHandler): void {
    this.handlers.push(handler)
  }

  async start(): Promise<void> {
    const { items, revision } = await this.registry.list(this.info, undefined)
    for (const item of items) this.cache.set(objectKey(item), item)
    this.revision = revision
    this.synced = true
    for (const item of items) for (const h of this.handlers) h('ADDED', item, undefined)
    this.watchFrom(revision)
  }

  stop(): void {
    this.stopped = true
    this.watch?.stop()
  }

  get(key: string): KubeObject | undefined {
    return this.cache.get(key)
  }

  list(): KubeObject[] {
    return [...this.cache.values()]
  }

  get hasSynced(): boolean {
    return this.synced
  }

  /**
   * Records a write this process just made, before its watch event arrives, so decisions taken
   * in between (two pods bound to one node's last free CPU) see it. Older revisions never win, and
   * a write the watch already passed is not brought back: if its key is absent, it was deleted
   * since (otherwise a controller would go on acting for an object that is gone).
   */
  assume(object: KubeObject): void {
    const key = objectKey(object)
    const current = this.cache.get(key)
    const revision = Number(object.metadata.resourceVersion)
    if (current ? Number(current.metadata.resourceVersion) <= revision : revision > this.revision) this.cache.set(key, object)
  }

  private watchFrom(revision: number): void {
    // Read-only: what the cache holds is never changed in place (controllers copy before they write),
    // so informers of one kind share each event's object instead of each getting a copy.
    this.watch = this.registry.watch(this.info, undefined, revision, (event) => this.apply(event), { readOnly: true, onEnd: () => void this.relist() })
  }

  /**
   * The watch ended under the cache (its history compacted away, on a store shared by several
   * hubs): list again, hand the handlers what changed as events, and watch from the new list.
   * An object assumed at a revision past the list's is newer than it and stays.
   */
  private async relist(): Promise<void> {
    while (!this.stopped) {
      let listed: { items: KubeObject[]; revision: number }
      try {
        listed = await this.registry.list(this.info, undefined)
      } catch {
        await new Promise<void>((resolve) => this.clock.setTimeout(resolve, 1000))
        continue
      }
      if (this.stopped) return
      const { items, revision } = listed
      const listedKeys = new Set<string>()
      for (const item of items) {
        const key = objectKey(item)
        listedKeys.add(key)
        const previous = this.cache.get(key)
        if (previous && Number(previous.metadata.resourceVersion) >= Number(item.metadata.resourceVersion)) continue
        this.cache.set(key, item)
        for (const h of this.handlers) h(previous ? 'MODIFIED' : 'ADDED', item, previous)
      }
      for (const [key, previous] of [...this.cache]) {
        if (listedKeys.has(key) || Number(previous.metadata.resourceVersion) > revision) continue
        this.cache.delete(key)
        for (const h of this.handlers) h('DELETED', previous, previous)
      }
      this.revision = Math.max(this.revision, revision)
      this.watchFrom(revision)
      return
    }
  }

  private apply(event: StoreEvent): void {
    const key = objectKey(event.object)
    const previous = this.cache.get(key)
    this.revision = Math.max(this.revision, event.revision)
    if (event.type === 'DELETED') this.cache.delete(key)
    else if (!previous || Number(previous.metadata.resourceVersion) <= event.revision) this.cache.set(key, event.object)
    for (const h of this.handlers) h(event.type, event.object, previous)
  }
}
