// An in-memory Replica for bench/sched's simulated nodes: a thousand LMDB environments (each with
// its own map and a durable commit per desired message) would measure the bench machine's disk,
// not the hub. It follows the same rules as the LMDB replica and passes the Replica contract
// (test/bench/memory-replica.test.ts); "durable" here means "kept for the life of the process",
// which is all a simulated node needs. Nothing in src/ imports it.

import type { DesiredMessage, DesiredObject, ObjectRef } from '../src/api/protocol.js'
import type { KubeObject } from '../src/api/types.js'
import type { DesiredPod } from '../src/agent/desired-pod.js'
import type { ApplyOutcome, Replica } from '../src/agent/replica.js'

/** What a replica holds; it outlives close(), as a directory on disk would. */
interface Held {
  revision: number
  objects: Map<string, DesiredObject>
}

function keyOf(kind: string, namespace: string, name: string): string {
  return `${kind}\0${namespace}\0${name}`
}

function refKey(ref: ObjectRef): string {
  return keyOf(ref.kind, ref.namespace, ref.name)
}

class MemoryReplica implements Replica {
  private view: { pods: KubeObject[]; desired: DesiredPod[] } | undefined
  private closed = false

  constructor(private readonly held: Held) {}

  revision(): number {
    return this.held.revision
  }

  async applyDesired(msg: DesiredMessage): Promise<{ outcome: ApplyOutcome; revision: number }> {
    if (this.closed) throw new Error('the replica is closed')
    const current = this.held.revision
    if (msg.revision < current || (msg.revision === current && current !== 0)) return { outcome: 'stale', revision: current }
    if (!msg.full && msg.since > current) return { outcome: 'gap', revision: current }
    const objects = this.held.objects
    if (msg.full) objects.clear()
    for (const o of msg.upserts) objects.set(keyOf(o.kind, String(o.metadata.namespace), String(o.metadata.name)), structuredClone(o))
    if (!msg.full) {
      for (const ref of msg.deletes) {
        // A uid names one incarnation: a pod deleted and made again under its name stays.
        const held = objects.get(refKey(ref))
        if (held && (!ref.uid || !held.metadata.uid || held.metadata.uid === ref.uid)) objects.delete(refKey(ref))
      }
    }
    this.held.revision = msg.revision
    this.view = undefined
    return { outcome: 'applied', revision: msg.revision }
  }

  pods(): KubeObject[] {
    return this.current().pods
  }

  configMap(namespace: string, name: string): KubeObject | undefined {
    return this.held.objects.get(keyOf('ConfigMap', namespace, name))
  }

  secret(namespace: string, name: string): KubeObject | undefined {
    return this.held.objects.get(keyOf('Secret', namespace, name))
  }

  desiredPods(): DesiredPod[] {
    return this.current().desired
  }

  node(): KubeObject | undefined {
    for (const o of this.held.objects.values()) if (o.kind === 'Node') return o
    return undefined
  }

  persistentVolumes(): KubeObject[] {
    return [...this.held.objects.values()].filter((o) => o.kind === 'PersistentVolume')
  }

  async close(): Promise<void> {
    this.closed = true
  }

  private current(): { pods: KubeObject[]; desired: DesiredPod[] } {
    if (this.view) return this.view
    const pods: KubeObject[] = []
    const configMaps = new Map<string, Record<string, KubeObject>>()
    const secrets = new Map<string, Record<string, KubeObject>>()
    for (const key of [...this.held.objects.keys()].sort()) {
      const o = this.held.objects.get(key)!
      const ns = String(o.metadata.namespace)
      if (o.kind === 'Pod') pods.push(o)
      else if (o.kind !== 'Node' && o.kind !== 'PersistentVolume') {
        const byNs = o.kind === 'ConfigMap' ? configMaps : secrets
        byNs.set(ns, { ...byNs.get(ns), [String(o.metadata.name)]: o })
      }
    }
    const desired = pods.map((pod) => {
      const ns = String(pod.metadata.namespace)
      return { pod, configMaps: configMaps.get(ns) ?? {}, secrets: secrets.get(ns) ?? {} }
    })
    this.view = { pods, desired }
    return this.view
  }
}

/** Opens in-memory replicas by path; opening a path again finds what was applied there. */
export function memoryReplicas(): (path: string) => Promise<Replica> {
  const byPath = new Map<string, Held>()
  return async (path) => {
    let held = byPath.get(path)
    if (!held) byPath.set(path, (held = { revision: 0, objects: new Map() }))
    return new MemoryReplica(held)
  }
}
