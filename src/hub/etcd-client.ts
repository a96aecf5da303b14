// A client for the etcd members a store lives on: the store's deadlines, retries and message
// limits, and TLS from the files --store-ca/--store-cert/--store-key name. The store, the leader
// election and the LMDB-to-etcd migration all connect through here.

import { readFileSync } from 'node:fs'
import { circuitBreaker, ConsecutiveBreaker, ExponentialBackoff, handleWhen, noop, retry } from 'cockatiel'
import { Etcd3, GRPCUnavailableError, type IOptions } from 'etcd3'
import { DEFAULT_STORE_PREFIX, storeUrl, type EtcdTlsFiles } from '../lib/store-url.js'

export interface EtcdClientOptions {
  /** Client URLs of the etcd members (`http://10.0.0.5:2379`). */
  endpoints: string[]
  /** Every key of the store starts with it (default `/bramble/`). */
  prefix?: string
  /** Deadline of each etcd call (default 30 s): without a quorum a write fails instead of hanging. */
  callTimeoutMs?: number
  /** TLS files for https endpoints (`etcds://`). */
  tls?: EtcdTlsFiles
}

const DEFAULT_CALL_TIMEOUT_MS = 30_000

/** A client for the store's members, with the store's deadlines and message limits. */
export function connectEtcd(options: EtcdClientOptions): { client: Etcd3; prefix: string; where: string } {
  const prefix = options.prefix ?? DEFAULT_STORE_PREFIX
  const timeout = options.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS
  // Only a member that cannot be reached (UNAVAILABLE: down, or between leaders) is a reason to
  // try again or, with several members, to rest it and ask another. The client's own defaults also
  // count errors of the whole cluster (a full quota) against a member, and then refuse even reads
  // for seconds; and they let a broken watch stream wait up to 30 s before it resumes.
  const unreachable = handleWhen((error) => error instanceof GRPCUnavailableError)
  const client = new Etcd3({
    hosts: options.endpoints,
    credentials: etcdCredentials(options.tls),
    dialTimeout: timeout,
    // A list of every pod can be large; etcd's own request limit bounds single objects.
    grpcOptions: { 'grpc.max_receive_message_length': 512 * 1024 * 1024 },
    defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }),
    faultHandling: {
      host: () => (options.endpoints.length > 1 ? circuitBreaker(unreachable, { halfOpenAfter: 2000, breaker: new ConsecutiveBreaker(3) }) : noop),
      global: retry(unreachable, { maxAttempts: 3, backoff: new ExponentialBackoff({ initialDelay: 50, maxDelay: 500 }) }),
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2000 }).next(),
    },
  })
  return { client, prefix, where: storeUrl({ kind: 'etcd', endpoints: options.endpoints, prefix, tls: options.tls }) }
}

/**
 * The etcd client's TLS credentials from the files `--store-ca/--store-cert/--store-key` named;
 * undefined for plain http endpoints. An unreadable file is an error that names it.
 */
export function etcdCredentials(tls: EtcdTlsFiles | undefined): IOptions['credentials'] {
  if (tls === undefined) return undefined
  const read = (path: string | undefined, what: string): Buffer | undefined => {
    if (path === undefined) return undefined
    try {
      return readFileSync(path)
    } catch (error) {
      throw new Error(`cannot read etcd's ${what} ${path}: ${(error as Error).message}`)
    }
  }
  // Without a CA file, grpc-js takes null as "Node's default CAs" (etcd3's type wants a Buffer).
  const rootCertificate = read(tls.ca, 'CA certificate') ?? (null as unknown as Buffer)
  return { rootCertificate, certChain: read(tls.cert, 'client certificate'), privateKey: read(tls.key, 'client key') }
}

/** The first key after every key that starts with `prefix`. */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix)
  end[end.length - 1]!++
  return end
}
