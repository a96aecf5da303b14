// The agent's own copy of its desired state: the pods bound to this node and the ConfigMaps and
// Secrets they use, at a revision. It lives in an LMDB environment of its own (DATA_DIR/agent/
// replica), so with the hub gone, and after a reboot, the agent still knows what to run. A desired
// message is applied with its revision in one transaction, durable before applyDesired resolves:
// only then may the agent acknowledge it. Secrets are sealed at rest (AES-256-GCM, the replica key
// as associated data) with the agent's own key file, DATA_DIR/agent/secrets.key by default.

import { dirname, join } from 'node:path'
import { open, type RootDatabase } from 'lmdb'
import type { DesiredMessage, DesiredObject, ObjectRef } from '../api/protocol.js'
import type { KubeObject } from '../api/types.js'
import type { DesiredPod } from './desired-pod.js'
import { ensureOwnerOnlyDir, restrictFilesIn } from '../lib/owner-only.js'
import { SecretKeyring } from '../lib/secret-keyring.js'
import { closeCompacted, refuseIfOpenElsewhere } from '../lib/lmdb-files.js'
import { explainCommitFailure, LMDB_WRITE_OPTIONS } from '../lib/lmdb-commit.js'
import { ReplicaWriteError } from './errors.js'

/**
 * - `applied`: stored; the replica is now at `revision`.
 * - `stale`: the message is not newer than the replica (a redelivery); nothing changed.
 * - `gap`: the message starts after the replica's revision: something was missed; ask for a sync.
 */
export type ApplyOutcome = 'applied' | 'stale' | 'gap'

export interface Replica {
  /** The revision of the desired state held; 0 when nothing was received yet. */
  revision(): number
  applyDesired(msg: DesiredMessage): Promise<{ outcome: ApplyOutcome; revision: number }>
  pods(): KubeObject[]
  configMap(namespace: string, name: string): KubeObject | undefined
  secret(namespace: string, name: string): KubeObject | undefined
  /** Each pod with the ConfigMaps and Secrets of its namespace. */
  desiredPods(): DesiredPod[]
  /** This node's own Node as the hub sent it (name, uid, spec with its pod subnet); undefined until then. */
  node(): KubeObject | undefined
  /** The PersistentVolumes pinned to this node (their directories live here). */
  persistentVolumes(): KubeObject[]
  close(): Promise<void>
}

type Kind = DesiredObject['kind']
interface ReplicaView {
  pods: KubeObject[]
  desired: DesiredPod[]
  node?: KubeObject
  volumes: KubeObject[]
  revision: number
}
const REVISION_KEY = 'revision'
const OBJECT_PREFIX = 'obj\0'

function objectKey(kind: Kind, namespace: string, name: string): string {
  return `${OBJECT_PREFIX}${kind}\0${namespace}\0${name}`
}

function keyOf(o: DesiredObject): string {
  return objectKey(o.kind, String(o.metadata.namespace), String(o.metadata.name))
}

export class LmdbReplica implements Replica {
  /** What the replica holds, read once per applied message: a read marks LMDB's lock file, which then goes to disk. */
  private cache: ReplicaView | undefined

  private constructor(
    private readonly db: RootDatabase<any, string>,
    private readonly keyring: SecretKeyring,
    private readonly path: string,
  ) {}

  /**
   * Opens (or creates) the replica in directory `path`; its Secrets are sealed with the key file at
   * `keyPath` (made, mode 0600, when missing), by default `secrets.key` beside the directory.
   */
  static async open(path: string, keyPath = join(dirname(path), 'secrets.key')): Promise<LmdbReplica> {
    const keyring = SecretKeyring.openOrCreate(keyPath)
    ensureOwnerOnlyDir(path)
    const replica = new LmdbReplica(openEnvironment(path), keyring, path)
    let sealed: number
    try {
      sealed = await replica.checkSecrets()
    } catch (err) {
      await replica.close()
      throw err
    }
    if (sealed === 0) return replica
    // The plaintext just overwritten would stay in a freed page.
    await closeCompacted(replica.db, path)
    return new LmdbReplica(openEnvironment(path), keyring, path)
  }

  static async rotateKey(path: string, keyPath: string): Promise<{ newKeyId: string; droppedKeyIds: string[]; rewritten: number }> {
    const keyring = SecretKeyring.open(keyPath)
    const replica = new LmdbReplica(openEnvironment(path), keyring, path)
    const db = replica.db
    let compacted = false
    try {
      refuseIfOpenElsewhere(db, `the agent's replica at ${path}`, 'agent')
      // Every Secret must open before the key file changes.
      const held = replica.secretEntries().map(({ key, value }) => ({ key, object: replica.unseal(key, value) }))
      const newKeyId = keyring.keyIds.length > 1 ? keyring.primaryId : keyring.addPrimary()
      await db.transaction(() => {
        for (const { key, object } of held) db.putSync(key, replica.seal(key, object))
      })
      compacted = true
      await closeCompacted(db, path)
      return { newKeyId, droppedKeyIds: keyring.dropAllButPrimary(), rewritten: held.length }
    } finally {
      if (!compacted) await db.close()
    }
  }

  revision(): number {
    return this.view().revision
  }

  async applyDesired(msg: DesiredMessage): Promise<{ outcome: ApplyOutcome; revision: number }> {
    const current = this.revision()
    if (msg.revision < current || (msg.revision === current && current !== 0)) return { outcome: 'stale', revision: current }
    if (!msg.full && msg.since > current) return { outcome: 'gap', revision: current }
    const written = this.db.transaction(() => {
      if (msg.full) {
        for (const key of this.db.getKeys({ start: OBJECT_PREFIX, end: 'obj\x01' })) this.db.removeSync(key)
      }
      for (const o of msg.upserts) this.db.putSync(keyOf(o), this.seal(keyOf(o), o))
      if (!msg.full) {
        for (const ref of msg.deletes) {
          // A uid names one incarnation: a pod deleted and made again under its name stays.
          const held = this.db.get(refKey(ref)) as DesiredObject | undefined
          if (held && (!ref.uid || !held.metadata.uid || held.metadata.uid === ref.uid)) this.db.removeSync(refKey(ref))
        }
      }
      this.db.putSync(REVISION_KEY, msg.revision)
    })
    try {
      await written
    } catch (err) {
      // Nothing of the message was stored: the replica stays at its revision, readable as it was.
      throw new ReplicaWriteError(this.path, msg.revision, await explainCommitFailure(err, this.path))
    }
    this.cache = undefined
    return { outcome: 'applied', revision: msg.revision }
  }

  pods(): KubeObject[] {
    return this.view().pods
  }

  configMap(namespace: string, name: string): KubeObject | undefined {
    return this.db.get(objectKey('ConfigMap', namespace, name))
  }

  secret(namespace: string, name: string): KubeObject | undefined {
    const key = objectKey('Secret', namespace, name)
    const stored = this.db.get(key) as DesiredObject | undefined
    return stored && this.unseal(key, stored)
  }

  desiredPods(): DesiredPod[] {
    return this.view().desired
  }

  node(): KubeObject | undefined {
    return this.view().node
  }

  persistentVolumes(): KubeObject[] {
    return this.view().volumes
  }

  async close(): Promise<void> {
    await this.db.close()
  }

  /**
   * Pods with their config, the Node and the revision, read once per applied message: the
   * reconciler and the pod network ask every resync, and each LMDB read transaction writes its
   * reader slot in lock.mdb, a page the kernel then writes back to the SD card.
   */
  private view(): ReplicaView {
    if (this.cache) return this.cache
    const pods: KubeObject[] = []
    let node: KubeObject | undefined
    const volumes: KubeObject[] = []
    const configMaps = new Map<string, Record<string, KubeObject>>()
    const secrets = new Map<string, Record<string, KubeObject>>()
    for (const { key, value } of this.db.getRange({ start: OBJECT_PREFIX, end: 'obj\x01' })) {
      const o = this.unseal(key, value as DesiredObject)
      const ns = String(o.metadata.namespace)
      if (o.kind === 'Pod') pods.push(o)
      else if (o.kind === 'Node') node = o
      else if (o.kind === 'PersistentVolume') volumes.push(o)
      else {
        const byNs = o.kind === 'ConfigMap' ? configMaps : secrets
        const entry = byNs.get(ns) ?? {}
        entry[String(o.metadata.name)] = o
        byNs.set(ns, entry)
      }
    }
    const desired = pods.map((pod) => {
      const ns = String(pod.metadata.namespace)
      const claims = Object.fromEntries(volumes.filter((v) => v.spec?.claimRef?.namespace === ns).map((v) => [String(v.spec.claimRef.name), v]))
      return { pod, configMaps: configMaps.get(ns) ?? {}, secrets: secrets.get(ns) ?? {}, claims }
    })
    const revision = (this.db.get(REVISION_KEY) as number | undefined) ?? 0
    this.cache = { pods, desired, revision, volumes, ...(node ? { node } : {}) }
    return this.cache
  }

  /** A Secret's stored form: what deletes compare (kind, name, namespace, uid) in the clear, the rest sealed. */
  private seal(key: string, o: DesiredObject): DesiredObject {
    if (o.kind !== 'Secret') return o
    const { name, namespace, uid } = o.metadata
    return { apiVersion: o.apiVersion, kind: o.kind, metadata: { name, namespace, uid }, sealed: this.keyring.seal(JSON.stringify(o), key) }
  }

  private unseal(key: string, stored: DesiredObject): DesiredObject {
    if (!SecretKeyring.isSealed(stored.sealed)) return stored
    return JSON.parse(this.keyring.unseal(stored.sealed, key, `Secret ${stored.metadata.namespace}/${stored.metadata.name} in the replica`)) as DesiredObject
  }

  private secretEntries(): Array<{ key: string; value: DesiredObject }> {
    const start = objectKey('Secret', '', '')
    return [...this.db.getRange({ start, end: `${start.slice(0, -2)}\x01` })] as Array<{ key: string; value: DesiredObject }>
  }

  /**
   * Opens every Secret once, so a wrong or lost key file stops the agent's start with an error
   * naming the file, and seals Secrets a replica of an earlier version kept in the clear (returns
   * how many).
   */
  private async checkSecrets(): Promise<number> {
    const held = this.secretEntries()
    for (const { key, value } of held) this.unseal(key, value)
    const plain = held.filter(({ value }) => !SecretKeyring.isSealed(value.sealed))
    if (plain.length === 0) return 0
    await this.db.transaction(() => {
      for (const { key, value } of plain) this.db.putSync(key, this.seal(key, value))
    })
    return plain.length
  }
}

/**
 * With the agent stopped: a new key for the replica at `path`, every Secret sealed again with it
 * (one transaction), a compacted copy of the file, and only then the old key dropped. A run cut
 * short leaves both keys, which the agent reads; the next run finishes it.
 */
export function rotateReplicaKey(path: string, keyPath = join(dirname(path), 'secrets.key')): Promise<{ newKeyId: string; droppedKeyIds: string[]; rewritten: number }> {
  return LmdbReplica.rotateKey(path, keyPath)
}

function openEnvironment(path: string): RootDatabase<any, string> {
  const db = open<any, string>({
    path,
    // Off, so a commit is on disk before its promise resolves: an ack must never run ahead
    // of the data it acknowledges.
    overlappingSync: false,
    noSync: false,
    compression: false,
    ...LMDB_WRITE_OPTIONS,
  })
  restrictFilesIn(path)
  return db
}

function refKey(ref: ObjectRef): string {
  return objectKey(ref.kind, ref.namespace, ref.name)
}

export function openReplica(path: string, keyPath?: string): Promise<LmdbReplica> {
  return LmdbReplica.open(path, keyPath)
}
