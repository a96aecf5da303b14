// The embedded broker's session store: Aedes' own in-memory one, with retained messages kept in a
// tree of topic levels. Aedes' store tests every retained topic against each new subscription's
// filter; every node keeps a retained presence message, so a fleet of N nodes joining (or
// reconnecting) made N² topic matches, most of the hub's CPU while 10,000 nodes joined. In the
// tree a subscription walks only the branches its filter names.

import { createRequire } from 'node:module'
import { Readable } from 'node:stream'

/** What Aedes stores of a retained message (an aedes-packet). */
export interface RetainedPacket {
  topic: string
  payload: Buffer
  [field: string]: unknown
}

interface Level {
  children: Map<string, Level>
  packet?: RetainedPacket
}

/** Retained messages by topic; `match` finds those an MQTT topic filter selects. */
export class RetainedIndex {
  private readonly root: Level = { children: new Map() }

  /** Keeps `packet` as its topic's retained message; an empty payload clears it (MQTT 3.3.1.3). */
  store(packet: RetainedPacket): void {
    const names = packet.topic.split('/')
    if (packet.payload.length === 0) return this.remove(this.root, names, 0)
    let level = this.root
    for (const name of names) {
      let next = level.children.get(name)
      if (!next) level.children.set(name, (next = { children: new Map() }))
      level = next
    }
    level.packet = { ...packet }
  }

  /** The retained messages on topics `filter` matches (`+` one level, `#` this level and below). */
  *match(filter: string): Generator<RetainedPacket> {
    yield* this.walk(this.root, filter.split('/'), 0)
  }

  private *walk(level: Level, filter: string[], i: number): Generator<RetainedPacket> {
    if (i === filter.length) {
      if (level.packet) yield level.packet
      return
    }
    const name = filter[i]!
    if (name === '#') {
      // `a/#` matches `a` too.
      if (level.packet) yield level.packet
      for (const [childName, child] of level.children) if (!hiddenFromWildcard(i, childName)) yield* this.everything(child)
      return
    }
    if (name === '+') {
      for (const [childName, child] of level.children) if (!hiddenFromWildcard(i, childName)) yield* this.walk(child, filter, i + 1)
      return
    }
    const child = level.children.get(name)
    if (child) yield* this.walk(child, filter, i + 1)
  }

  private *everything(level: Level): Generator<RetainedPacket> {
    if (level.packet) yield level.packet
    for (const child of level.children.values()) yield* this.everything(child)
  }

  /** Clears the packet at `names` and drops the levels left empty on the way back. */
  private remove(level: Level, names: string[], i: number): void {
    if (i === names.length) {
      delete level.packet
      return
    }
    const child = level.children.get(names[i]!)
    if (!child) return
    this.remove(child, names, i + 1)
    if (!child.packet && child.children.size === 0) level.children.delete(names[i]!)
  }
}

/** MQTT-4.7.2-1: a filter starting with a wildcard does not match topics starting with `$`. */
function hiddenFromWildcard(depth: number, name: string): boolean {
  return depth === 0 && name.startsWith('$')
}

/** The parts of Aedes' in-memory store this file replaces. */
interface AedesMemoryStore {
  storeRetained(packet: RetainedPacket): Promise<void>
  createRetainedStream(pattern: string): Readable
  createRetainedStreamCombi(patterns: string[]): Readable
}

// Aedes' in-memory store (a dependency of Aedes, without type declarations for this file).
const AedesMemory = createRequire(import.meta.url)('aedes-persistence/asyncPersistence.js') as new () => AedesMemoryStore

/** Aedes' in-memory store with retained messages in a RetainedIndex; for `Aedes.createBroker({ persistence })`. */
export class IndexedMemoryPersistence extends AedesMemory {
  private readonly retained = new RetainedIndex()

  override async storeRetained(packet: RetainedPacket): Promise<void> {
    this.retained.store(packet)
  }

  override createRetainedStream(pattern: string): Readable {
    return Readable.from(this.retained.match(pattern))
  }

  override createRetainedStreamCombi(patterns: string[]): Readable {
    const retained = this.retained
    return Readable.from(
      (function* () {
        for (const pattern of patterns) yield* retained.match(pattern)
      })(),
    )
  }
}
