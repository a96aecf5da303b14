// When a certificate is due for renewal: shared by the hub, which renews its serving certificate,
// and `bramble check`, which warns about one the hub should have renewed by now.

import type { X509Certificate } from 'node:crypto'

/** A certificate is renewed once less than this part of its life remains... */
const RENEW_FRACTION = 1 / 3
/** ...or less than 30 days, whichever comes first. */
const RENEW_MIN_MS = 30 * 86_400_000

/** The CA is never renewed silently (agents pin it); its expiry is warned about this far ahead. */
export const CA_WARN_BEFORE_MS = 365 * 86_400_000

/** True once less than a third of the certificate's life (or 30 days, whichever is more) remains. */
export function renewalDue(cert: X509Certificate, nowMs: number): boolean {
  const notBefore = Date.parse(cert.validFrom)
  const notAfter = Date.parse(cert.validTo)
  return notAfter - nowMs < Math.max((notAfter - notBefore) * RENEW_FRACTION, RENEW_MIN_MS)
}
