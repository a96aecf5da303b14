// Why a TLS connection to the hub failed, in one sentence a person can act on. A Pi has no
// real-time clock and may boot offline with a time far in the past: then every certificate looks
// "not yet valid", and the useful sentence names the clock skew (from the hub's HTTP Date header),
// not the TLS error. A peer whose certificate the pinned CA did not sign is a different cluster (or a
// replaced CA), never worth retrying quietly.

import { request } from 'node:https'

export type TlsFailureKind = 'not-yet-valid' | 'expired' | 'wrong-ca' | 'wrong-name'

const KIND_OF_CODE: Record<string, TlsFailureKind> = {
  CERT_NOT_YET_VALID: 'not-yet-valid',
  CERT_HAS_EXPIRED: 'expired',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'wrong-ca',
  UNABLE_TO_GET_ISSUER_CERT: 'wrong-ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'wrong-ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'wrong-ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'wrong-ca',
  CERT_SIGNATURE_FAILURE: 'wrong-ca',
  ERR_TLS_CERT_ALTNAME_INVALID: 'wrong-name',
}

/** Clocks further apart than this are worth a sentence (DESIGN: the check warns past a minute). */
export const CLOCK_SKEW_TOLERANCE_MS = 60_000

/** The kind of certificate failure behind an error (looking through its causes), or undefined. */
export function tlsFailureKind(err: unknown): TlsFailureKind | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && KIND_OF_CODE[e.code]) return KIND_OF_CODE[e.code]
  }
  return undefined
}

/** How far the hub's clock is ahead of this node's (negative: behind), from its HTTP Date header. */
export function clockSkewMs(hubDateHeader: string | undefined, localNowMs: number): number | undefined {
  const hubMs = hubDateHeader ? Date.parse(hubDateHeader) : NaN
  return Number.isFinite(hubMs) ? hubMs - localNowMs : undefined
}

/** `3 days 4 h`, `12 min`, `45 s`: a duration in its two largest units, rounded (the Date header has whole seconds). */
export function describeDuration(ms: number): string {
  const abs = Math.abs(ms)
  if (abs >= 86_400_000 - 1_800_000) {
    const hoursTotal = Math.round(abs / 3_600_000)
    const days = Math.floor(hoursTotal / 24)
    const hours = hoursTotal % 24
    return `${days} day${days === 1 ? '' : 's'}${hours ? ` ${hours} h` : ''}`
  }
  if (abs >= 3_600_000 - 30_000) {
    const minutesTotal = Math.round(abs / 60_000)
    const minutes = minutesTotal % 60
    return `${Math.floor(minutesTotal / 60)} h${minutes ? ` ${minutes} min` : ''}`
  }
  if (abs >= 59_500) return `${Math.round(abs / 60_000)} min`
  return `${Math.round(abs / 1000)} s`
}

/** One sentence on this node's clock against the hub's, or undefined when they agree within a minute. */
export function clockSkewSentence(skewMs: number | undefined, localNowMs: number): string | undefined {
  if (skewMs === undefined || Math.abs(skewMs) <= CLOCK_SKEW_TOLERANCE_MS) return undefined
  const direction = skewMs > 0 ? 'behind' : 'ahead of'
  return (
    `this node's clock is ${describeDuration(skewMs)} ${direction} the hub's (node: ${new Date(localNowMs).toISOString()}, hub: ${new Date(localNowMs + skewMs).toISOString()}); ` +
    'set the time (enable NTP, e.g. `timedatectl set-ntp true`, or `date -s`) and the connection succeeds by itself'
  )
}

export interface TlsFailureContext {
  /** What was being reached, e.g. `the hub at 10.0.0.1:6443` or `the MQTT broker at mqtts://...`. */
  peer: string
  localNowMs: number
  /** From clockSkewMs, when the hub's Date header could be read. */
  skewMs?: number
}

/** The sentence for a certificate failure, or undefined when the error is not one. */
export function tlsFailureSentence(err: unknown, context: TlsFailureContext): string | undefined {
  const kind = tlsFailureKind(err)
  if (!kind) return undefined
  const { peer } = context
  if (kind === 'wrong-ca') {
    return `${peer} presented a certificate the cluster CA pinned at join did not sign: it is not this cluster's hub, or the hub's CA was replaced; check the address, or join again with a new token`
  }
  if (kind === 'wrong-name') return `${peer} presented a certificate that does not name the address used to reach it; use the hub's advertised address (--advertise on the hub)`
  const skew = clockSkewSentence(context.skewMs, context.localNowMs)
  const says = kind === 'not-yet-valid' ? 'not yet valid' : 'expired'
  if (skew) return `TLS to ${peer} failed because its certificate looks ${says}: ${skew}`
  if (kind === 'not-yet-valid') {
    return `TLS to ${peer} failed because its certificate is not yet valid by this node's clock (${new Date(context.localNowMs).toISOString()}); this node's clock is probably wrong: set the time (enable NTP)`
  }
  return `TLS to ${peer} failed because its certificate has expired (this node's clock says ${new Date(context.localNowMs).toISOString()}); restart the hub, which renews its serving certificate, or check \`bramble check\` on the hub`
}

/**
 * The hub's Date header, read without trusting the connection: it only serves to name a clock skew
 * in a message, nothing is taken from it. Undefined when the hub does not answer in time.
 */
export function fetchHubDate(apiServer: string, timeoutMs = 5000): Promise<string | undefined> {
  return new Promise((resolve) => {
    let url: URL
    try {
      url = new URL('/version', apiServer)
    } catch {
      return resolve(undefined)
    }
    const req = request(url, { method: 'HEAD', rejectUnauthorized: false, timeout: timeoutMs, agent: false }, (res) => {
      res.resume()
      resolve(typeof res.headers.date === 'string' ? res.headers.date : undefined)
    })
    req.on('timeout', () => req.destroy())
    req.on('error', () => resolve(undefined))
    req.end()
  })
}

/** tlsFailureSentence with the skew measured against the hub's API now; undefined when `err` is no certificate failure. */
export async function explainTlsFailure(err: unknown, peer: string, apiServer: string, nowMs: () => number): Promise<string | undefined> {
  const kind = tlsFailureKind(err)
  if (!kind) return undefined
  const skewMs = kind === 'not-yet-valid' || kind === 'expired' ? clockSkewMs(await fetchHubDate(apiServer), nowMs()) : undefined
  return tlsFailureSentence(err, { peer, localNowMs: nowMs(), skewMs })
}
