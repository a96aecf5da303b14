// Which hub leads, when several share one etcd cluster: an etcd lease kept alive, and an election
// key `PREFIX leader` created only if absent and bound to that lease. The hub that creates it leads
// until its lease ends (it stopped, crashed, or lost etcd for a TTL); the others try again every
// second. A term is the key's create revision: writes made for the term are fenced by it
// (etcd-store.ts), so a deposed leader that has not noticed yet cannot write. With LMDB there is one
// hub, and it always leads.

import { Etcd3, type Lease } from 'etcd3'
import type { Clock } from '../lib/clock.js'
import type { Logger } from '../lib/logger.js'
import type { EtcdTlsFiles } from '../lib/store-url.js'
import { etcdCredentials } from './etcd-client.js'
import type { EtcdFence } from './etcd-store.js'

export const DEFAULT_LEADER_LEASE_MS = 5_000
const DEFAULT_RETRY_MS = 1_000

/** What a hub does when it wins or loses leadership. */
export interface LeaderWork {
  /** Starts the leader's work; `fence` is undefined for the single-hub (LMDB) case. */
  elected(fence: EtcdFence | undefined): Promise<void>
  /** Stops it, at once: the term is over (or the hub is stopping). */
  deposed(): Promise<void>
}

export interface Election {
  /** True while this hub holds a term it has confirmed within the lease's TTL. */
  readonly leading: boolean
  /** Ends the work, resigns (the key is deleted, so another hub takes over at once) and disconnects. */
  close(): Promise<void>
}

/** The single hub on LMDB: elected at once, for good. */
export async function soleLeader(work: LeaderWork): Promise<Election> {
  await work.elected(undefined)
  let leading = true
  return {
    get leading() {
      return leading
    },
    async close() {
      if (!leading) return
      leading = false
      await work.deposed()
    },
  }
}

export interface EtcdElectionOptions {
  endpoints: string[]
  /** TLS files for https endpoints, as the store has them. */
  tls?: EtcdTlsFiles
  /** The store's key prefix; the election key is `PREFIX leader`. */
  prefix: string
  /** Written into the key: who leads (the hub's advertised API URL). */
  candidate: string
  /** The lease's TTL: a dead leader is replaced this long after its last keepalive. */
  leaseMs?: number
  /** How often a follower tries to take the key, and a leader checks it still holds it. */
  retryMs?: number
  clock: Clock
  logger: Logger
}

/** Runs for leader until closed: `work.elected` when this hub wins a term, `work.deposed` when it ends. */
export function runEtcdElection(options: EtcdElectionOptions, work: LeaderWork): Election {
  return new EtcdElection(options, work)
}

class EtcdElection implements Election {
  private readonly client: Etcd3
  private readonly key: string
  private readonly leaseMs: number
  private readonly retryMs: number
  private readonly log: Logger
  private lease: Lease | undefined
  private fence: EtcdFence | undefined
  /** When (monotonic ms) etcd last told us the lease is alive (a keepalive or a check of the key). */
  private confirmedAt = 0
  private closed = false
  private wake: (() => void) | undefined
  private readonly loop: Promise<void>

  constructor(
    private readonly o: EtcdElectionOptions,
    private readonly work: LeaderWork,
  ) {
    this.key = `${o.prefix}leader`
    this.leaseMs = Math.max(2_000, o.leaseMs ?? DEFAULT_LEADER_LEASE_MS)
    this.retryMs = o.retryMs ?? DEFAULT_RETRY_MS
    this.log = o.logger.child({ component: 'leader-election', key: this.key })
    const timeout = Math.max(1_000, this.retryMs)
    this.client = new Etcd3({ hosts: o.endpoints, credentials: etcdCredentials(o.tls), dialTimeout: timeout, defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }) })
    this.loop = this.run()
  }

  get leading(): boolean {
    return this.fence !== undefined && this.o.clock.monotonic() - this.confirmedAt < this.leaseMs
  }

  async close(): Promise<void> {
    this.closed = true
    this.wake?.()
    await this.loop
    this.client.close()
  }

  private async run(): Promise<void> {
    while (!this.closed) {
      try {
        const fence = await this.campaign()
        if (fence === undefined) continue
        this.fence = fence
        this.log.info({ term: fence.createRevision }, 'this hub leads')
        try {
          await this.work.elected(fence)
          await this.holdTerm(fence)
        } finally {
          this.fence = undefined
          await this.work.deposed().catch((err: unknown) => this.log.error({ err }, 'stopping the leader work failed'))
          // Also when the work failed to start: another hub need not wait out the lease.
          await this.resign(fence)
        }
        if (!this.closed) this.log.warn({ term: fence.createRevision }, 'this hub no longer leads; its work is stopped and it runs for leader again')
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'leader election or the leader work failed; trying again')
        await this.sleep(this.retryMs)
      } finally {
        this.lease?.release()
        this.lease = undefined
      }
    }
  }

  /** A new lease, then the key, tried every retryMs until taken (a fence) or closed (undefined). */
  private async campaign(): Promise<EtcdFence | undefined> {
    const lease = (this.lease = this.client.lease(Math.ceil(this.leaseMs / 1000)))
    lease.on('keepaliveSucceeded', () => (this.confirmedAt = this.o.clock.monotonic()))
    let lost = false
    lease.on('lost', () => (lost = true))
    const leaseId = await lease.grant()
    const key = Buffer.from(this.key)
    while (!this.closed && !lost) {
      const outcome = await this.client.kv.txn({
        compare: [{ key, target: 'Create', result: 'Equal', create_revision: 0 }],
        success: [{ request_put: { key, value: Buffer.from(this.o.candidate), lease: leaseId } }],
        failure: [{ request_range: { key } }],
      })
      if (outcome.succeeded) {
        this.confirmedAt = this.o.clock.monotonic()
        return { key: this.key, createRevision: outcome.header.revision }
      }
      const holder = outcome.responses[0]?.response_range?.kvs[0]?.value.toString()
      this.log.debug({ leader: holder }, 'another hub leads')
      await this.sleep(this.retryMs)
    }
    return undefined
  }

  /** Returns when the term ends: the key is gone or another's, or etcd has not confirmed the lease for a TTL. */
  private async holdTerm(fence: EtcdFence): Promise<void> {
    while (!this.closed) {
      await this.sleep(this.retryMs)
      try {
        const read = await this.client.kv.range({ key: Buffer.from(this.key) })
        if (read.kvs[0]?.create_revision !== fence.createRevision) return
        this.confirmedAt = Math.max(this.confirmedAt, this.o.clock.monotonic())
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'could not check the election key')
      }
      // Past a TTL without word from etcd the lease may have expired there: step down first.
      if (this.o.clock.monotonic() - this.confirmedAt >= this.leaseMs) return
    }
  }

  /** Deletes the key if it is still this term's (a no-op once the term is over), so a follower need not wait out the lease. */
  private async resign(fence: EtcdFence): Promise<void> {
    const key = Buffer.from(this.key)
    try {
      await this.client.kv.txn({ compare: [{ key, target: 'Create', result: 'Equal', create_revision: fence.createRevision }], success: [{ request_delete_range: { key } }] })
      await this.lease?.revoke()
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'could not resign; another hub takes over when the lease ends')
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      function done() {
        clearTimeout(timer)
        resolve()
      }
      this.wake = done
    })
  }
}
