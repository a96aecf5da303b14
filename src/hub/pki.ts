// The hub's own PKI: a CA made on first start and a serving certificate it signs, kept in the
// data dir. Keys come from Node's native RSA generation (fast); node-forge builds and signs the
// certificates (it cannot sign ECDSA ones, hence RSA).

import { createHash, generateKeyPairSync, randomBytes, X509Certificate } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, readFileSync } from 'node:fs'
import { hostname as osHostname, networkInterfaces } from 'node:os'
import { isIP } from 'node:net'
import { join } from 'node:path'
import forge from 'node-forge'
import { writeFileAtomic } from '../lib/atomic-file.js'
import { CA_WARN_BEFORE_MS, renewalDue } from '../lib/cert-lifetime.js'
import type { Clock } from '../lib/clock.js'
import { isAllInterfaces } from '../lib/config.js'
import type { Logger } from '../lib/logger.js'

export const PKI_FILES = { caCert: 'ca.crt', caKey: 'ca.key', serverCert: 'server.crt', serverKey: 'server.key' } as const

const DAY_MS = 86_400_000
const CA_VALIDITY_MS = 3650 * DAY_MS
const SERVER_VALIDITY_MS = 365 * DAY_MS
/**
 * Backdating: a Pi has no real-time clock and may boot offline with the time it last saved, days or
 * months behind; it must still accept the hub's certificates. The CA (which agents pin) by longer.
 */
export const SERVER_BACKDATE_MS = 7 * DAY_MS
export const CA_BACKDATE_MS = 365 * DAY_MS
/** How often the running hub looks at its serving certificate's expiry. */
export const RENEWAL_CHECK_INTERVAL_MS = DAY_MS

export interface PkiOptions {
  dataDir: string
  /** The address clients use; must be covered by the serving certificate. */
  advertise: string
  /** The bind address: when it is all interfaces, every interface address goes into the certificate. */
  listen: string
  clock: Clock
  logger: Logger
  /** Overrides for tests; default to the machine's. */
  hostname?: string
  interfaceAddresses?: string[]
}

export interface Pki {
  caCertPem: string
  caKeyPem: string
  serverCertPem: string
  serverKeyPem: string
  /** sha256 hex of the CA certificate's DER: what join tokens carry. */
  caHash: string
  /** What happened at this start, for the log and for tests. */
  created: { ca: boolean; server: boolean }
}

/** sha256 hex of a PEM certificate's DER encoding. */
export function caHash(caPem: string): string {
  return createHash('sha256').update(new X509Certificate(caPem).raw).digest('hex')
}

/** Loads the CA and serving certificate from the data dir, making what is missing or no longer fits. */
export function ensurePki(options: PkiOptions): Pki {
  const { dataDir, clock } = options
  const log = options.logger.child({ component: 'pki' })
  mkdirSync(dataDir, { recursive: true, mode: 0o700 })
  chmodSync(dataDir, 0o700)
  const path = (name: keyof typeof PKI_FILES) => join(dataDir, PKI_FILES[name])

  let created = { ca: false, server: false }
  let caCertPem: string
  let caKeyPem: string
  if (existsSync(path('caCert')) && existsSync(path('caKey'))) {
    caCertPem = readFileSync(path('caCert'), 'utf8')
    caKeyPem = readFileSync(path('caKey'), 'utf8')
  } else {
    ;({ certPem: caCertPem, keyPem: caKeyPem } = makeCa(clock.now()))
    writeFileAtomic(path('caKey'), caKeyPem, 0o600)
    writeFileAtomic(path('caCert'), caCertPem, 0o600)
    created.ca = true
    log.info({ path: path('caCert') }, 'created cluster CA')
  }

  const sans = serverSans(options)
  let serverCertPem = existsSync(path('serverCert')) ? readFileSync(path('serverCert'), 'utf8') : undefined
  let serverKeyPem = existsSync(path('serverKey')) ? readFileSync(path('serverKey'), 'utf8') : undefined
  const why = serverCertPem && serverKeyPem ? staleReason(serverCertPem, caCertPem, options.advertise, clock.now()) : 'missing'
  if (why) {
    ;({ certPem: serverCertPem, keyPem: serverKeyPem } = makeServerCert(caCertPem, caKeyPem, sans, clock.now()))
    writeFileAtomic(path('serverKey'), serverKeyPem, 0o600)
    writeFileAtomic(path('serverCert'), serverCertPem, 0o600)
    created.server = true
    log.info({ reason: why, dns: sans.dns, ips: sans.ips }, 'issued serving certificate')
  }
  return { caCertPem, caKeyPem, serverCertPem: serverCertPem!, serverKeyPem: serverKeyPem!, caHash: caHash(caCertPem), created }
}

export interface CertRenewalOptions extends PkiOptions {
  pki: Pki
  /** Swaps a new serving certificate into the running servers (API, embedded broker). */
  apply(tls: { key: string; cert: string }): void
}

/**
 * Looks at the serving certificate now and then once a day: when renewal is due it issues a new one
 * from the CA, writes it to the data dir and hands it to `apply`, so no restart is needed. The CA is
 * never renewed here (agents pin it); its coming expiry is logged as a warning.
 */
export function startCertRenewal(options: CertRenewalOptions): { stop(): void } {
  const { clock, dataDir } = options
  const log = options.logger.child({ component: 'pki' })
  const ca = new X509Certificate(options.pki.caCertPem)
  let current = new X509Certificate(options.pki.serverCertPem)
  let timer: { cancel(): void } | undefined
  let stopped = false
  const check = () => {
    const nowMs = clock.now()
    const caLeftMs = Date.parse(ca.validTo) - nowMs
    if (caLeftMs < CA_WARN_BEFORE_MS) {
      log.warn({ expires: new Date(ca.validTo).toISOString() }, `the cluster CA expires in ${Math.max(0, Math.floor(caLeftMs / DAY_MS))} days; it is not renewed automatically because agents pin it: plan a new cluster CA and re-join the nodes`)
    }
    if (renewalDue(current, nowMs)) {
      try {
        const made = makeServerCert(options.pki.caCertPem, options.pki.caKeyPem, serverSans(options), nowMs)
        writeFileAtomic(join(dataDir, PKI_FILES.serverKey), made.keyPem, 0o600)
        writeFileAtomic(join(dataDir, PKI_FILES.serverCert), made.certPem, 0o600)
        options.apply({ key: made.keyPem, cert: made.certPem })
        const previous = current
        current = new X509Certificate(made.certPem)
        log.info({ previousExpiry: new Date(previous.validTo).toISOString(), expires: new Date(current.validTo).toISOString() }, 'renewed the serving certificate')
      } catch (err) {
        log.error({ err }, 'could not renew the serving certificate; retrying tomorrow')
      }
    }
    if (!stopped) timer = clock.setTimeout(check, RENEWAL_CHECK_INTERVAL_MS)
  }
  check()
  return {
    stop() {
      stopped = true
      timer?.cancel()
    },
  }
}

export interface SubjectAltNames {
  dns: string[]
  ips: string[]
}

/** The names a serving certificate should carry for these options. */
export function serverSans(options: Pick<PkiOptions, 'advertise' | 'listen' | 'hostname' | 'interfaceAddresses'>): SubjectAltNames {
  const dns = new Set<string>(['localhost'])
  const ips = new Set<string>(['127.0.0.1', '::1'])
  const add = (name: string) => (isIP(name) ? ips.add(name) : dns.add(name.toLowerCase()))
  add(options.advertise)
  const host = options.hostname ?? osHostname()
  if (host) add(host)
  if (isAllInterfaces(options.listen)) {
    for (const address of options.interfaceAddresses ?? localAddresses()) add(address)
  } else if (options.listen !== 'localhost') {
    add(options.listen)
  }
  return { dns: [...dns], ips: [...ips] }
}

function localAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((info) => info.address)
}

/** Why an existing serving certificate must be replaced, or undefined when it still serves. */
function staleReason(certPem: string, caPem: string, advertise: string, nowMs: number): string | undefined {
  let cert: X509Certificate
  try {
    cert = new X509Certificate(certPem)
  } catch {
    return 'unreadable'
  }
  if (!cert.verify(new X509Certificate(caPem).publicKey)) return 'signed by another CA'
  const covered = isIP(advertise) ? cert.checkIP(advertise) !== undefined : cert.checkHost(advertise) !== undefined
  if (!covered) return `does not cover ${advertise}`
  if (renewalDue(cert, nowMs)) return 'expires soon'
  // The hub's clock went back (a Pi booted with an old time): its own MQTT client would refuse it.
  if (Date.parse(cert.validFrom) > nowMs) return 'not yet valid by this clock'
  return undefined
}

function rsaKeys(): { priv: forge.pki.rsa.PrivateKey; pub: forge.pki.rsa.PublicKey; pem: string } {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const pem = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()
  const priv = forge.pki.privateKeyFromPem(pem) as forge.pki.rsa.PrivateKey
  return { priv, pub: forge.pki.setRsaPublicKey(priv.n, priv.e), pem }
}

/** A positive random serial, as RFC 5280 asks (at most 20 bytes, high bit clear). */
function serial(): string {
  const bytes = randomBytes(16)
  bytes[0] &= 0x7f
  return bytes.toString('hex')
}

function makeCa(nowMs: number): { certPem: string; keyPem: string } {
  const keys = rsaKeys()
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.pub
  cert.serialNumber = serial()
  cert.validity.notBefore = new Date(nowMs - CA_BACKDATE_MS)
  cert.validity.notAfter = new Date(nowMs + CA_VALIDITY_MS)
  // UTF8String: Go's x509 (kubectl) refuses '@' in the default PrintableString.
  const subject = [{ name: 'commonName', value: `bramble-ca@${Math.floor(nowMs / 1000)}`, valueTagClass: forge.asn1.Type.UTF8 as any }]
  cert.setSubject(subject)
  cert.setIssuer(subject)
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ])
  cert.sign(keys.priv, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem }
}

function makeServerCert(caPem: string, caKeyPem: string, sans: SubjectAltNames, nowMs: number): { certPem: string; keyPem: string } {
  const ca = forge.pki.certificateFromPem(caPem)
  const caKey = forge.pki.privateKeyFromPem(caKeyPem)
  const keys = rsaKeys()
  const cert = forge.pki.createCertificate()
  cert.publicKey = keys.pub
  cert.serialNumber = serial()
  cert.validity.notBefore = new Date(Math.max(nowMs - SERVER_BACKDATE_MS, ca.validity.notBefore.getTime()))
  cert.validity.notAfter = new Date(Math.min(nowMs + SERVER_VALIDITY_MS, ca.validity.notAfter.getTime()))
  cert.setSubject([{ name: 'commonName', value: 'bramble-hub' }])
  cert.setIssuer(ca.subject.attributes)
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...sans.dns.map((value) => ({ type: 2, value })), ...sans.ips.map((ip) => ({ type: 7, ip }))],
    },
    { name: 'authorityKeyIdentifier', keyIdentifier: ca.generateSubjectKeyIdentifier().getBytes() },
  ])
  cert.sign(caKey, forge.md.sha256.create())
  return { certPem: forge.pki.certificateToPem(cert), keyPem: keys.pem }
}
